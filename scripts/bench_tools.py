"""Time a tool call through a user's tool box, and the extractive summary of a long document.

    PYTHONPATH=. .venv/bin/python scripts/bench_tools.py [--calls 200]

A desk in a temporary directory (SQLite; no embedding model is loaded), a user whose role
gives every tool. Prints JSON: p50 / p95 of a call of a no-op tool and of ``list_documents``
(permission, schema check, the thread, the audit row and the ``tool_calls`` row), and the
time of ``key_sentences`` over 60 and 600 chunks. The figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from knowledge.access.roles import Role
from knowledge.core.settings import Settings
from knowledge.core.types import Chunk
from knowledge.desk.root import Desk
from knowledge.tools.base import FunctionTool, ToolCall, ToolResult, ToolSpec
from knowledge.tools.builtin import key_sentences
from knowledge.tools.registry import StaticTools

SENTENCES = (
    "Employees who travel for work book trains and hotels through the travel desk.",
    "Every receipt is kept and claims are submitted within thirty days of the trip.",
    "Hotel costs above the city limit need the approval of the budget owner in advance.",
)


def percentiles(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_ms": round(ordered[len(ordered) // 2], 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95)], 2),
    }


def chunks(count: int) -> list[Chunk]:
    text = " ".join(f"{s[:-1]} in case {n}." for n, s in enumerate(SENTENCES * 2))
    return [
        Chunk(f"c{i}", "d", "c", "f.pdf", "T", i, i, (), 0, len(text), text, str(i))
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    noop = FunctionTool(
        ToolSpec("noop", "Does nothing."), lambda context, arguments: ToolResult("ok")
    )
    with tempfile.TemporaryDirectory() as tmp:
        desk = Desk(Settings(data_dir=Path(tmp)), tool_sources=[StaticTools("bench", [noop])])
        desk.roles.save(Role("all tools", tools=("*",)), "bench")
        desk.accounts.add("sam", ["all tools"], "bench", password="a long bench password")
        box = desk.for_user("sam").tools()
        results: dict[str, object] = {}
        for name in ("noop", "list_documents"):
            box.call(ToolCall(name))
            times = []
            for _ in range(args.calls):
                started = time.perf_counter()
                assert box.call(ToolCall(name)).outcome == "ok"
                times.append((time.perf_counter() - started) * 1000)
            results[f"call_{name}"] = percentiles(times)
    for count in (60, 600):
        given = chunks(count)
        started = time.perf_counter()
        key_sentences(given)
        results[f"key_sentences_{count}_chunks_ms"] = round(
            (time.perf_counter() - started) * 1000, 1
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
