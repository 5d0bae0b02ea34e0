"""How reliably the embedded model (SmolLM2-135M by default) picks a tool when its output is
constrained by a JSON-schema grammar (llama.cpp's ``json_schema``): the measurement behind the
decision to reach tools with slash commands only in the embedded backend (docs/benchmarks.md).

    .venv/bin/python scripts/bench_grammar_calls.py [--gguf PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from knowledge.assistant.embedded import load_engine, resolve_gguf

TOOLS = {
    "summarise": "Summarise one of the user's documents, given its file name.",
    "send_email": "Send an email to an address.",
    "none": "No tool: the user asks a question about the knowledge base.",
}
CASES = [  # (request, the right tool, the right argument)
    ("Summarise leave-policy.pdf for me", "summarise", "leave-policy.pdf"),
    ("Can you give me a summary of travel-rules.pdf?", "summarise", "travel-rules.pdf"),
    ("summarise handbook.docx", "summarise", "handbook.docx"),
    ("Please make a short summary of the file expenses.xlsx", "summarise", "expenses.xlsx"),
    ("What does security-policy.pdf say, in short?", "summarise", "security-policy.pdf"),
    ("Email bob@example.com", "send_email", "bob@example.com"),
    ("Send an email to hr@example.com please", "send_email", "hr@example.com"),
    ("Write to anna@corp.org by email", "send_email", "anna@corp.org"),
    ("mail it to it-desk@example.com", "send_email", "it-desk@example.com"),
    ("Could you send an email to payroll@example.com?", "send_email", "payroll@example.com"),
    ("How many days of annual leave do I get?", "none", ""),
    ("Who approves travel expenses?", "none", ""),
    ("What is the password policy?", "none", ""),
    ("Can I work from home on Fridays?", "none", ""),
    ("When is the deadline for expense claims?", "none", ""),
]
SCHEMA = {
    "type": "object",
    "properties": {
        "tool": {"type": "string", "enum": list(TOOLS)},
        "argument": {"type": "string", "maxLength": 60},
    },
    "required": ["tool", "argument"],
}


def ask(engine: Any, text: str) -> tuple[str, float]:
    listing = "\n".join(f"- {name}: {what}" for name, what in TOOLS.items())
    request = {
        "messages": [
            {
                "role": "system",
                "content": f"Choose the tool for the user's request, and its argument.\n{listing}",
            },
            {"role": "user", "content": text},
        ],
        "temperature": 0.0,
        "max_tokens": 60,
        "stream": True,
        "json_schema": SCHEMA,
    }
    pieces: list[str] = []

    def on_chunk(chunk: Any) -> bool:
        for choice in chunk.get("choices") or ():
            pieces.append((choice.get("delta") or {}).get("content") or "")
        return False

    started = time.perf_counter()
    engine.handle_chat_completions(request, on_chunk)
    return "".join(pieces), (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", default="")
    args = parser.parse_args()
    engine = load_engine(resolve_gguf(args.gguf), context=2048, threads=2)
    valid = tool_right = both_right = 0
    times = []
    for text, tool, argument in CASES:
        reply, ms = ask(engine, text)
        times.append(ms)
        try:
            chosen = json.loads(reply)
        except ValueError:
            print(f"not JSON: {reply!r}")
            continue
        valid += 1
        tool_right += chosen.get("tool") == tool
        both_right += chosen.get("tool") == tool and (
            tool == "none" or chosen.get("argument", "").strip() == argument
        )
        print(f"{text!r}: {chosen} ({ms:.0f} ms)")
    n = len(CASES)
    times.sort()
    print(
        json.dumps(
            {
                "cases": n,
                "valid_json": valid,
                "right_tool": tool_right,
                "right_tool_and_argument": both_right,
                "median_ms": round(times[n // 2]),
            }
        )
    )


if __name__ == "__main__":
    main()
