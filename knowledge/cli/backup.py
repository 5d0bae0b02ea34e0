"""`kdesk backup FILE` / `kdesk restore FILE`: the whole desk (database rows, original PDFs,
vectors) in one archive and back, into an empty desk (knowledge.desk.backup says what is kept
and how a running desk is backed up)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from knowledge.cli import common


def _summary(manifest: dict[str, Any], archive: Path) -> dict[str, Any]:
    return {
        "file": str(archive),
        "created_at": manifest["created_at"],
        "alembic_revision": manifest["alembic_revision"],
        "tables": manifest["tables"],
        "vectors": {name: info["count"] for name, info in manifest["vectors"].items()},
        "files": manifest["files"],
    }


def _print(summary: dict[str, Any], verb: str, as_json: bool) -> None:
    if as_json:
        common.print_json(summary)
        return
    tables = summary["tables"]
    print(
        f"{verb} {summary['file']}: {tables.get('documents', 0)} documents, "
        f"{tables.get('chunks', 0)} chunks, {sum(summary['vectors'].values())} vectors, "
        f"{summary['files']} PDFs, {sum(tables.values())} rows in {len(tables)} tables "
        f"(schema revision {summary['alembic_revision']}, made {summary['created_at']})"
    )


def cmd_backup(args: argparse.Namespace) -> int:
    from knowledge.desk.backup import backup

    desk = common.open_desk()
    archive = Path(args.file)
    manifest = backup(desk.engine, desk.store.index, archive)
    _print(_summary(manifest, archive), "backed up into", args.json)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Not through a desk: it would build the newest schema (and seed roles) first."""
    from knowledge.core.db import make_engine, sqlite_url
    from knowledge.core.settings import load_settings
    from knowledge.desk.backup import restore
    from knowledge.search.vectors import open_vector_index

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url or sqlite_url(settings.database_path))
    archive = Path(args.file)
    try:
        manifest = restore(settings, engine, open_vector_index(settings), archive)
    finally:
        engine.dispose()
    _print(_summary(manifest, archive), "restored from", args.json)
    return 0


def add_backup_commands(sub: Any) -> None:
    """Register `kdesk backup` and `kdesk restore` on the main parser's subcommands."""
    p = sub.add_parser("backup", help="write every store of the desk into one archive file")
    p.add_argument("file", help="the archive to write (a tar; .tar.gz / .tgz: compressed)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restore a backup archive into an empty desk")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_restore)
