"""`kdesk backup` / `kdesk restore`: every store of a desk in one archive (knowledge.desk.archive
has the format) and back, across databases and vector indexes (a SQLite + embedded-Chroma desk
restores into a PostgreSQL + Chroma-server desk and back).

What is kept: the rows of every table of ``knowledge.desk.schema.target_metadata`` with the
Alembic revision, the original PDFs of the documents, and the vector of every chunk (read from
the vector index). Not kept: the persisted search indexes (``settings.indexes_dir``: derived
data, rebuilt on first use), the document writes in flight (``pending_writes``) and the staged
files of ingestion jobs (``settings.incoming_dir``): a job still queued or running is kept as
failed, "not finished when the backup was made".

A backup of a running desk reads the database in one read transaction, so the rows are one
consistent snapshot; the PDFs and vectors of the documents in that snapshot are read after it.
An upload that commits after the snapshot is not in the backup (its PDF and vectors are not
read either); one queued or being ingested at the snapshot is in it as a failed job, to be
uploaded again after a restore. A document replaced or deleted between the snapshot and the
reading of its PDF or vectors (they are removed once the change commits) makes the backup start
again with a new snapshot, up to three times; then it fails saying the desk kept changing.

A restore goes into an empty desk only (no documents, collections, accounts, edited roles or
other rows; the shipped role templates a new desk seeds are replaced): else it names what is
there and changes nothing. The archive is checked completely (format, checksums, counts, schema
revision known to this code) before anything is written. The database is brought to the
backup's revision, every row inserted in one transaction (in foreign-key order, ``pdf_path``
pointing into this desk's files directory), the PDFs and vectors written before that
transaction commits (removed again when anything fails), then the schema upgraded to the newest
revision.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, Integer, MetaData, Table, func, insert, select, text
from sqlalchemy import delete as sql_delete

from knowledge.core.db import alembic_config, current_revision, downgrade, upgrade
from knowledge.core.settings import Settings
from knowledge.desk.archive import (
    FORMAT,
    FORMAT_VERSION,
    MEMBER_NAME,
    BackupError,
    decoder,
    encode_value,
    unpack_archive,
    write_archive,
)
from knowledge.desk.schema import target_metadata
from knowledge.search.vectors import VectorIndex

ATTEMPTS = 3
BATCH = 1000
SEEDED_BY = "system"  # the updated_by of the role templates a new desk writes
# Document writes in flight: the source desk's own (it undoes the ones that never commit);
# restored, they would point at the source's files and vectors.
NOT_KEPT = ("pending_writes",)
UNFINISHED = "not finished when the backup was made: upload the file again"


def _kept(table: str, row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A row as the backup keeps it: an ingestion job still queued or running is kept as
    failed (its staged upload is not in the backup, and no worker will run it)."""
    if table == "ingest_jobs" and row.get("state") in ("queued", "running"):
        ended = {"state": "failed", "error": UNFINISHED, "finished_at": now}
        return row | ended | {"worker": None, "heartbeat_at": None}
    return row


class _Changed(Exception):
    """The desk changed between the snapshot and reading a PDF or vectors of it."""


