"""`kdesk docs versions|supersede|unlink|diff`: document versions (knowledge.search.versions)
from the command line. A document is named by its id, or by its file name (in --collection
when the name is in several)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TYPE_CHECKING

from knowledge.cli import common
from knowledge.core.errors import KdeskError, NotFoundError

if TYPE_CHECKING:
    from knowledge.core.types import DocumentInfo
    from knowledge.desk.root import Desk


def find_document(desk: Desk, name: str, collection: str | None = None) -> DocumentInfo:
    """A document by id, else by file name (within ``collection`` when given)."""
    try:
        return desk.store.document(name)
    except NotFoundError:
        pass
    found = [
        d for d in desk.store.documents([collection] if collection else None) if d.file_name == name
    ]
    if not found:
        where = f" in collection {collection!r}" if collection else ""
        raise NotFoundError(f"No document {name!r}{where}.")
    if len(found) > 1:
        homes = ", ".join(d.collection for d in found)
        raise KdeskError(f"{name!r} is in several collections ({homes}): give --collection.")
    return found[0]


def _row(doc: DocumentInfo, current: bool) -> dict[str, object]:
    return {
        "doc_id": doc.doc_id,
        "collection": doc.collection,
        "file": doc.file_name,
        "title": doc.title,
        "ingested_at": doc.ingested_at,
        "supersedes": doc.supersedes,
        "current": current,
    }


def cmd_versions(args: argparse.Namespace) -> int:
    desk = common.open_desk()
    chain = desk.versions.chain(find_document(desk, args.doc, args.collection).doc_id)
    rows = [_row(d, i == len(chain) - 1) for i, d in enumerate(chain)]
    if args.json:
        common.print_json({"versions": rows})
        return 0
    for n, d in enumerate(chain, start=1):
        mark = "  (current)" if n == len(chain) else ""
        when = d.ingested_at.strftime("%Y-%m-%d %H:%M")
        print(f"v{n}  {when}  {d.file_name}  {d.doc_id}{mark}")
    return 0


def cmd_supersede(args: argparse.Namespace) -> int:
    desk = common.open_desk()
    new = find_document(desk, args.new, args.collection)
    old = find_document(desk, args.old, args.collection or new.collection)
    desk.versions.supersede(new.doc_id, old.doc_id)
    print(f"{new.file_name} is now the new version of {old.file_name}.")
    return 0


def cmd_unlink(args: argparse.Namespace) -> int:
    desk = common.open_desk()
    doc = find_document(desk, args.doc, args.collection)
    earlier = doc.supersedes
    desk.versions.clear(doc.doc_id)
    if earlier:
        print(f"{doc.file_name} no longer supersedes {desk.store.document(earlier).file_name}.")
    else:
        print(f"{doc.file_name} did not supersede another document.")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    desk = common.open_desk()
    old = find_document(desk, args.old, args.collection)
    new = find_document(desk, args.new, args.collection or old.collection)
    changes = desk.versions.changes(old.doc_id, new.doc_id)
    if args.json:
        common.print_json({"changes": [asdict(c) for c in changes]})
        return 0
    if not changes:
        print(f"No section differs between {old.file_name} and {new.file_name}.")
    for change in changes:
        print(f"{change.kind:8} {change.section} ({change.pages})")
        for line in change.diff():
            print(f"    {line}")
    return 0


def add_version_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    docs = sub.add_parser("docs", help="document versions").add_subparsers(
        dest="docs_command", required=True
    )
    p = docs.add_parser("versions", help="the version chain of a document, oldest first")
    p.add_argument("doc", help="file name or document id")
    p.add_argument("--collection")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_versions)

    p = docs.add_parser("supersede", help="mark NEW as the new version of OLD")
    p.add_argument("new")
    p.add_argument("old")
    p.add_argument("--collection")
    p.set_defaults(func=cmd_supersede)

    p = docs.add_parser("unlink", help="the document no longer supersedes an earlier one")
    p.add_argument("doc")
    p.add_argument("--collection")
    p.set_defaults(func=cmd_unlink)

    p = docs.add_parser("diff", help="the sections that changed between two versions")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--collection")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_diff)
