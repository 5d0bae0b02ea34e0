"""A tiny Ollama server for tests: speaks the HTTP protocol the real ``ollama`` client uses.

    with FakeOllama(reply="Paris [1].") as server:
        settings = load_settings(ollama_host=server.url, model_backend="ollama")
        ...
        assert "France" in server.chats[-1]["messages"][-1]["content"]
        assert server.chats[-1]["options"]["temperature"] == 0.1

``reply`` is a string or a function from the request's messages to a string; it is streamed as
NDJSON, about one word per line, cut at ``options.num_predict`` words like a real token limit.
``mode`` (settable at any time) scripts failures of ``/api/chat`` and ``/api/generate``:

- ``"ok"``: answer normally;
- ``"not_found"``: 404 ``model "X" not found, try pulling it first`` (also when ``models`` is given
  and the requested model is not in it);
- ``"error"``: 500 with an Ollama error body;
- ``"hang"``: send nothing for ``hang_s`` seconds (or until the server stops), to test timeouts;
- ``"drop"``: stream half the reply, then close the connection without finishing;
- ``"error_midstream"``: stream half the reply, then an ``{"error": ...}`` line, as Ollama does
  when its runner crashes.

Tool calling: when a chat request offers ``tools``, ``tool_calls`` (a function from the messages
and the offered tools to the calls to make, as ``{"name", "arguments"}`` dicts; default
``mention_calls``) decides; when it gives calls, the reply is those calls instead of text.

``chunk_delay`` sleeps between streamed lines (a slow model). ``before_end``, when set, is called
with the request body after the last line of a streamed reply (the one with the token counts) and
before the stream is closed: a test can hold one stream open there while others run. Every
request is recorded in
``requests`` (method, path, JSON body); the bodies of chat requests are also in ``chats``.
Also served: ``GET /api/version``, ``GET /api/tags`` (lists ``models``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Reply = str | Callable[[list[dict[str, Any]]], str]
ToolDecider = Callable[[list[dict[str, Any]], list[dict[str, Any]]], list[dict[str, Any]]]
Mode = Literal["ok", "not_found", "error", "hang", "drop", "error_midstream"]

OLLAMA_VERSION = "0.6.3"


@dataclass
class Recorded:
    method: str
    path: str
    body: Any


def split_reply(text: str, limit: int | None = None) -> tuple[list[str], bool]:
    """The reply cut into word-sized deltas (joined, they give ``text`` back) and whether
    ``limit`` cut it short."""
    pieces = re.findall(r"\S+\s*|\s+", text)
    if limit is not None and 0 < limit < len(pieces):
        return pieces[:limit], True
    return pieces, False


def count_words(messages: Sequence[Mapping[str, Any]]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in messages)


def mention_calls(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Call each offered tool that the last message (the user's) names; the word after the name
    fills the tool's first required parameter. A tool's result (a ``tool`` message last) calls
    nothing: the model then answers."""
    if not messages or messages[-1].get("role") != "user":
        return []
    text = str(messages[-1].get("content") or "")
    calls = []
    for tool in tools:
        function = tool.get("function") or {}
        name = str(function.get("name", ""))
        found = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])\s*(\S+)?", text)
        if not name or found is None:
            continue
        required = (function.get("parameters") or {}).get("required") or []
        word = found.group(1)
        calls.append({"name": name, "arguments": {required[0]: word} if required and word else {}})
    return calls


