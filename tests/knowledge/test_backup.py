"""`kdesk backup` / `kdesk restore` (knowledge.desk.backup): every store in one archive and back,
across SQLite + embedded Chroma and PostgreSQL + a Chroma server; bad archives and non-empty
desks are refused before anything is written."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, inspect, select

from knowledge.access.roles import Role
from knowledge.core.db import current_revision, head_revision, make_engine, sqlite_url
from knowledge.core.settings import Settings
from knowledge.desk.archive import BackupError, encode_value
from knowledge.desk.backup import _read_snapshot, backup, restore
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.desk.schema import target_metadata
from knowledge.search.vectors import open_vector_index
from tests.contract_samples import contract_pdf
from tests.pdfs import make_pdf

PASSWORD = "a long backup password"
LEAVE = [
    "Leave Policy\n\nEmployees receive 25 days of paid annual leave each calendar year.",
    "Sick leave requires a medical certificate after three consecutive days of absence.",
    "Parental leave is 26 weeks for birth parents and four weeks for partners.",
]
TRAVEL = [
    "Travel Policy\n\nHotel rooms are limited to 180 euros per night in capital cities.",
    "Train travel is second class unless the journey is longer than four hours.",
]
QUESTIONS = [
    "How many days of annual leave do employees get?",
    "What is the hotel limit per night?",
    "Which law governs the supply agreement?",
    "parental leave weeks",
]


@pytest.fixture
def source(desk: Desk) -> Desk:
    """A desk with a bit of everything: documents in three collections (one a contract with
    clause records), tags, an account, an edited role, an answered and rated question."""
    desk.ingest([Upload("leave.pdf", make_pdf(LEAVE, title="Leave Policy"))], "HR", tags=["hr"])
    desk.ingest([Upload("travel.pdf", make_pdf(TRAVEL, title="Travel Policy"))], "Finance")
    desk.ingest([Upload("supply.pdf", contract_pdf())], "Contracts", contracts=True)
    desk.roles.save(Role("hr", pages=("chat",), collections=("HR",)), "test")
    desk.accounts.add("hanna", ["hr"], "test", password=PASSWORD)
    stream = desk.ask("How many days of annual leave do employees get?")
    "".join(stream)
    desk.feedback(stream.answer.event_id or "", "up", "clear")
    return desk


def target_settings(root: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=root, model_backend="ollama", **overrides)


def run_restore(settings: Settings, archive: Path) -> dict[str, Any]:
    engine = make_engine(settings.database_url or sqlite_url(settings.database_path))
    try:
        return restore(settings, engine, open_vector_index(settings), archive)
    finally:
        engine.dispose()


def run_backup(desk: Desk, archive: Path) -> dict[str, Any]:
    return backup(desk.engine, desk.store.index, archive)


def answers(desk: Desk) -> list[list[tuple[str, float]]]:
    return [[(h.chunk.id, round(h.score, 4)) for h in desk.search(q, None, 5)] for q in QUESTIONS]


def rows(engine: Engine) -> dict[str, list[str]]:
    """Every row of every table as JSON (PDF paths by their file name only)."""
    found: dict[str, list[str]] = {}
    with engine.connect() as connection:
        for table in target_metadata().sorted_tables:
            dumped = []
            for row in connection.execute(select(table)).mappings():
                values = {k: encode_value(v) for k, v in row.items()}
                if table.name == "documents":
                    values["pdf_path"] = Path(str(values["pdf_path"])).name
                dumped.append(json.dumps(values, sort_keys=True))
            found[table.name] = sorted(dumped)
    return found


def assert_same_desk(restored: Desk, source: Desk, expected: list[list[tuple[str, float]]]):
    assert rows(restored.engine) == rows(source.engine)
    assert answers(restored) == expected
    for doc in restored.store.documents():
        path = Path(doc.pdf_path)
        assert path.parent == restored.settings.files_dir
        original = source.store.document(doc.doc_id)
        assert path.read_bytes() == Path(original.pdf_path).read_bytes()
    for name in source.store.collection_names():
        ids = [c.id for c in source.store.collection_chunks(name)]
        assert restored.store.index.count(name) == len(ids)
        before, after = (
            source.store.index.get_vectors(name, ids),
            restored.store.index.get_vectors(name, ids),
        )
        # (Chroma normalises what it stores for cosine: the same vectors, to the last bit or so)
        assert all(np.allclose(before[i], after[i], rtol=0, atol=1e-6) for i in ids)
    assert current_revision(restored.engine) == head_revision()


def test_round_trip_sqlite_to_sqlite(source: Desk, tmp_path: Path, embedder, model):
    expected = answers(source)
    assert all(expected) and source.contracts.records()
    archive = tmp_path / "desk.tar"
    manifest = run_backup(source, archive)
    assert manifest["tables"]["documents"] == 3 and manifest["tables"]["users"] == 1
    assert manifest["files"] == 3 and set(manifest["vectors"]) == {"HR", "Finance", "Contracts"}
    assert manifest["alembic_revision"] == head_revision()

    # into a new desk (its seeded role templates are replaced by the backup's roles)
    settings = target_settings(tmp_path / "restored")
    Desk(settings, embedder=embedder, model=model)
    run_restore(settings, archive)
    restored = Desk(settings, embedder=embedder, model=model)
    assert_same_desk(restored, source, expected)
    assert restored.accounts.authenticate("hanna", PASSWORD).name == "hanna"
    assert restored.roles.role("hr").collections == ("HR",)
    records = sorted((r.category, r.text) for r in restored.contracts.records())
    assert records == sorted((r.category, r.text) for r in source.contracts.records())
    # the restored desk works on: a replaced document, a new one
    restored.ingest([Upload("leave.pdf", make_pdf([*LEAVE, "Leave carries over."]))], "HR")
    restored.ingest([Upload("new.pdf", make_pdf(["Remote work is allowed two days a week."]))])
    assert restored.search("remote work days", None, 1)[0].chunk.file_name == "new.pdf"


def test_sqlite_to_postgresql_and_chroma_server_and_back(
    source: Desk, tmp_path: Path, postgres_url: str, chroma_url: str, embedder, model
):
    expected = answers(source)
    archive = tmp_path / "desk.tar.gz"
    run_backup(source, archive)
    server = target_settings(tmp_path / "team", database_url=postgres_url, chroma_url=chroma_url)
    run_restore(server, archive)  # into a database that has no schema yet
    team = Desk(server, embedder=embedder, model=model)
    assert team.engine.dialect.name == "postgresql"
    assert_same_desk(team, source, expected)
    assert not server.chroma_dir.exists()
    # restored integer keys do not collide with the next ones (PostgreSQL sequences)
    team.audit.record("test", "user_unlocked", "hanna")
    assert len(rows(team.engine)["audit_events"]) == len(rows(source.engine)["audit_events"]) + 1

    back = tmp_path / "back.tar"
    run_backup(team, back)
    again = target_settings(tmp_path / "again")
    run_restore(again, back)
    home = Desk(again, embedder=embedder, model=model)
    assert answers(home) == expected
    assert rows(home.engine)["chunks"] == rows(source.engine)["chunks"]


def release_backup(archive: Path, out: Path, tmp: Path) -> Path:
    """``archive`` as a backup made at schema revision 1 (the release, before the sentence and
    instruction-page columns) would be."""
    from knowledge.desk.archive import write_archive

    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    manifest = json.loads((tmp / "manifest.json").read_text())
    members = {name: tmp / name for name in manifest.pop("members")}
    dropped = {
        "chunks": ("sentence_spans", "sentence_vectors"),
        "documents": ("instruction_pages", "media_type", "page_labels", "ocr_pages", "supersedes"),
    }
    for table, columns in dropped.items():
        path = tmp / "tables" / f"{table}.jsonl"
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text(
            "".join(
                json.dumps({k: v for k, v in row.items() if k not in columns}) + "\n"
                for row in lines
            )
        )
    for table in ("ingest_jobs", "conversations", "conversation_turns", "tool_calls"):  # 3, 5, 8
        del manifest["tables"][table], members[f"tables/{table}.jsonl"]
    write_archive(out, manifest | {"alembic_revision": "1"}, members)
    return out


@pytest.mark.parametrize("target", ["no database yet", "a new desk"])
def test_a_backup_of_an_older_schema_is_restored_and_upgraded(
    target: str, source: Desk, tmp_path: Path, embedder, model
):
    run_backup(source, tmp_path / "desk.tar")
    older = release_backup(tmp_path / "desk.tar", tmp_path / "release.tar", tmp_path / "unpacked")
    settings = target_settings(tmp_path / "restored")
    if target == "a new desk":  # its database is at the newest revision: taken back first
        Desk(settings, embedder=embedder, model=model)
    run_restore(settings, older)
    restored = Desk(settings, embedder=embedder, model=model)
    assert current_revision(restored.engine) == head_revision()
    before, after = rows(source.engine), rows(restored.engine)
    assert len(after["chunks"]) == len(before["chunks"]) and after["users"] == before["users"]
    assert all(json.loads(r)["sentence_spans"] is None for r in after["chunks"])
    [hit, *_] = restored.search(QUESTIONS[0], None, 3)
    assert hit.chunk.file_name == "leave.pdf"


# Refused ----------------------------------------------------------------------------------------


def untouched(settings: Settings) -> None:
    """Nothing of a desk was made."""
    assert not settings.files_dir.exists()
    if settings.database_path.exists():
        engine = make_engine(sqlite_url(settings.database_path))
        assert inspect(engine).get_table_names() == []
        engine.dispose()


def rewrite(archive: Path, out: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """A copy of ``archive`` whose members pass through ``change(name, data) -> data | None``."""
    with tarfile.open(archive) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            data = change(member.name, data)
            if data is not None:
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))
    return out


def manifest_change(**changes: Any):  # type: ignore[no-untyped-def]
    def change(name: str, data: bytes) -> bytes:
        if name == "manifest.json":
            return json.dumps(json.loads(data) | changes).encode()
        return data

    return change


def test_bad_archives_are_refused_before_anything_is_written(source: Desk, tmp_path: Path):
    archive = tmp_path / "desk.tar"
    run_backup(source, archive)
    data = archive.read_bytes()
    (tmp_path / "truncated.tar").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.tar").write_bytes(b"not an archive at all" * 100)
    bad = {
        "missing.tar": "No backup file",
        "truncated.tar": "truncated or not a tar archive|incomplete",
        "noise.tar": "truncated or not a tar archive",
    }

    def flip(name: str, content: bytes) -> bytes:
        if name == "tables/documents.jsonl":
            return content.replace(b"leave.pdf", b"LEAVE.pdf")
        return content

    rewrite(archive, tmp_path / "corrupt.tar", flip)
    bad["corrupt.tar"] = "does not match its checksum"
    rewrite(archive, tmp_path / "format.tar", manifest_change(format="zip-of-things"))
    bad["format.tar"] = "not a Knowledge Desk backup"
    rewrite(archive, tmp_path / "future.tar", manifest_change(format_version=99))
    bad["future.tar"] = "backup format 99, newer"
    rewrite(archive, tmp_path / "newer.tar", manifest_change(alembic_revision="999"))
    bad["newer.tar"] = "schema revision '999'.*does not know"
    rewrite(archive, tmp_path / "short.tar", lambda n, d: None if n.startswith("files/") else d)
    bad["short.tar"] = "incomplete"
    rewrite(archive, tmp_path / "nomanifest.tar", lambda n, d: None if n == "manifest.json" else d)
    bad["nomanifest.tar"] = "no manifest.json first"

    for name, message in bad.items():
        settings = target_settings(tmp_path / f"into-{name}")
        with pytest.raises(BackupError, match=message):
            run_restore(settings, tmp_path / name)
        untouched(settings)


def test_a_desk_with_contents_is_refused_and_left_unchanged(
    source: Desk, tmp_path: Path, embedder, model
):
    archive = tmp_path / "desk.tar"
    run_backup(source, archive)
    with pytest.raises(BackupError, match=r"holds .*3 documents.*vectors of collection 'HR'"):
        run_restore(source.settings, archive)

    settings = target_settings(tmp_path / "accounts only")
    other = Desk(settings, embedder=embedder, model=model)
    other.accounts.add("olga", ["admin"], "test", password=PASSWORD)
    before = rows(other.engine)
    with pytest.raises(BackupError, match=r"empty desk only.* 1 users"):
        run_restore(settings, archive)
    assert rows(other.engine) == before
    assert other.store.collection_names() == [] and not settings.files_dir.exists()
    assert other.store.index.count("HR") == 0


def test_a_failed_restore_leaves_the_desk_empty(source: Desk, tmp_path: Path, monkeypatch):
    archive = tmp_path / "desk.tar"
    run_backup(source, archive)
    settings = target_settings(tmp_path / "restored")

    def boom(*args: object) -> None:
        raise RuntimeError("vector index full")

    monkeypatch.setattr("knowledge.desk.backup._add_vectors", boom)
    with pytest.raises(RuntimeError, match="vector index full"):
        run_restore(settings, archive)
    engine = make_engine(sqlite_url(settings.database_path))
    assert all(not r for r in rows(engine).values())
    engine.dispose()
    assert list(settings.files_dir.glob("*")) == []
    monkeypatch.undo()
    run_restore(settings, archive)  # and it can be restored afterwards


# A running desk ---------------------------------------------------------------------------------


def test_the_database_is_read_in_one_snapshot(database_url: str, tmp_path: Path, embedder):
    desk = Desk(target_settings(tmp_path / "data", database_url=database_url), embedder=embedder)
    desk.store.ensure_collection("HR")
    collections = target_metadata().tables["collections"]
    with _read_snapshot(desk.engine) as snapshot:
        assert snapshot.execute(select(collections.c.name)).scalars().all() == ["HR"]
        desk.store.ensure_collection("Arrived meanwhile")  # another connection commits
        assert snapshot.execute(select(collections.c.name)).scalars().all() == ["HR"]
    assert desk.store.collection_names() == ["Arrived meanwhile", "HR"]
    desk.engine.dispose()


def test_a_document_replaced_during_the_backup_makes_it_start_again(
    source: Desk, tmp_path: Path, monkeypatch
):
    index = source.store.index
    real = index.get_vectors
    calls = {"n": 0}

    def vanishing(collection: str, ids):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        found = real(collection, ids)
        return dict(list(found.items())[1:]) if calls["n"] == 1 else found

    monkeypatch.setattr(index, "get_vectors", vanishing)
    manifest = run_backup(source, tmp_path / "desk.tar")
    assert calls["n"] > 1 and manifest["tables"]["documents"] == 3

    monkeypatch.setattr(index, "get_vectors", lambda c, ids: {})
    with pytest.raises(
        BackupError, match="3 times the desk changed under it.*vectors of collection"
    ):
        run_backup(source, tmp_path / "never.tar")
    assert not (tmp_path / "never.tar").exists()


# The commands -----------------------------------------------------------------------------------


def test_backup_and_restore_commands(tmp_path: Path, monkeypatch, capsys, embedder):
    from knowledge.cli import common
    from knowledge.cli.main import main
    from knowledge.core.settings import load_settings

    errors: list[str] = []

    def run(*argv: str) -> tuple[int, Any]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        errors.append(err)
        return code, json.loads(out) if out.strip().startswith("{") else out

    monkeypatch.setenv("KDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(common, "open_desk", lambda: Desk(load_settings(), embedder=embedder))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.pdf").write_bytes(make_pdf(LEAVE, title="Leave Policy"))
    assert run("ingest", str(docs), "--collection", "HR")[0] == 0
    code, searched = run("search", "annual leave days", "--json")
    assert code == 0 and searched["results"]

    archive = tmp_path / "backups" / "kdesk.tar"
    archive.parent.mkdir()
    code, made = run("backup", str(archive), "--json")
    assert code == 0 and archive.is_file()
    assert made["file"] == str(archive) and made["tables"]["documents"] == 1
    assert made["vectors"] == {"HR": made["tables"]["chunks"]} and made["files"] == 1
    assert made["alembic_revision"] == head_revision()

    monkeypatch.setenv("KDESK_DATA_DIR", str(tmp_path / "elsewhere"))
    code, restored = run("restore", str(archive), "--json")
    assert code == 0 and restored == made
    assert run("search", "annual leave days", "--json") == (0, searched)
    code, text = run("db", "current")
    assert code == 0 and text.strip() == head_revision()

    # again: the desk is not empty any more (exit 2, the reason on stderr)
    assert run("restore", str(archive)) == (2, "")
    assert "empty desk only" in errors[-1] and "1 documents" in errors[-1]
    code, text = run("backup", str(tmp_path / "second.tar"))
    assert code == 0 and text.startswith(f"backed up into {tmp_path / 'second.tar'}: 1 documents")
    (tmp_path / "broken.tar").write_bytes(archive.read_bytes()[:5000])
    monkeypatch.setenv("KDESK_DATA_DIR", str(tmp_path / "third"))
    assert run("restore", str(tmp_path / "broken.tar")) == (2, "")
    assert errors[-1].startswith("error: broken.tar is ") and "truncated" in errors[-1]


def test_a_desk_missing_a_pdf_is_not_backed_up_silently(source: Desk, tmp_path: Path):
    [leave] = source.store.documents(["HR"])
    Path(leave.pdf_path).unlink()
    with pytest.raises(BackupError, match="the PDF of leave.pdf is gone.*ingest that document"):
        run_backup(source, tmp_path / "desk.tar")
    assert not (tmp_path / "desk.tar").exists() and list(tmp_path.glob(".kdesk-backup-*")) == []
    with pytest.raises(BackupError, match="No folder"):
        run_backup(source, tmp_path / "nowhere" / "desk.tar")


def test_unfinished_jobs_are_kept_as_failed_and_writes_in_flight_not_at_all(
    source: Desk, tmp_path: Path, embedder, model
):
    from knowledge.desk.backup import UNFINISHED

    queued = source.jobs.create(Upload("late.pdf", make_pdf(["Arrives late."])), "HR", "olga")
    source.store._begin_write(
        "a-dead-worker", "HR", ["x-v1-0"], source.settings.files_dir / "x.pdf"
    )
    manifest = run_backup(source, tmp_path / "desk.tar")
    assert "pending_writes" not in manifest["tables"] and manifest["tables"]["ingest_jobs"] >= 1
    assert source.jobs.get(queued.job_id).state == "queued"  # the source is left as it is

    settings = target_settings(tmp_path / "restored")
    run_restore(settings, tmp_path / "desk.tar")
    restored = Desk(settings, embedder=embedder, model=model)
    job = restored.jobs.get(queued.job_id)
    assert job.state == "failed" and job.error == UNFINISHED and job.finished_at is not None
    assert restored.store.pending_writers() == [] and restored.jobs.resumable() == []
    assert not settings.incoming_dir.exists()
