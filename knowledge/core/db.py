"""The project's relational database (SQLite file by default, any SQLAlchemy URL).

The schema is an Alembic migration history (knowledge/core/migrations): ``upgrade`` brings a
database to the newest revision (the app and the CLI do it at start, through ``Desk``),
``current_revision`` says where one is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Connection,
    DateTime,
    Dialect,
    Engine,
    TypeDecorator,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.orm import DeclarativeBase

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The revision of the last release before Alembic (60a8b14): a database it made has no
# alembic_version table and is stamped at this revision (or a later one, see
# ``_stamp_unversioned``) before it is upgraded.
RELEASE_REVISION = "1"
# pg_advisory_xact_lock's key for "this database is being migrated" (any fixed 64-bit number)
PG_MIGRATION_LOCK = 0x6B6465736B5F6462  # "kdesk_db"


class Base(DeclarativeBase):
    pass


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive value (SQLite keeps no zone) is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """The one timestamp column type: stored with its zone, always read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _utc_session(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # timestamptz values come back in the session's time zone, which is the server's
            # unless set: keep them in UTC like everything the app shows, stores and exports.
            cursor = dbapi_connection.cursor()
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.close()
            dbapi_connection.commit()

    return engine


# Migrations ----------------------------------------------------------------------------------


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, made in code (no alembic.ini): the scripts in
    knowledge/migrations, run on ``connection`` (knowledge/core/migrations/env.py reads it)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision of the migration history."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migration history is empty"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None when it has none (empty, or made before Alembic)."""
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest), in one transaction that
    holds the database's migration lock, so processes starting together migrate one at a time
    (the later ones then find nothing to do). An empty database is built from nothing; one made
    before Alembic is recognised and stamped first."""
    from alembic import command

    with engine.connect() as connection, _migration_lock(connection):
        config = alembic_config(connection)
        _stamp_unversioned(connection, config)
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database back to ``revision`` ("base": nothing), under the same lock (for
    trying a migration's downgrade; the app never goes back)."""
    from alembic import command

    with engine.connect() as connection, _migration_lock(connection):
        config = alembic_config(connection)
        _stamp_unversioned(connection, config)
        command.downgrade(config, revision)


@contextmanager
def exclusive(connection: Connection, key: str) -> Iterator[None]:
    """A transaction on ``connection`` that one process at a time holds for ``key``, committed
    when the block ends (rolled back on an error): for read-then-write steps that must not
    interleave across processes (a rate-limit check and its hit). PostgreSQL: an advisory lock
    on the key's hash; SQLite: the database's write lock from the start (BEGIN IMMEDIATE)."""
    try:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif connection.dialect.name == "postgresql":
            digest = hashlib.sha256(key.encode()).digest()
            lock = int.from_bytes(digest[:8], "big", signed=True)
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})
        yield
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


@contextmanager
def _migration_lock(connection: Connection) -> Iterator[None]:
    """A transaction on ``connection`` that only one migrating process holds at a time,
    committed when the block ends (rolled back on an error)."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Alembic rebuilds SQLite tables to alter them (copy, drop, rename): with foreign keys
        # on, dropping a table would cascade into the tables that refer to it. The pragma
        # only changes outside a transaction.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        if sqlite:
            # A write lock from the start: a second process waits here (the busy timeout),
            # then finds the database migrated. DDL is transactional on SQLite too.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif connection.dialect.name == "postgresql":  # held until the transaction ends
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK}
            )
        yield
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def _stamp_unversioned(connection: Connection, config: Config) -> None:
    """A database made before Alembic (the release's tables, no alembic_version) is brought to
    the release's schema (what an older version lacked is added, as the release itself did on
    start) and stamped: at the release's revision, or at a later one whose changes it already
    has (a database made by a development version after the release)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    inspector = inspect(connection)
    if inspector.has_table("alembic_version") or not inspector.has_table("documents"):
        return  # versioned already, or empty: upgraded from nothing
    script = ScriptDirectory.from_config(config)
    script.get_revision(RELEASE_REVISION).module.adopt(connection)
    stamp = RELEASE_REVISION
    later = reversed(list(script.iterate_revisions("head", RELEASE_REVISION)))
    for revision in (r for r in later if r.revision != RELEASE_REVISION):
        # only a revision whose changes a version before Alembic made in place has applied()
        applied = getattr(revision.module, "applied", None)
        if applied is None or not applied(connection):
            break
        stamp = revision.revision
    command.stamp(config, stamp)