def revisions() -> list[str]:
    """The migration history, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


# Backup -------------------------------------------------------------------------------------


def backup(engine: Engine, index: VectorIndex, archive: Path) -> dict[str, Any]:
    """Write the archive of the desk; returns its manifest (without the member checksums)."""
    archive = Path(archive)
    if not archive.parent.is_dir():
        raise BackupError(f"No folder {archive.parent} to write the backup into.")
    reason = ""
    for _ in range(ATTEMPTS):
        with tempfile.TemporaryDirectory(prefix=".kdesk-backup-", dir=archive.parent) as tmp:
            try:
                manifest, members = _snapshot(engine, index, Path(tmp))
            except _Changed as exc:
                reason = str(exc)
                continue
            write_archive(archive, manifest, members)
            return manifest
    raise BackupError(
        f"No backup written: {ATTEMPTS} times the desk changed under it ({reason}). Either "
        "documents kept being replaced or deleted (try again later), or the desk itself lacks "
        "them (ingest that document again)."
    )


@contextmanager
def _read_snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction: every SELECT in it sees the same state of the database."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        elif connection.dialect.name == "sqlite":
            # pysqlite opens no transaction for SELECTs: one explicit BEGIN holds the WAL
            # snapshot of the first read until the end
            connection.exec_driver_sql("BEGIN")
        try:
            yield connection
        finally:
            connection.rollback()


def _snapshot(
    engine: Engine, index: VectorIndex, tmp: Path
) -> tuple[dict[str, Any], dict[str, Path]]:
    members: dict[str, Path] = {}
    counts: dict[str, int] = {}
    pdfs: list[tuple[str, str]] = []  # (file name, pdf_path) of every document
    chunk_ids: dict[str, list[str]] = {}
    (tmp / "tables").mkdir()
    with _read_snapshot(engine) as connection:
        from alembic.migration import MigrationContext

        revision = MigrationContext.configure(connection).get_current_revision()
        if revision != revisions()[-1]:
            raise BackupError(
                f"The database is at schema revision {revision or 'none'}, not this version's "
                f"{revisions()[-1]}: run `kdesk db upgrade` first."
            )
        now = datetime.now(UTC)
        for table in target_metadata().sorted_tables:
            if table.name in NOT_KEPT:
                continue
            name = f"tables/{table.name}.jsonl"
            members[name] = tmp / name
            counts[table.name] = 0
            query = select(table).order_by(*table.primary_key.columns)
            rows = connection.execution_options(yield_per=BATCH).execute(query).mappings()
            with members[name].open("w", encoding="utf-8") as out:
                for row in rows:
                    kept = _kept(table.name, dict(row), now)
                    out.write(json.dumps({k: encode_value(v) for k, v in kept.items()}) + "\n")
                    counts[table.name] += 1
                    if table.name == "documents":
                        pdfs.append((row["file_name"], row["pdf_path"]))
                    elif table.name == "chunks":
                        chunk_ids.setdefault(row["collection"], []).append(row["id"])
    members |= _copy_pdfs(pdfs, tmp)
    vectors = _read_vectors(index, chunk_ids, tmp, members)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": now.isoformat(),
        "alembic_revision": revision,
        "database": engine.dialect.name,
        "tables": counts,
        "vectors": vectors,
        "files": len(pdfs),
    }
    return manifest, members


def _copy_pdfs(pdfs: Sequence[tuple[str, str]], tmp: Path) -> dict[str, Path]:
    copied: dict[str, Path] = {}
    (tmp / "files").mkdir()
    for file_name, pdf_path in pdfs:
        source = Path(pdf_path)
        name = f"files/{source.name}"
        if not MEMBER_NAME.match(name) or name in copied:
            raise BackupError(
                f"The PDF of {file_name} has a file name a backup cannot keep: {source}"
            )
        try:
            shutil.copyfile(source, tmp / name)
        except FileNotFoundError:
            raise _Changed(f"the PDF of {file_name} is gone: {source}") from None
        copied[name] = tmp / name
    return copied


def _read_vectors(
    index: VectorIndex, chunk_ids: dict[str, list[str]], tmp: Path, members: dict[str, Path]
) -> dict[str, dict[str, Any]]:
    (tmp / "vectors").mkdir()
    found: dict[str, dict[str, Any]] = {}
    for n, (collection, ids) in enumerate(sorted(chunk_ids.items())):
        base = f"vectors/{n}"
        dimension = 0
        with (tmp / f"{base}.f32").open("wb") as out:
            for start in range(0, len(ids), BATCH):
                batch = ids[start : start + BATCH]
                vectors = index.get_vectors(collection, batch)
                if len(vectors) != len(batch):
                    missing = len(batch) - len(vectors)
                    raise _Changed(f"{missing} vectors of collection {collection!r} are gone")
                matrix = np.stack([vectors[i] for i in batch]).astype("<f4")
                dimension = dimension or matrix.shape[1]
                if matrix.shape[1] != dimension:
                    raise BackupError(f"The vectors of collection {collection!r} differ in size.")
                out.write(matrix.tobytes())
        (tmp / f"{base}.ids.json").write_text(json.dumps(ids))
        members[f"{base}.ids.json"] = tmp / f"{base}.ids.json"
        members[f"{base}.f32"] = tmp / f"{base}.f32"
        found[collection] = {"count": len(ids), "dimension": int(dimension), "member": base}
    return found


# Restore ------------------------------------------------------------------------------------


def restore(
    settings: Settings, engine: Engine, index: VectorIndex, archive: Path
) -> dict[str, Any]:
    """Restore the archive into this (empty) desk; returns the archive's manifest."""
    history = revisions()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".kdesk-restore-", dir=settings.data_dir) as tmp:
        unpacked = Path(tmp)
        manifest = unpack_archive(Path(archive), unpacked, lambda r: r in history)
        _check_contents(manifest, unpacked)
        _refuse_unless_empty(engine, index, settings.files_dir, manifest, unpacked)
        revision = manifest["alembic_revision"]
        _migrate_to(engine, revision, history)
        tables = _tables_at(engine, revision == history[-1])
        unknown = sorted(set(manifest["tables"]) - {t.name for t in tables})
        if unknown:
            raise BackupError(f"The backup holds tables this schema lacks: {', '.join(unknown)}.")
        written: list[Path] = []
        try:
            with engine.begin() as connection:
                if manifest["tables"].get("roles"):
                    roles = next(t for t in tables if t.name == "roles")
                    connection.execute(sql_delete(roles))  # the seeded templates only
                for table in tables:
                    if manifest["tables"].get(table.name):
                        _insert_rows(connection, table, unpacked, settings.files_dir)
                _reset_sequences(connection, tables)
                _write_pdfs(unpacked / "files", settings.files_dir, written)
                _add_vectors(index, manifest, unpacked)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
                path.with_name(path.name + ".part").unlink(missing_ok=True)
            for collection in manifest["vectors"]:
                index.drop(collection)  # empty before: only what this restore added
            raise
    upgrade(engine)
    return manifest


