"""A test double of the ``ToolBox`` protocol (knowledge/tools/base.py), httpx-style: the chat's
tool turns are tested against it, the tools platform's real box is tested on its own.

    box = DoubleToolBox.standard()
    box.call(ToolCall("summarise", {"document": "leave-policy.pdf"}))
    assert box.runs == [("summarise", {"document": "leave-policy.pdf"}, False)]

Tools that act answer ``needs_confirmation`` unless called with ``confirmed=True``; a tool whose
function raises ``ToolError`` gives ``failed``, one raising ``TimeoutError`` gives ``timeout``;
a tool not in the box is ``denied``. ``runs`` records each tool that actually ran."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from knowledge.core.types import Chunk
from knowledge.tools.base import ToolCall, ToolError, ToolOutcome, ToolResult, ToolSpec

Run = Callable[[Mapping[str, Any]], ToolResult]

POLICY = Chunk(
    "leave-1", "doc-leave", "HR", "leave-policy.pdf", "Leave policy", 2, 2, (), 0, 60,
    "Employees get 25 days of paid leave a year.", "h-leave",
)  # fmt: skip


@dataclass
class DoubleTool:
    spec: ToolSpec
    run: Run


class DoubleToolBox:
    def __init__(self, tools: list[DoubleTool]) -> None:
        self.tools = {t.spec.name: t for t in tools}
        self.runs: list[tuple[str, dict[str, Any], bool]] = []

    def available(self) -> list[ToolSpec]:
        return [t.spec for t in self.tools.values()]

    def call(self, call: ToolCall, *, confirmed: bool = False) -> ToolOutcome:
        tool = self.tools.get(call.name)
        if tool is None:
            return ToolOutcome(call, "denied", message=f"No tool {call.name!r} for you.")
        if tool.spec.acts and not confirmed:
            return ToolOutcome(call, "needs_confirmation", message=f"{call.name} acts.")
        try:
            result = tool.run(call.arguments)
        except ToolError as exc:
            return ToolOutcome(call, "failed", message=str(exc))
        except TimeoutError:
            return ToolOutcome(call, "timeout", message=f"{call.name} took longer than 1 s.")
        self.runs.append((call.name, dict(call.arguments), confirmed))
        return ToolOutcome(call, "ok", result, duration_ms=1.0)

    @classmethod
    def standard(cls) -> DoubleToolBox:
        return cls([SUMMARISE, SEND_EMAIL, BROKEN, SLOW, COUNT])


def _summarise(arguments: Mapping[str, Any]) -> ToolResult:
    name = arguments["document"]
    if name != "leave-policy.pdf":
        raise ToolError(f"No document named {name!r} among yours.")
    return ToolResult("Summary: 25 days of paid leave a year.", citations=(POLICY,))


def _send(arguments: Mapping[str, Any]) -> ToolResult:
    return ToolResult(f"Sent to {arguments['to']}.")


def _broken(arguments: Mapping[str, Any]) -> ToolResult:
    raise ToolError("the archive service answered 503")


def _slow(arguments: Mapping[str, Any]) -> ToolResult:
    raise TimeoutError


def _count(arguments: Mapping[str, Any]) -> ToolResult:
    return ToolResult(f"{arguments.get('n', 0)} {arguments.get('what', '')}".strip())


SUMMARISE = DoubleTool(
    ToolSpec(
        "summarise",
        "Summarise one of your documents, by file name or title.",
        {
            "type": "object",
            "properties": {"document": {"type": "string"}, "words": {"type": "integer"}},
            "required": ["document"],
        },
    ),
    _summarise,
)
SEND_EMAIL = DoubleTool(
    ToolSpec(
        "send_email",
        "Send an email.",
        {
            "type": "object",
            "properties": {"to": {"type": "string"}, "subject": {"type": "string"}},
            "required": ["to"],
        },
        acts=True,
    ),
    _send,
)
BROKEN = DoubleTool(ToolSpec("archive", "Look in the archive."), _broken)
SLOW = DoubleTool(ToolSpec("slow", "Takes its time."), _slow)
COUNT = DoubleTool(
    ToolSpec(
        "count",
        "Count things.",
        {
            "type": "object",
            "properties": {
                "n": {"type": "integer"},
                "what": {"type": "string"},
                "exact": {"type": "boolean"},
            },
            "required": ["n", "what"],
        },
    ),
    _count,
)
