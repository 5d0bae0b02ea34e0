"""`kdesk`: the command-line contract that scripts and monitoring rely on."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from knowledge.cli import common
from knowledge.cli.access import add_access_commands
from knowledge.cli.backup import add_backup_commands
from knowledge.cli.contracts import add_clause_commands
from knowledge.cli.conversations import add_conversation_commands
from knowledge.cli.db import add_db_commands
from knowledge.cli.evaluation import add_eval_commands
from knowledge.cli.jobs import add_job_commands
from knowledge.cli.keys import add_key_commands
from knowledge.cli.mcp import add_mcp_commands
from knowledge.cli.service import add_service_commands
from knowledge.cli.sync import add_sync_commands
from knowledge.cli.tools import add_tool_commands
from knowledge.cli.versions import add_version_commands
from knowledge.core.errors import KdeskError
from knowledge.core.settings import load_settings

if TYPE_CHECKING:  # the CLI imports the heavy stack only for the commands that need it
    from knowledge.search.filters import SearchFilter


def _filter(args: argparse.Namespace) -> SearchFilter:
    """--doc, --tag, --since, --until; a bad date is a KdeskError (exit code 2)."""
    from knowledge.search.filters import SearchFilter

    return SearchFilter.parse(args.doc, args.tag, args.since, args.until, args.include_earlier)


def cmd_search(args: argparse.Namespace) -> int:
    where = _filter(args)
    desk = common.open_desk()
    if args.user:  # exactly that user's permissions
        results = desk.for_user(args.user, channel="cli").search(
            args.query, args.collection, args.k, where=where
        )
    else:
        results = desk.search(args.query, args.collection, args.k, where=where)
    rows = [
        {
            "doc": r.chunk.file_name,
            "page": r.chunk.page_start,
            "page_end": r.chunk.page_end,
            "location": r.chunk.cited_as(),
            "ocr": r.chunk.page_start in r.chunk.ocr_pages,
            "text": r.chunk.text,
            "score": r.score,
        }
        for r in results
    ]
    if args.json:
        common.print_json({"results": rows})
    else:
        for n, row in enumerate(rows, start=1):
            print(f"[{n}] {row['doc']} {row['location']} (score {row['score']:.2f})")
            print(f"    {str(row['text'])[:300]}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from knowledge.core.types import Requester
    from knowledge.usage.events import os_user

    where = _filter(args)
    desk = common.open_desk()
    if args.user:  # exactly that user's permissions, persona and rate limit
        user_desk = desk.for_user(args.user, role=args.role, channel="cli")
        stream = user_desk.ask(args.question, args.collection, where=where, fresh=args.fresh)
    else:
        from knowledge.desk.answer_cache import ask_trusted

        requester = Requester(os_user(), args.role or "employee", "cli")
        stream = ask_trusted(desk, args.question, args.collection, requester, where, args.fresh)
    for delta in stream:
        if not args.json:
            print(delta, end="", flush=True)
    answer = stream.answer
    if args.json:
        common.print_json(
            {
                "answer": answer.text,
                "abstained": answer.abstained,
                "model": answer.model,
                "evidence": answer.evidence,
                "error": answer.error,
                "event_id": answer.event_id,
                "route": answer.route,
                "route_reason": answer.route_reason,
                "cached": answer.cached,
                "notes": answer.notes,
                "citations": [
                    {
                        "n": c.n,
                        "doc": c.chunk.file_name,
                        "page": c.page,
                        "location": c.chunk.cited_as(c.page),
                        "ocr": c.page in c.chunk.ocr_pages,
                        "text": c.quote,
                        "score": c.score,
                    }
                    for c in answer.citations
                ],
            }
        )
        return 0
    print("\n")
    if answer.error:
        print(f"Model error: {answer.error}")
    for note in answer.notes:
        print(note)
    kept = " · cached, --fresh for a new one" if answer.cached else ""
    print(f"Answer (verified, {answer.model}{kept}): {answer.text}")
    for c in answer.citations:
        print(f"  [{c.n}] {c.chunk.file_name}, {c.chunk.cited_as(c.page)}")
    if answer.event_id:
        as_user = f" --user {args.user}" if args.user else ""
        print(f"Rate it: kdesk feedback {answer.event_id} up|down{as_user} [--comment TEXT]")
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    """As the OS user (who `kdesk ask` records) or --user: only their own answers."""
    from knowledge.usage.events import os_user

    rating = None if args.rating == "none" else args.rating
    me = common.open_desk().for_user(args.user or os_user(), channel="cli")
    me.feedback(args.event_id, rating, args.comment)
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    from knowledge.usage.analytics import summary
    from knowledge.usage.events import UsageFilter

    filters = UsageFilter(args.since, args.until, tuple(args.role or ()))
    desk = common.open_desk()
    if args.user:  # only what that user may see (and only if they may see analytics)
        figures = desk.for_user(args.user, channel="cli").usage_summary(filters)
    else:
        figures = summary(desk.engine, filters)
    figures = {"since": args.since, "until": args.until} | figures
    if args.json:
        common.print_json(figures)
        return 0
    for line in usage_lines(figures):
        print(line)
    return 0


def usage_lines(figures: dict) -> list[str]:  # type: ignore[type-arg]
    period = f"{figures['since'] or 'the start'} to {figures['until'] or 'today'}"
    latency = figures["latency_ms"]
    lines = [
        f"Usage from {period}: {figures['questions']} questions from {figures['users']} users",
        f"  answered {figures['answered']}, abstained {figures['abstained']}, "
        f"model errors {figures['model_errors']}",
        f"  feedback: {figures['feedback_up']} up, {figures['feedback_down']} down",
        f"  latency: p50 {latency['p50']} ms, p95 {latency['p95']} ms",
        f"  tokens: {figures['tokens_in']} in, {figures['tokens_out']} out",
    ]
    for role, part in figures["by_role"].items():
        lines.append(
            f"  {role}: {part['questions']} questions, {part['abstained']} abstained, "
            f"{part['feedback_up']} up, {part['feedback_down']} down"
        )
    for model, count in figures["models"].items():
        lines.append(f"  model {model}: {count} answers")
    return lines


def cmd_bench(args: argparse.Namespace) -> int:
    from knowledge.evaluation.bench import run_bench

    summary = run_bench(load_settings(), quick=args.quick)
    common.print_json(summary) if args.json else print(json.dumps(summary, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from knowledge.desk.demo import load_demo

    reports = load_demo(common.open_desk())
    for r in reports:
        print(f"{r.status:9} {r.collection}/{r.file_name}")
    return 0


def _add_filter_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--doc", action="append", help="only this document (file name or id); repeatable"
    )
    p.add_argument("--tag", action="append", help="only documents with this tag; repeatable: any")
    p.add_argument("--since", help="only documents ingested on or after this day, YYYY-MM-DD (UTC)")
    p.add_argument("--until", help="only documents ingested on or before this day (UTC)")
    p.add_argument(
        "--include-earlier",
        action="store_true",
        help="also superseded versions of documents (default: current versions only)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdesk", description="Knowledge Desk command line")
    sub = parser.add_subparsers(dest="command", required=True)

    add_job_commands(sub)
    add_sync_commands(sub)
    add_version_commands(sub)
    add_conversation_commands(sub)

    p = sub.add_parser("search", help="retrieve passages (no model)")
    p.add_argument("query")
    p.add_argument("--collection", action="append", help="repeatable; default: all")
    p.add_argument("-k", type=int, default=5)
    _add_filter_arguments(p)
    p.add_argument("--user", help="search with exactly this user's permissions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("--collection", action="append", help="repeatable; default: all")
    _add_filter_arguments(p)
    p.add_argument("--user", help="ask as this user: their permissions, persona, rate limit")
    p.add_argument(
        "--role", help="with --user: one of their roles (persona); else the recorded role"
    )
    p.add_argument("--fresh", action="store_true", help="a new answer, not a cached one")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("feedback", help="rate a recorded answer (event id from `kdesk ask`)")
    p.add_argument("event_id")
    p.add_argument("rating", choices=["up", "down", "none"])
    p.add_argument("--comment")
    p.add_argument("--user", help="as this user (default: the OS user); only their answers")
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("usage", help="usage analytics summary (questions, abstentions, ...)")
    p.add_argument("--since", type=common.day, help="first day, YYYY-MM-DD (UTC); default: all")
    p.add_argument("--until", type=common.day, help="last day, YYYY-MM-DD (UTC); default: today")
    p.add_argument("--role", action="append", help="repeatable; default: all roles")
    p.add_argument("--user", help="only what this user may see (needs the analytics page)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_usage)

    p = sub.add_parser("bench", help="measure ingest and query speed beside the machine's limits")
    p.add_argument("--quick", action="store_true", help="smaller corpus, for a smoke run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="load the demo knowledge base (idempotent)")
    p.set_defaults(func=cmd_demo)

    add_eval_commands(sub)
    add_db_commands(sub)
    add_backup_commands(sub)
    add_clause_commands(sub)
    add_access_commands(sub, common.day)
    add_tool_commands(sub)
    add_service_commands(sub)
    add_key_commands(sub)
    add_mcp_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from knowledge.core.jsonlog import configure_json_logging

    args = build_parser().parse_args(argv)
    configure_json_logging("WARNING")  # problems as JSON lines on stderr; results on stdout
    try:
        return int(args.func(args))
    except KdeskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
