"""The backup archive's format (knowledge.desk.backup writes and reads it).

One tar file (gzip-compressed when its name ends in .gz or .tgz), members in this order:

- ``manifest.json``: ``format`` ("kdesk-backup"), ``format_version``, ``created_at``,
  ``alembic_revision``, ``database`` (the dialect it came from), ``tables`` (rows per table),
  ``vectors`` (per collection: ``count``, ``dimension``, ``member``), ``files`` (PDFs) and
  ``members`` (name -> sha256 and size of every other member);
- ``tables/NAME.jsonl``: one JSON object per row, column -> value; datetimes as ISO 8601 (UTC),
  dates as ISO days, binary values as base64, everything else as JSON has it;
- ``files/NAME``: the original PDFs, by the file name of their ``documents.pdf_path``;
- ``vectors/N.ids.json`` and ``vectors/N.f32``: a collection's chunk ids and their vectors
  (little-endian float32 rows, in the order of the ids).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, TypeDecorator

from knowledge.core.errors import KdeskError

FORMAT = "kdesk-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MEMBER_NAME = re.compile(
    r"^(tables/[A-Za-z0-9_]+\.jsonl|files/[A-Za-z0-9_.-]+|vectors/[0-9]+\.(ids\.json|f32))$"
)
CHUNK = 1 << 20


class BackupError(KdeskError):
    """An archive that cannot be restored (truncated, corrupt, another format, too new), or a
    desk that cannot be backed up or restored into; the message says which and why."""


# Values ---------------------------------------------------------------------------------------


def encode_value(value: object) -> object:
    """A column value as JSON can hold it (decoded again by ``decoder``)."""
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _python_type(column: Column[Any]) -> type | None:
    kind = column.type
    while isinstance(kind, TypeDecorator):  # e.g. UTCDateTime: what it stores
        kind = kind.impl_instance
    try:
        return kind.python_type
    except NotImplementedError:
        return None


def decoder(column: Column[Any]) -> Callable[[object], object]:
    """How a JSON value of ``column`` becomes the value to insert, by the column's type."""
    kind = _python_type(column)
    if kind is not None and issubclass(kind, datetime):
        return lambda v: None if v is None else datetime.fromisoformat(str(v)).astimezone(UTC)
    if kind is not None and issubclass(kind, date):
        return lambda v: None if v is None else date.fromisoformat(str(v))
    if kind is not None and issubclass(kind, bytes):
        return lambda v: None if v is None else base64.b64decode(str(v), validate=True)
    return lambda v: v


# Writing ----------------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def write_archive(target: Path, manifest: dict[str, Any], members: dict[str, Path]) -> None:
    """``manifest`` (with every member's checksum added) first, then the members, into a file
    beside ``target`` renamed over it at the end (no half-written archive under its name)."""
    manifest = manifest | {
        "members": {
            name: {"sha256": sha256_of(p), "size": p.stat().st_size} for name, p in members.items()
        }
    }
    mode = "w:gz" if target.name.endswith((".gz", ".tgz")) else "w"
    part = target.with_name(target.name + ".part")
    data = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
    try:
        with tarfile.open(part, mode) as tar:  # type: ignore[call-overload]
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), _mtime(manifest), 0o600
            tar.addfile(info, io.BytesIO(data))
            for name, path in members.items():
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = path.stat().st_size, _mtime(manifest), 0o600
                with path.open("rb") as f:
                    tar.addfile(info, f)
        part.replace(target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _mtime(manifest: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(manifest["created_at"]).timestamp())


# Reading ----------------------------------------------------------------------------------------


def unpack_archive(archive: Path, into: Path, known_revision: Callable[[str], bool]) -> dict:  # type: ignore[type-arg]
    """Check ``archive`` completely and unpack its members into ``into``: its manifest (format,
    version, a revision this code knows), every member's checksum and size, nothing missing,
    nothing else. Returns the manifest; any problem is a BackupError, before anything is
    restored."""
    name = archive.name
    if not archive.is_file():
        raise BackupError(f"No backup file {archive}.")
    try:
        with tarfile.open(archive, "r:*") as tar:
            manifest = _manifest(tar, name, known_revision)
            expected: dict[str, dict[str, Any]] = manifest["members"]
            seen: set[str] = set()
            for member in _members(tar):
                _unpack_member(tar, member, expected, seen, into, name)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BackupError(f"{name} is truncated or not a tar archive ({exc}).") from None
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupError(
            f"{name} is incomplete (truncated?): {len(missing)} members missing ({missing[0]}, ...)"
        )
    return manifest


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (member := tar.next()) is not None:
        yield member


def _manifest(tar: tarfile.TarFile, name: str, known_revision: Callable[[str], bool]) -> dict:  # type: ignore[type-arg]
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isfile():
        raise BackupError(f"{name} is not a Knowledge Desk backup (no {MANIFEST} first).")
    stream = tar.extractfile(first)
    assert stream is not None
    try:
        manifest = json.loads(stream.read())
    except ValueError:
        raise BackupError(f"{name}: its {MANIFEST} is not JSON.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{name} is not a Knowledge Desk backup (format is not {FORMAT!r}).")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BackupError(
            f"{name} is in backup format {version!r}, newer than this version reads "
            f"({FORMAT_VERSION}): restore it with the version of Knowledge Desk that made it."
        )
    revision = manifest.get("alembic_revision")
    if not isinstance(revision, str) or not known_revision(revision):
        raise BackupError(
            f"{name} holds a database at schema revision {revision!r}, which this version of "
            "Knowledge Desk does not know (a newer one made it): upgrade Knowledge Desk first."
        )
    for key in ("members", "tables", "vectors"):
        if not isinstance(manifest.get(key), dict):
            raise BackupError(f"{name}: its {MANIFEST} lacks {key!r}.")
    for entry in manifest["members"].values():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise BackupError(f"{name}: its {MANIFEST} lists a member without a checksum.")
    return manifest


def _unpack_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    expected: dict[str, dict[str, Any]],
    seen: set[str],
    into: Path,
    name: str,
) -> None:
    if not member.isfile() or member.name not in expected or not MEMBER_NAME.match(member.name):
        raise BackupError(f"{name} holds {member.name!r}, which its manifest does not list.")
    if member.name in seen:
        raise BackupError(f"{name} holds {member.name!r} twice.")
    stream = tar.extractfile(member)
    assert stream is not None
    target = into / member.name
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with target.open("wb") as out:
        while block := stream.read(CHUNK):
            digest.update(block)
            size += len(block)
            out.write(block)
    want = expected[member.name]
    if digest.hexdigest() != want.get("sha256") or size != want.get("size"):
        raise BackupError(f"{name}: {member.name} does not match its checksum (corrupt archive).")
    seen.add(member.name)
