"""`kdesk db`: the database schema's migrations. `kdesk db upgrade` brings the database to the
newest revision (the app and the other commands also do it at start); `kdesk db current` says
which revision it is at. Neither builds a desk: `current` changes nothing."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy import Engine

from knowledge.core.db import current_revision, head_revision, make_engine, sqlite_url, upgrade
from knowledge.core.settings import load_settings


def _engine() -> Engine:
    """The configured database (KDESK_DATABASE_URL, else the SQLite file in the data dir)."""
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.database_url or sqlite_url(settings.database_path))


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    engine = _engine()
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    if args.json:
        _print_json({"before": before, "revision": after, "head": head_revision()})
    else:
        print(f"database revision: {before or 'none'} -> {after}")
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    engine = _engine()
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    if args.json:
        _print_json({"revision": revision, "head": head_revision()})
    else:
        print(revision or "none")
    return 0


def add_db_commands(sub: Any) -> None:
    """Register `kdesk db ...` on the main parser's subcommands."""
    db = sub.add_parser("db", help="the database schema: migrate it, show its revision")
    group = db.add_subparsers(dest="db_command", required=True)

    p = group.add_parser("upgrade", help="migrate the database to the newest revision")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_db_upgrade)

    p = group.add_parser("current", help="the revision the database is at ('none': not migrated)")
    p.add_argument("--json", action="store_true", help='{"revision": ..., "head": ...}')
    p.set_defaults(func=cmd_db_current)
