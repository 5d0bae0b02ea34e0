"""A model server for load benchmarks: it speaks the Ollama HTTP protocol the desk's real client
uses (``GET /api/version``, ``GET /api/tags``, ``POST /api/chat`` streamed as NDJSON) and
answers at once, deterministically, by quoting the first sentence of source [1] with its
marker (what a well-behaved model does, and what the desk's citation check accepts). The
desk's own cost per request is then what a benchmark measures, not a model's.

    with OllamaStandIn() as model_server:
        settings = settings.model_copy(update={"ollama_host": model_server.url, ...})
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "kdesk-bench:1b"
NOT_COVERED = "The knowledge base does not cover this."
_FIRST_SOURCE = re.compile(r"^\[1\] (.+?)(?:\n\n\[2\] |\n\nQuestion: |\Z)", re.M | re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MIN_WORDS = 6  # a heading ("Leave Policy 1.") is not a sentence worth quoting


def reply_to(messages: list[dict[str, Any]]) -> str:
    """The first real sentence of source [1] of the desk's prompt, cited as [1]."""
    prompt = str(messages[-1].get("content", "")) if messages else ""
    found = _FIRST_SOURCE.search(prompt)
    if found is None:
        return NOT_COVERED
    sentences = _SENTENCE_END.split(" ".join(found.group(1).split()))
    sentence = next((s for s in sentences if len(s.split()) >= MIN_WORDS), sentences[0])
    return f"{sentence.rstrip('.!?')} [1]."


def _part(text: str, done: bool = False) -> dict[str, Any]:
    created = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    message = {"role": "assistant", "content": text}
    return {"model": MODEL, "created_at": created, "message": message, "done": done}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/api/version"):
            self._json({"version": "0.6.3"})
        elif self.path.startswith("/api/tags"):
            self._json({"models": [{"name": MODEL, "model": MODEL, "size": 1}]})
        else:
            self._json({"error": f"unknown endpoint {self.path}"}, 404)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.startswith("/api/chat"):
            self._json({"error": f"unknown endpoint {self.path}"}, 404)
            return
        pieces = re.findall(r"\S+\s*", reply_to(body.get("messages") or []))
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        final = _part("", done=True) | {
            "done_reason": "stop",
            "prompt_eval_count": prompt_words,
            "eval_count": len(pieces),
        }
        if body.get("stream", True) is False:
            self._json(final | {"message": _part("".join(pieces))["message"]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in [*(_part(p) for p in pieces), final]:
            data = json.dumps(line).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _json(self, payload: object, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class OllamaStandIn:
    """The stand-in on a free 127.0.0.1 port, served from a daemon thread."""

    def __init__(self) -> None:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> OllamaStandIn:
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
