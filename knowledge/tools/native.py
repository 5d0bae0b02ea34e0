"""Native tool calling of the served backends (Ollama, OpenAI-compatible), behind one method.

``tool_caller(model)`` gives a ``ToolCallingModel`` for a chat model whose backend can call
tools, or None (the embedded model: tools are reached through slash commands there). Our
``ToolSpec`` is converted to each protocol's tool format here, and each protocol's calls back to
our ``ToolCall``: nothing above this module sees a client library's types. The conversation
passed in is plain dicts (``ChatTurn``): system, user, assistant (with ``tool_calls``) and
``tool`` messages, built by ``assistant_calls`` and ``tool_message``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from knowledge.assistant.chat import ChatModel, OllamaChatModel, OpenAIChatModel
from knowledge.core.errors import ModelUnavailableError
from knowledge.tools.base import ToolCall, ToolSpec

ChatTurn = dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """What the model decided: call these tools, or (no calls) answer with ``text``."""

    text: str = ""
    calls: tuple[ToolCall, ...] = field(default_factory=tuple)


class ToolCallingModel(Protocol):
    @property
    def name(self) -> str: ...

    def plan(
        self, messages: Sequence[ChatTurn], tools: Sequence[ToolSpec], *, max_tokens: int
    ) -> Plan: ...

    def assistant_calls(self, calls: Sequence[ToolCall]) -> ChatTurn:
        """The assistant message that asked for ``calls``, as this protocol echoes it back."""
        ...

    def tool_message(self, call: ToolCall, text: str) -> ChatTurn:
        """The message that gives the model the result of ``call``."""
        ...


def tool_caller(model: ChatModel) -> ToolCallingModel | None:
    if isinstance(model, OllamaChatModel):
        return OllamaToolCaller(model)
    if isinstance(model, OpenAIChatModel):
        return OpenAIToolCaller(model)
    inner = getattr(model, "model", None)  # a wrapper (the desk's metered model) around one
    if inner is not None and inner is not model and hasattr(inner, "stream"):
        return tool_caller(inner)
    return None


def function_schema(spec: ToolSpec) -> dict[str, Any]:
    """A spec as both protocols describe a function tool."""
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": dict(spec.parameters),
        },
    }


class OllamaToolCaller:
    """``ollama.chat(..., tools=[...])``; the calls come back in ``message.tool_calls``."""

    def __init__(self, model: OllamaChatModel) -> None:
        self.model = model

    @property
    def name(self) -> str:
        return self.model.name

    def plan(
        self, messages: Sequence[ChatTurn], tools: Sequence[ToolSpec], *, max_tokens: int
    ) -> Plan:
        import httpx
        import ollama

        chat = self.model
        try:
            response = chat._client.chat(  # the model's own client: its host and timeouts
                chat.model,
                list(messages),
                tools=[function_schema(s) for s in tools] or None,
                stream=False,
                options={"temperature": 0.0, "num_predict": max_tokens},
            )
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError, ValueError) as exc:
            raise chat._unavailable(exc) from exc
        message = response.message
        calls = tuple(
            ToolCall(c.function.name, dict(c.function.arguments or {}), call_id=f"call_{n}")
            for n, c in enumerate(message.tool_calls or ())
        )
        return Plan(message.content or "", calls)

    def assistant_calls(self, calls: Sequence[ToolCall]) -> ChatTurn:
        functions = [{"function": {"name": c.name, "arguments": dict(c.arguments)}} for c in calls]
        return {"role": "assistant", "content": "", "tool_calls": functions}

    def tool_message(self, call: ToolCall, text: str) -> ChatTurn:
        return {"role": "tool", "content": text, "tool_name": call.name}


class OpenAIToolCaller:
    """``tools=[{"type": "function", ...}]`` on a streamed completion; the calls arrive as
    ``delta.tool_calls`` fragments (by index: an id and name first, then pieces of the
    arguments' JSON) that are assembled here."""

    def __init__(self, model: OpenAIChatModel) -> None:
        self.model = model

    @property
    def name(self) -> str:
        return self.model.name

    def plan(
        self, messages: Sequence[ChatTurn], tools: Sequence[ToolSpec], *, max_tokens: int
    ) -> Plan:
        import httpx
        import openai

        chat = self.model
        text: list[str] = []
        parts: dict[int, dict[str, str]] = {}
        extra: dict[str, Any] = {"tools": [function_schema(s) for s in tools]} if tools else {}
        try:
            chunks = chat._client.chat.completions.create(
                model=chat.model,
                messages=cast(list[Any], list(messages)),
                temperature=0.0,
                max_tokens=max_tokens,
                stream=True,
                **extra,
            )
            for chunk in chunks:
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta and delta.content:
                        text.append(delta.content)
                    for piece in (delta.tool_calls if delta else None) or ():
                        _assemble(parts.setdefault(piece.index, {}), piece)
        except (openai.OpenAIError, httpx.HTTPError) as exc:
            raise chat._unavailable(exc, midway=bool(text or parts)) from exc
        calls = tuple(_openai_call(parts[i], i, chat.base_url) for i in sorted(parts))
        return Plan("".join(text), calls)

    def assistant_calls(self, calls: Sequence[ToolCall]) -> ChatTurn:
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": c.call_id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(dict(c.arguments))},
                }
                for c in calls
            ],
        }

    def tool_message(self, call: ToolCall, text: str) -> ChatTurn:
        return {"role": "tool", "tool_call_id": call.call_id, "content": text}


def _assemble(part: dict[str, str], piece: Any) -> None:
    if piece.id:
        part["id"] = piece.id
    function = piece.function
    if function is not None and function.name:
        part["name"] = part.get("name", "") + function.name
    if function is not None and function.arguments:
        part["arguments"] = part.get("arguments", "") + function.arguments


def _openai_call(part: Mapping[str, str], index: int, where: str) -> ToolCall:
    raw = part.get("arguments") or "{}"
    try:
        arguments = json.loads(raw)
    except ValueError as exc:
        raise ModelUnavailableError(
            f"The model server at {where} asked for tool {part.get('name')!r} with arguments "
            f"that are not JSON: {raw[:200]}"
        ) from exc
    if not isinstance(arguments, dict):
        arguments = {}
    return ToolCall(part.get("name", ""), arguments, call_id=part.get("id") or f"call_{index}")
