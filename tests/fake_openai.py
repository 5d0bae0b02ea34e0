"""A tiny OpenAI-compatible chat server for tests (what vLLM, llama.cpp and others serve).

    with FakeOpenAI(reply="Paris [1].") as server:
        settings = load_settings(openai_base_url=server.url + "/v1", model_backend="openai")
        ...
        assert server.chats[-1]["max_tokens"] == 400

``POST /v1/chat/completions`` streams ``reply`` (a string, or a function from the messages to a
string) as server-sent events, about one word per event, cut at ``max_tokens`` words, with a usage
event when ``stream_options.include_usage`` is set; non-streaming requests get one JSON answer.
``GET /v1/models`` lists ``models``. ``mode`` works as in ``FakeOllama``: ``"ok"``,
``"not_found"`` (404 ``model_not_found``, also for a model missing from ``models``), ``"error"``
(500), ``"hang"`` (silent for ``hang_s`` seconds) and ``"drop"`` (half the reply, then the
connection closes). Tools offered in a request are decided on as in ``FakeOllama``
(``tool_calls``, default ``mention_calls``); calls are streamed as OpenAI does, each one's id and
name first, then its arguments' JSON in two fragments. ``before_end`` is called after the usage
event, before ``[DONE]``. Request bodies are recorded in ``requests`` and ``chats``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Literal

from tests.fake_ollama import (
    FakeServer,
    Handler,
    Reply,
    ToolDecider,
    count_words,
    mention_calls,
    split_reply,
)

Mode = Literal["ok", "not_found", "error", "hang", "drop"]
CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")


class FakeOpenAI(FakeServer):
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

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    @property
    def chats(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path in CHAT_PATHS]

    def handle(self, handler: Handler, path: str, body: Any) -> None:
        if handler.command == "GET" and path in ("/v1/models", "/models"):
            data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models or ()]
            handler.send_json(200, {"object": "list", "data": data})
        elif handler.command == "POST" and path in CHAT_PATHS:
            self._chat(handler, body if isinstance(body, dict) else {})
        else:
            handler.send_json(404, _error(f"unknown endpoint {path}", "not_found_error"))

    def _chat(self, handler: Handler, body: dict[str, Any]) -> None:
        model = str(body.get("model", ""))
        if self.mode == "hang":
            self.hang()
        if self.mode == "not_found" or (self.models is not None and model not in self.models):
            message = f"The model `{model}` does not exist."
            handler.send_json(404, _error(message, "invalid_request_error", "model_not_found"))
            return
        if self.mode == "error":
            handler.send_json(500, _error("engine crashed", "server_error"))
            return
        messages = body.get("messages") or []
        calls = self.tool_calls(messages, body.get("tools") or []) if body.get("tools") else []
        if calls:
            self._call_tools(handler, model, calls, bool(body.get("stream")))
            return
        text = self.reply(messages) if callable(self.reply) else self.reply
        pieces, cut = split_reply(text, body.get("max_tokens") or body.get("max_completion_tokens"))
        usage = {
            "prompt_tokens": count_words(messages),
            "completion_tokens": len(pieces),
            "total_tokens": count_words(messages) + len(pieces),
        }
        finish = "length" if cut else "stop"
        if not body.get("stream"):
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces)},
                "finish_reason": finish,
            }
            handler.send_json(
                200, {**_envelope(model, "chat.completion", [choice]), "usage": usage}
            )
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self._stream(handler, model, pieces, finish, usage if include_usage else None, body)

    def _stream(
        self,
        handler: Handler,
        model: str,
        pieces: list[str],
        finish: str,
        usage: dict[str, int] | None,
        body: Any = None,
    ) -> None:
        handler.start_stream("text/event-stream")
        deltas = [{"role": "assistant", "content": ""}] + [{"content": p} for p in pieces]
        if self.mode == "drop":
            deltas = deltas[: max(2, len(deltas) // 2)]
        for delta in deltas:
            self.pace()
            _send_event(handler, _chunk(model, delta, None))
        if self.mode == "drop":
            handler.drop()
            return
        _send_event(handler, _chunk(model, {}, finish))
        if usage is not None:
            _send_event(handler, {**_envelope(model, "chat.completion.chunk", []), "usage": usage})
        self.ending(body)
        handler.write_chunk(b"data: [DONE]\n\n")
        handler.end_stream()

    def _call_tools(
        self, handler: Handler, model: str, calls: list[dict[str, Any]], stream: bool
    ) -> None:
        full = [
            {
                "id": f"call_{n}",
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
            }
            for n, c in enumerate(calls)
        ]
        if not stream:
            message = {"role": "assistant", "content": None, "tool_calls": full}
            choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
            handler.send_json(200, _envelope(model, "chat.completion", [choice]))
            return
        handler.start_stream("text/event-stream")
        _send_event(handler, _chunk(model, {"role": "assistant", "content": None}, None))
        for n, call in enumerate(full):
            function = call["function"]
            head = {**call, "index": n, "function": {"name": function["name"], "arguments": ""}}
            _send_event(handler, _chunk(model, {"tool_calls": [head]}, None))
            half = len(function["arguments"]) // 2
            for piece in (function["arguments"][:half], function["arguments"][half:]):
                fragment = {"index": n, "function": {"arguments": piece}}
                _send_event(handler, _chunk(model, {"tool_calls": [fragment]}, None))
        _send_event(handler, _chunk(model, {}, "tool_calls"))
        handler.write_chunk(b"data: [DONE]\n\n")
        handler.end_stream()


def _send_event(handler: Handler, payload: dict[str, Any]) -> None:
    handler.write_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")


def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return _envelope(model, "chat.completion.chunk", [choice])


def _envelope(model: str, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