class Handler(BaseHTTPRequestHandler):
    """Routes every request to ``server.fake.handle(self)``; helpers to answer it."""

    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def do_GET(self) -> None:
        self._dispatch(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self._dispatch(body)

    def _dispatch(self, body: Any) -> None:
        path = self.path.split("?", 1)[0]
        fake = self.server.fake
        fake.requests.append(Recorded(self.command, path, body))
        try:
            fake.handle(self, path, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop(self) -> None:
        """Close the connection in the middle of a chunked body."""
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer


class FakeServer:
    """A ThreadingHTTPServer on a free 127.0.0.1 port, served from a daemon thread."""

    def __init__(self, *, mode: str = "ok", chunk_delay: float = 0.0, hang_s: float = 30.0):
        self.mode = mode
        self.chunk_delay = chunk_delay
        self.hang_s = hang_s
        self.before_end: Callable[[Any], None] | None = None
        self.requests: list[Recorded] = []
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the fake server is not running; use it as a context manager")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeServer:
        self._httpd = _HTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.fake = self
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, handler: Handler, path: str, body: Any) -> None:
        raise NotImplementedError

    def hang(self) -> None:
        self._stopping.wait(self.hang_s)

    def pace(self) -> None:
        if self.chunk_delay:
            time.sleep(self.chunk_delay)

    def ending(self, body: Any) -> None:
        if self.before_end is not None:
            self.before_end(body)


class FakeOllama(FakeServer):
    def __init__(
        self,
        reply: Reply = "OK.",
        *,
        models: Sequence[str] | None = None,
        mode: Mode = "ok",
        chunk_delay: float = 0.0,
        hang_s: float = 30.0,
    ):
        super().__init__(mode=mode, chunk_delay=chunk_delay, hang_s=hang_s)
        self.reply = reply
        self.models = list(models) if models is not None else None
        self.tool_calls: ToolDecider = mention_calls

    def __enter__(self) -> FakeOllama:
        self.start()
        return self

    @property
    def chats(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == "/api/chat"]

    def handle(self, handler: Handler, path: str, body: Any) -> None:
        if handler.command == "GET" and path == "/api/version":
            handler.send_json(200, {"version": OLLAMA_VERSION})
        elif handler.command == "GET" and path == "/api/tags":
            handler.send_json(200, {"models": [self._tag(name) for name in self.models or ()]})
        elif handler.command == "POST" and path in ("/api/chat", "/api/generate"):
            self._generate(
                handler, body if isinstance(body, dict) else {}, chat=path == "/api/chat"
            )
        else:
            handler.send_json(404, {"error": f"unknown endpoint {handler.command} {path}"})

    def _generate(self, handler: Handler, body: dict[str, Any], *, chat: bool) -> None:
        model = str(body.get("model", ""))
        if self.mode == "hang":
            self.hang()
        if self.mode == "not_found" or (self.models is not None and model not in self.models):
            handler.send_json(404, {"error": f'model "{model}" not found, try pulling it first'})
            return
        if self.mode == "error":
            handler.send_json(500, {"error": "llama runner process has terminated: exit status 2"})
            return
        messages = body.get("messages") or [{"role": "user", "content": body.get("prompt", "")}]
        calls = self.tool_calls(messages, body.get("tools") or []) if body.get("tools") else []
        if chat and calls:
            self._call_tools(handler, model, messages, calls, body)
            return
        text = self.reply(messages) if callable(self.reply) else self.reply
        limit = (body.get("options") or {}).get("num_predict")
        pieces, cut = split_reply(text, limit)
        lines = [self._part(model, piece, chat) for piece in pieces]
        final = {**self._part(model, "", chat), **self._stats(messages, len(pieces), cut)}
        if body.get("stream", True) is False:
            handler.send_json(200, {**final, **self._part(model, "".join(pieces), chat)})
            return
        self._stream(handler, lines, final, body)

    def _stream(
        self, handler: Handler, lines: list[dict[str, Any]], final: dict[str, Any], body: Any
    ) -> None:
        handler.start_stream("application/x-ndjson")
        failing = self.mode in ("drop", "error_midstream")
        sent = lines[: max(1, len(lines) // 2)] if failing else lines
        for line in sent:
            self.pace()
            handler.write_chunk(json.dumps(line).encode() + b"\n")
        if self.mode == "drop":
            handler.drop()
            return
        if self.mode == "error_midstream":
            final = {"error": "an error was encountered while running the model: unexpected EOF"}
        handler.write_chunk(json.dumps(final).encode() + b"\n")
        self.ending(body)
        handler.end_stream()

    def _call_tools(
        self,
        handler: Handler,
        model: str,
        messages: list[dict[str, Any]],
        calls: list[dict[str, Any]],
        body: dict[str, Any],
    ) -> None:
        part = self._part(model, "", True)
        part["message"]["tool_calls"] = [
            {"function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls
        ]
        final = {**self._part(model, "", True), **self._stats(messages, 1, False)}
        if body.get("stream", True) is False:
            handler.send_json(200, {**final, "message": part["message"]})
            return
        self._stream(handler, [part], final, body)

    @staticmethod
    def _part(model: str, text: str, chat: bool) -> dict[str, Any]:
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        content = (
            {"message": {"role": "assistant", "content": text}} if chat else {"response": text}
        )
        return {"model": model, "created_at": created, **content, "done": False}

    @staticmethod
    def _stats(messages: Sequence[Mapping[str, Any]], generated: int, cut: bool) -> dict[str, Any]:
        prompt = count_words(messages)
        return {
            "done": True,
            "done_reason": "length" if cut else "stop",
            "total_duration": 5_000_000 + 2_000_000 * generated,
            "load_duration": 1_000_000,
            "prompt_eval_count": prompt,
            "prompt_eval_duration": 1_000_000 + 100_000 * prompt,
            "eval_count": generated,
            "eval_duration": 2_000_000 * generated,
        }

    @staticmethod
    def _tag(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "model": name,
            "modified_at": "2025-01-01T00:00:00Z",
            "size": 2_019_393_189,
            "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "details": {"format": "gguf", "family": "llama", "parameter_size": "3.2B"},
        }
