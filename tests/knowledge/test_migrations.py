"""The schema's Alembic migrations (knowledge/core/migrations): a new database is built to head, a
database of the last release (60a8b14) is recognised, stamped and upgraded with nothing lost,
on SQLite and on PostgreSQL; head matches the models exactly; concurrent starts migrate once;
`kdesk db upgrade|current`.

tests/fixtures/release-60a8b14.sqlite3 was written by the release's own code
(tests/fixtures/make_release_db.py says how) and has rows in every table."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from argon2 import PasswordHasher
from sqlalchemy import Engine, event, inspect, select, text

from knowledge.access.accounts import AccountBook
from knowledge.access.audit import AuditLog, AuditQuery
from knowledge.access.rolebook import RoleBook
from knowledge.cli.main import main
from knowledge.core.db import (
    MIGRATIONS,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    sqlite_url,
    upgrade,
)
from knowledge.core.settings import Settings
from knowledge.desk.root import Desk
from knowledge.desk.schema import target_metadata
from knowledge.usage.events import UsageLog
from tests.conftest import ScriptedChatModel

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "release-60a8b14.sqlite3"
RELEASE_TABLES = {
    "audit_events", "chunks", "clause_reviews", "clauses", "collections", "contracts",
    "documents", "rate_limit_hits", "roles", "usage_citations", "usage_events",
    "usage_question_vectors", "user_roles", "users",
}  # fmt: skip
HEAD_TABLES = RELEASE_TABLES | {"ingest_jobs", "pending_writes"}  # revision 3
HEAD_TABLES |= {"conversations", "conversation_turns"}  # revision 5
HEAD_TABLES |= {"answer_cache"}  # revision 6
HEAD_TABLES |= {"tool_calls"}  # revision 8
HEAD_TABLES |= {"api_keys"}  # revision 9
NEW_COLUMNS = {
    "chunks": {"sentence_spans", "sentence_vectors"},
    "documents": {"instruction_pages", "media_type", "page_labels", "ocr_pages", "supersedes"},
    "usage_events": {"route", "route_reason", "cached"},
}
ALICE_PASSWORD = "correct horse battery"  # the fixture's local account
HEAD = head_revision()


def release_revision() -> ModuleType:
    """knowledge/core/migrations/versions/0001_release_60a8b14.py (its release_schema())."""
    path = MIGRATIONS / "versions" / "0001_release_60a8b14.py"
    spec = importlib.util.spec_from_file_location("release_revision", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def schema_diff(engine: Engine, metadata=None) -> list:  # type: ignore[no-untyped-def]
    """What autogenerate would write to go from the database to ``metadata`` (the models)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata or target_metadata()))


def columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def version_rows(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(text("SELECT version_num FROM alembic_version")))


