"""`kdesk sync`: mirror a folder of documents (a mounted share) into a collection, incrementally
(knowledge.desk.sync), safe to run from cron or a systemd timer."""

from __future__ import annotations

import argparse
import sys

from knowledge.cli import common
from knowledge.cli.jobs import wait_jobs

BUSY_EXIT = 3  # another sync of the collection is running


def cmd_sync(args: argparse.Namespace) -> int:
    from knowledge.desk.sync import SyncBusy, outcomes_json, sync_folder

    desk = common.open_desk()
    try:
        result = sync_folder(
            desk,
            args.path,
            args.collection,
            delete=args.delete,
            wait=lambda jobs: wait_jobs(desk, jobs, quiet=args.json),
        )
    except SyncBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BUSY_EXIT
    finally:
        desk.close()
    if args.json:
        common.print_json(outcomes_json(result))
    else:
        for f in result.files:
            if f.outcome != "unchanged":
                note = f" — {f.reason}" if f.reason else ""
                print(f"{f.outcome:9} {f.file_name}{note}")
        print(result.summary())
    return 1 if result.failed else 0


def add_sync_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sync", help="mirror a folder of documents into a collection (new and changed files only)"
    )
    p.add_argument("path", help="the folder (searched recursively for supported documents)")
    p.add_argument("--collection", required=True)
    p.add_argument(
        "--delete",
        action="store_true",
        help="delete documents whose file is no longer in the folder (default: list them)",
    )
    p.add_argument("--json", action="store_true", help="the outcome of each file as JSON")
    p.set_defaults(func=cmd_sync)
