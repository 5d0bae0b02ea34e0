"""`kdesk tools list|call`: the tools the desk knows (built in, plugins, MCP servers) and a call
of one as a signed-in user, through the same permission, confirmation, timeout and audit as
the chat (knowledge.tools.box)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

from knowledge.cli import common
from knowledge.core.errors import KdeskError

if TYPE_CHECKING:
    from knowledge.tools.base import ToolOutcome, ToolSpec

EXIT_CODES = {"ok": 0, "failed": 1, "timeout": 1, "cancelled": 1, "denied": 2}
NEEDS_CONFIRMATION = 3


def cmd_tools_list(args: argparse.Namespace) -> int:
    desk = common.open_desk()
    if args.user:
        specs = desk.for_user(args.user, channel="cli").tools().available()
    else:
        specs = [tool.spec for tool in desk.tool_registry.tools().values()]
    if args.json:
        common.print_json({"tools": [_spec_row(s) for s in specs]})
        return 0
    for spec in specs:
        kind = "acts" if spec.acts else "reads"
        print(f"{spec.name:24} {kind:5} {spec.source:26} {spec.description}")
    if not specs:
        print("No tools." if not args.user else f"No tools for {args.user}.")
    return 0


def _spec_row(spec: ToolSpec) -> dict[str, object]:
    return {**asdict(spec), "parameters": dict(spec.parameters)}


def cmd_tools_call(args: argparse.Namespace) -> int:
    from knowledge.tools.base import ToolCall

    try:
        arguments = json.loads(args.args)
    except json.JSONDecodeError as exc:
        raise KdeskError(f"--args is not JSON: {exc.msg} (column {exc.colno}).") from None
    if not isinstance(arguments, dict):
        raise KdeskError('--args is a JSON object, e.g. \'{"document": "handbook.pdf"}\'.')
    box = common.open_desk().for_user(args.user, channel="cli").tools()
    outcome = box.call(ToolCall(args.name, arguments), confirmed=args.yes)
    if args.json:
        common.print_json(_outcome_row(outcome))
    else:
        _print_outcome(outcome)
    if outcome.outcome == "needs_confirmation":
        return NEEDS_CONFIRMATION
    return EXIT_CODES.get(outcome.outcome, 1)


def _print_outcome(outcome: ToolOutcome) -> None:
    result = outcome.result
    if result is None:
        hint = " (add --yes to run it)" if outcome.outcome == "needs_confirmation" else ""
        print(f"{outcome.outcome}: {outcome.message}{hint}", file=sys.stderr)
        return
    print(result.text)
    for n, chunk in enumerate(result.citations, start=1):
        print(f"[{n}] {chunk.file_name}, {chunk.location()}")


def _outcome_row(outcome: ToolOutcome) -> dict[str, object]:
    result = outcome.result
    return {
        "tool": outcome.call.name,
        "outcome": outcome.outcome,
        "message": outcome.message,
        "duration_ms": round(outcome.duration_ms, 1),
        "text": result.text if result else None,
        "citations": [
            {
                "n": n,
                "chunk_id": c.id,
                "doc_id": c.doc_id,
                "file_name": c.file_name,
                "location": c.location(),
            }
            for n, c in enumerate(result.citations if result else (), start=1)
        ],  # fmt: skip
        "data": result.data if result else None,
    }


def add_tool_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    tools = sub.add_parser("tools", help="the assistant's tools").add_subparsers(
        dest="tools_command", required=True
    )
    p = tools.add_parser("list", help="every tool, or those a user's roles give")
    p.add_argument("--user", help="only the tools this user may use")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tools_list)

    p = tools.add_parser("call", help="call a tool as a user")
    p.add_argument("name")
    p.add_argument("--args", default="{}", help="the arguments, a JSON object")
    p.add_argument("--user", required=True, help="who calls it (their roles and collections)")
    p.add_argument("--yes", action="store_true", help="confirm a tool that acts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tools_call)