def _utc(value: object) -> object:  # SQLite gives back naive UTC times, PostgreSQL aware ones
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def release_rows(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every release table, release columns only, in primary-key order."""
    found = {}
    with engine.connect() as connection:
        for table in release_revision().release_schema().sorted_tables:
            query = select(*table.columns).order_by(*table.primary_key.columns)
            found[table.name] = [tuple(map(_utc, row)) for row in connection.execute(query)]
    return found


@pytest.fixture
def release_copy(tmp_path: Path) -> Path:
    """A copy of the release's database file, at tmp_path/data/kdesk.sqlite3."""
    path = tmp_path / "data" / "kdesk.sqlite3"
    path.parent.mkdir()
    shutil.copyfile(FIXTURE, path)
    return path


def record_ddl(engine: Engine) -> list[str]:
    """The schema-changing statements the engine runs from now on."""
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _ddl(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.lstrip().split(" ", 1)[0].upper() in ("CREATE", "ALTER", "DROP"):
            seen.append(statement)

    return seen


# The package -------------------------------------------------------------------------------


def test_the_migrations_ship_in_the_package():
    from importlib.resources import files

    package = files("knowledge.core.migrations")
    assert package.joinpath("env.py").is_file()
    assert package.joinpath("script.py.mako").is_file()
    versions = {p.name for p in package.joinpath("versions").iterdir() if p.name.endswith(".py")}
    assert {"0001_release_60a8b14.py", "0002_sentences_instruction_pages.py"} <= versions
    script = ScriptDirectory.from_config(alembic_config())
    assert [r.revision for r in script.walk_revisions()][-3:] == ["3", "2", "1"]  # newest first


def test_the_release_fixture_is_small_and_has_rows_in_every_table():
    assert FIXTURE.stat().st_size < 1_000_000
    engine = make_engine(sqlite_url(FIXTURE))
    try:
        assert tables(engine) == RELEASE_TABLES
        assert "alembic_version" not in inspect(engine).get_table_names()
        assert all(release_rows(engine).values()), "a table of the fixture is empty"
        # revision 1 is exactly the schema the release made
        assert schema_diff(engine, release_revision().release_schema()) == []
    finally:
        engine.dispose()


# A new database ------------------------------------------------------------------------------


def test_a_new_database_upgrades_to_head_matching_the_models(database_url: str):
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == HEAD
    assert tables(engine) == HEAD_TABLES
    assert schema_diff(engine) == [], "head differs from Base.metadata"
    ddl = record_ddl(engine)
    upgrade(engine)  # a second start: nothing to do
    assert ddl == [] and version_rows(engine) == [HEAD]
    engine.dispose()


def test_revision_1_is_the_release_schema_and_downgrades_cleanly(database_url: str):
    engine = make_engine(database_url)
    upgrade(engine, "1")
    assert current_revision(engine) == "1"
    assert schema_diff(engine, release_revision().release_schema()) == []
    assert not columns(engine, "chunks") & NEW_COLUMNS["chunks"]
    upgrade(engine)
    downgrade(engine, "1")
    assert current_revision(engine) == "1"
    assert schema_diff(engine, release_revision().release_schema()) == []
    downgrade(engine, "base")
    assert tables(engine) == set() and current_revision(engine) is None
    engine.dispose()


def test_a_failed_upgrade_leaves_the_database_as_it_was(
    database_url: str, monkeypatch: pytest.MonkeyPatch
):
    """The whole upgrade is one transaction (DDL included, on SQLite too)."""
    from alembic import command

    original = command.upgrade

    def upgrade_then_fail(config, revision):  # type: ignore[no-untyped-def]
        original(config, revision)
        raise RuntimeError("the disk is full")

    engine = make_engine(database_url)
    monkeypatch.setattr(command, "upgrade", upgrade_then_fail)
    with pytest.raises(RuntimeError, match="disk is full"):
        upgrade(engine)
    assert tables(engine) == set() and current_revision(engine) is None
    monkeypatch.undo()
    upgrade(engine)
    assert current_revision(engine) == HEAD
    engine.dispose()


def test_concurrent_starts_migrate_once(database_url: str, tmp_path: Path):
    """Three processes upgrade the same new database at the same moment."""
    start = time.time() + 3  # after every process has imported what it needs
    code = (
        "import sys, time\n"
        "from knowledge.core.db import make_engine, upgrade\n"
        "engine = make_engine(sys.argv[1])\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "upgrade(engine)\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, database_url, str(start)],
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for p in processes:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
    engine = make_engine(database_url)
    assert version_rows(engine) == [HEAD]
    assert schema_diff(engine) == []
    engine.dispose()


# A database made before Alembic ------------------------------------------------------------


def test_the_release_database_upgrades_to_head_with_nothing_lost(release_copy: Path):
    engine = make_engine(sqlite_url(release_copy))
    before = release_rows(engine)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert release_rows(engine) == before, "a row changed"
    check_upgraded_release(engine, before)
    engine.dispose()


def test_the_release_database_upgrades_on_postgresql(postgres_url: str):
    """The fixture's rows moved into a PostgreSQL database at revision 1, then upgraded."""
    release = release_revision().release_schema()
    source = make_engine(sqlite_url(FIXTURE))
    engine = make_engine(postgres_url)
    upgrade(engine, "1")
    with source.connect() as reading, engine.begin() as writing:
        for table in release.sorted_tables:  # parents first
            rows = [row._asdict() for row in reading.execute(select(*table.columns))]
            writing.execute(table.insert(), rows)
            if "id" in table.columns and table.columns["id"].autoincrement is True:
                writing.execute(  # explicit ids do not move the sequence on
                    text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), :n)"),
                    {"n": max(r["id"] for r in rows)},
                )
    before = release_rows(source)
    source.dispose()
    assert release_rows(engine) == before
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert release_rows(engine) == before, "a row changed"
    check_upgraded_release(engine, before)
    engine.dispose()


def check_upgraded_release(engine: Engine, before: dict[str, list[tuple]]) -> None:
    """Head's schema, the new columns NULL on old rows, and the components read the rows."""
    assert schema_diff(engine) == []
    assert {name: len(rows) for name, rows in release_rows(engine).items()} == {
        name: len(rows) for name, rows in before.items()
    }
    with engine.connect() as connection:
        for table, new in NEW_COLUMNS.items():
            assert new <= columns(engine, table)
            for column in new:
                filled = connection.scalar(text(f"SELECT count({column}) FROM {table}"))
                assert filled == 0, f"{table}.{column} is not NULL on rows of the release"
        tags = dict(connection.execute(text("SELECT file_name, tags FROM documents")).all())
        breaks = connection.scalars(text("SELECT page_break FROM chunks")).all()
    assert json.loads(tags["travel.pdf"]) == ["travel", "finance"]
    assert any(b is not None for b in breaks)

    audit = AuditLog(engine)
    roles = RoleBook(engine, audit)
    assert "auditors" in roles.names() and roles.members("auditors") == ["alice", "bob@example.com"]
    fast = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    accounts = AccountBook(engine, roles, audit, hasher=fast)
    assert accounts.authenticate("alice", ALICE_PASSWORD).roles == ("auditors",)
    actions = [e.action for e in audit.events(AuditQuery())]
    assert {"role_saved", "user_added", "sign_in", "permission_denied"} <= set(actions)
    usage = UsageLog(engine)
    with engine.connect() as connection:
        ids = connection.scalars(text("SELECT id FROM usage_events ORDER BY feedback")).all()
    down, up = (usage.event(i) for i in ids)
    assert (up["feedback"], up["feedback_comment"]) == (1, "clear and cited")
    assert up["cited_documents"] == ["leave.pdf"] and up["user"] == "alice"
    assert (down["feedback"], down["abstained"]) == (-1, True)