def _check_contents(manifest: dict[str, Any], unpacked: Path) -> None:
    """The members agree with the manifest's counts (checksums are checked already)."""
    for table, count in manifest["tables"].items():
        path = unpacked / "tables" / f"{table}.jsonl"
        if not path.is_file():
            raise BackupError(f"The backup lacks the rows of table {table}.")
        with path.open("rb") as f:
            if sum(1 for _ in f) != count:
                raise BackupError(f"The backup's table {table} does not hold {count} rows.")
    for collection, info in manifest["vectors"].items():
        ids_path = unpacked / f"{info['member']}.ids.json"
        data_path = unpacked / f"{info['member']}.f32"
        if not ids_path.is_file() or not data_path.is_file():
            raise BackupError(f"The backup lacks the vectors of collection {collection!r}.")
        count, dimension = int(info["count"]), int(info["dimension"])
        ids = json.loads(ids_path.read_text())
        if len(ids) != count or data_path.stat().st_size != count * dimension * 4:
            raise BackupError(f"The vectors of collection {collection!r} are incomplete.")
    files = list((unpacked / "files").glob("*")) if (unpacked / "files").is_dir() else []
    if len(files) != manifest.get("files"):
        raise BackupError(
            f"The backup holds {len(files)} PDFs, its manifest {manifest.get('files')}."
        )


