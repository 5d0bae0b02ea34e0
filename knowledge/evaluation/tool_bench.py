"""What tools in the chat cost the desk itself: parsing slash commands, and one turn of the tool
loop with a model and a tool that answer at once (the backend's own latency is the model's,
not ours: the test servers' would say nothing)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from knowledge.tools.base import ToolCall, ToolOutcome, ToolResult, ToolSpec
from knowledge.tools.native import ChatTurn, Plan
from knowledge.tools.slash import parse_slash
from knowledge.tools.turns import TurnRunner

SPECS = [
    ToolSpec(
        "summarise",
        "Summarise a document.",
        {
            "type": "object",
            "properties": {"document": {"type": "string"}},
            "required": ["document"],
        },
    ),
    ToolSpec(
        "count",
        "Count things.",
        {
            "type": "object",
            "properties": {"n": {"type": "integer"}, "what": {"type": "string"}},
            "required": ["n", "what"],
        },
    ),
] + [ToolSpec(f"tool_{n}", f"Tool number {n}.") for n in range(30)]
COMMANDS = ("/summarise leave-policy.pdf", '/count n=3 what="open tickets"', "/tools")


class _InstantBox:
    def available(self) -> list[ToolSpec]:
        return SPECS

    def call(self, call: ToolCall, *, confirmed: bool = False) -> ToolOutcome:
        return ToolOutcome(call, "ok", ToolResult("done"))


class _InstantModel:
    name = "instant"

    def plan(
        self, messages: Sequence[ChatTurn], tools: Sequence[ToolSpec], *, max_tokens: int
    ) -> Plan:
        if messages[-1]["role"] == "user":
            return Plan(calls=(ToolCall("summarise", {"document": "x"}, "call_0"),))
        return Plan("answered")

    def assistant_calls(self, calls: Sequence[ToolCall]) -> ChatTurn:
        return {"role": "assistant", "content": "", "tool_calls": [c.name for c in calls]}

    def tool_message(self, call: ToolCall, text: str) -> ChatTurn:
        return {"role": "tool", "content": text}


def _per_call_us(fn: Any, repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return round((time.perf_counter() - started) / repeats * 1e6, 1)


def bench_tools(quick: bool = False) -> Mapping[str, object]:
    repeats = 2_000 if quick else 20_000
    runner = TurnRunner(_InstantBox(), _InstantModel())
    parse: dict[str, float] = {
        command: _per_call_us(lambda c=command: parse_slash(c, SPECS), repeats)
        for command in COMMANDS
    }
    return {
        "tools_offered": len(SPECS),
        "slash_parse_us": parse,
        "turn_loop_us": _per_call_us(lambda: runner.start("summarise x"), repeats // 4),
    }