def test_downgrading_the_release_database_keeps_its_rows(release_copy: Path):
    """SQLite rebuilds a table to drop a column: that must not cascade into the rows that
    refer to it (foreign keys are off while migrating, on again afterwards)."""
    engine = make_engine(sqlite_url(release_copy))
    before = release_rows(engine)
    upgrade(engine)
    downgrade(engine, "1")
    assert current_revision(engine) == "1"
    assert release_rows(engine) == before
    assert not columns(engine, "documents") & NEW_COLUMNS["documents"]
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_a_desk_opens_the_release_database(release_copy: Path, embedder):
    settings = Settings(data_dir=release_copy.parent, model_backend="ollama")
    desk = Desk(settings, embedder=embedder, model=ScriptedChatModel())
    assert current_revision(desk.engine) == head_revision()
    docs = {d.file_name: d for d in desk.store.documents()}
    assert set(docs) == {"leave.pdf", "travel.pdf", "supply.pdf"}
    assert docs["travel.pdf"].tags == ("travel", "finance")
    assert docs["leave.pdf"].instruction_pages == ()
    [contract] = desk.contracts.contracts()
    assert contract.file_name == "supply.pdf" and contract.reviewed == 1
    assert [c.sentences for c in desk.store.collection_chunks("HR")] == [(), ()]
    desk.engine.dispose()


@pytest.mark.parametrize("partial", [False, True])
def test_an_unversioned_database_of_a_later_version_is_stamped_past_1(
    database_url: str, partial: bool
):
    """Development versions after the release added revision 2's columns in place: with all of
    them the database is stamped at 2; with some, at 1, and revision 2 adds the others."""
    engine = make_engine(database_url)
    upgrade(engine, "2")
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
        if partial:
            connection.execute(text("ALTER TABLE documents DROP COLUMN instruction_pages"))
    assert current_revision(engine) is None
    ddl = record_ddl(engine)
    upgrade(engine)
    assert version_rows(engine) == [HEAD]
    assert schema_diff(engine) == []
    assert len([s for s in ddl if "instruction_pages" in s]) == (1 if partial else 0)
    assert not [s for s in ddl if "sentence_spans" in s], "a column it had was added again"
    engine.dispose()


def test_an_older_database_gets_what_the_release_added_in_place(database_url: str):
    """A database of a version before the release lacks the release's in-place columns, an
    index and a table: they are added (as the release did on start), then it is upgraded."""
    engine = make_engine(database_url)
    upgrade(engine, "2")
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
        for table, column in [("documents", "tags"), ("chunks", "page_break")]:
            connection.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        connection.execute(text("DROP INDEX ix_usage_events_total"))
        connection.execute(text("DROP TABLE rate_limit_hits"))
    upgrade(engine)
    assert current_revision(engine) == HEAD
    assert schema_diff(engine) == []
    engine.dispose()


# The command line ----------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("KDESK_DATA_DIR", str(folder))
    monkeypatch.delenv("KDESK_DATABASE_URL", raising=False)
    return folder


def kdesk(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_kdesk_db_current_and_upgrade(data_dir: Path, capsys: pytest.CaptureFixture[str]):
    assert kdesk(capsys, "db", "current").strip() == "none"
    assert json.loads(kdesk(capsys, "db", "current", "--json")) == {
        "revision": None,
        "head": HEAD,
    }
    assert kdesk(capsys, "db", "upgrade").strip() == f"database revision: none -> {HEAD}"
    assert kdesk(capsys, "db", "current").strip() == HEAD
    assert json.loads(kdesk(capsys, "db", "current", "--json")) == {"revision": HEAD, "head": HEAD}
    assert json.loads(kdesk(capsys, "db", "upgrade", "--json")) == {
        "before": HEAD,
        "revision": HEAD,
        "head": HEAD,
    }


def test_kdesk_db_upgrade_migrates_the_release_database(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
):
    data_dir.mkdir()
    shutil.copyfile(FIXTURE, data_dir / "kdesk.sqlite3")
    assert kdesk(capsys, "db", "current").strip() == "none"  # made before migrations
    assert kdesk(capsys, "db", "upgrade").strip() == f"database revision: none -> {HEAD}"
    with closing(sqlite3.connect(data_dir / "kdesk.sqlite3")) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        assert connection.execute("SELECT count(*) FROM chunks").fetchone() == (5,)