def _refuse_unless_empty(
    engine: Engine, index: VectorIndex, files_dir: Path, manifest: dict[str, Any], unpacked: Path
) -> None:
    present: list[str] = []
    existing = MetaData()
    with engine.connect() as connection:
        existing.reflect(connection)
        for table in existing.sorted_tables:
            if table.name == "alembic_version":
                continue
            query = select(func.count()).select_from(table)
            if table.name == "roles" and "updated_by" in table.c:
                query = query.where(table.c.updated_by != SEEDED_BY)
            if count := int(connection.execute(query).scalar_one()):
                present.append(f"{count} {table.name}")
    for collection in manifest["vectors"]:
        if count := index.count(collection):
            present.append(f"{count} vectors of collection {collection!r}")
    files = [p.name for p in (unpacked / "files").glob("*") if (files_dir / p.name).exists()]
    if files:
        present.append(f"{len(files)} of its PDFs in {files_dir}")
    if present:
        raise BackupError(
            "A backup is restored into an empty desk only, and this one holds "
            + ", ".join(present)
            + ": point KDESK_DATA_DIR (and KDESK_DATABASE_URL / KDESK_CHROMA_URL) at a new one."
        )


def _migrate_to(engine: Engine, revision: str, history: list[str]) -> None:
    """The (empty) database at the backup's revision: upgraded, or taken back to it."""
    now = current_revision(engine)
    if now == revision:
        return
    if now is not None and now not in history:
        raise BackupError(f"The database is at revision {now}, which this version does not know.")
    if now is None or history.index(now) < history.index(revision):
        upgrade(engine, revision)
    else:
        downgrade(engine, revision)


def _tables_at(engine: Engine, newest: bool) -> list[Table]:
    """The tables in foreign-key order: the code's own at the newest revision, else as the
    database has them at the backup's older revision."""
    if newest:
        return list(target_metadata().sorted_tables)
    reflected = MetaData()
    reflected.reflect(engine)
    return [t for t in reflected.sorted_tables if t.name != "alembic_version"]


def _insert_rows(connection: Connection, table: Table, unpacked: Path, files_dir: Path) -> None:
    decode = {c.name: decoder(c) for c in table.columns}
    batch: list[dict[str, object]] = []
    with (unpacked / "tables" / f"{table.name}.jsonl").open(encoding="utf-8") as rows:
        for line in rows:
            row = json.loads(line)
            unknown = set(row) - set(decode)
            if unknown:
                raise BackupError(
                    f"Table {table.name} has no columns {', '.join(sorted(unknown))}."
                )
            values = {k: decode[k](v) for k, v in row.items()}
            if table.name == "documents" and values.get("pdf_path"):
                values["pdf_path"] = str(files_dir / Path(str(values["pdf_path"])).name)
            batch.append(values)
            if len(batch) >= BATCH:
                connection.execute(insert(table), batch)
                batch = []
    if batch:
        connection.execute(insert(table), batch)


def _reset_sequences(connection: Connection, tables: Sequence[Table]) -> None:
    """PostgreSQL: the sequences of integer keys continue after the restored ids."""
    if connection.dialect.name != "postgresql":
        return
    quote = connection.dialect.identifier_preparer.quote
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        sequence = connection.execute(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": keys[0].name}
        ).scalar()
        if sequence:
            top = f"SELECT MAX({quote(keys[0].name)}) FROM {quote(table.name)}"
            connection.execute(
                text(f"SELECT setval(:s, COALESCE(({top}), 0) + 1, false)"), {"s": sequence}
            )


def _write_pdfs(source: Path, files_dir: Path, written: list[Path]) -> None:
    if not source.is_dir():
        return
    files_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        target = files_dir / path.name
        part = target.with_name(target.name + ".part")
        written.append(target)
        shutil.copyfile(path, part)
        part.replace(target)


def _add_vectors(index: VectorIndex, manifest: dict[str, Any], unpacked: Path) -> None:
    for collection, info in manifest["vectors"].items():
        ids = json.loads((unpacked / f"{info['member']}.ids.json").read_text())
        if not ids:
            continue
        shape = (len(ids), int(info["dimension"]))
        matrix = np.memmap(unpacked / f"{info['member']}.f32", dtype="<f4", mode="r", shape=shape)
        for start in range(0, len(ids), BATCH):
            batch = np.asarray(matrix[start : start + BATCH], dtype=np.float32)
            index.add(collection, ids[start : start + BATCH], batch)
        del matrix  # the file is removed with the unpacked archive
