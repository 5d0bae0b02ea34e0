"""Database fixtures: a real PostgreSQL server for the session (tests/postgres.py), a fresh
database of it per test, and ``database_url``, which runs a test once on a SQLite file and once
on PostgreSQL (the project promises both through KDESK_DATABASE_URL). Vector index fixtures: a
real Chroma server for the session (tests/chroma_server.py), ``chroma_url`` (that server, emptied
after each test) and ``chroma_mode``, which runs a test on embedded Chroma and on the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.core.db import sqlite_url
from tests.chroma_server import ChromaServer
from tests.postgres import (
    REQUIRE_ENV,
    PostgresServer,
    PostgresUnavailable,
    check_driver,
    postgres_binaries,
    required,
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server on 127.0.0.1, stopped and removed after the session.
    Skipped when no PostgreSQL can run here, unless KDESK_REQUIRE_POSTGRES=1 (CI): then the
    tests fail instead."""
    try:
        bindir = postgres_binaries()
        check_driver()
    except PostgresUnavailable as exc:
        if required():
            pytest.fail(f"{REQUIRE_ENV}=1, but {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL tests need a server: {exc}")
    server = PostgresServer.start(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The ``postgresql+psycopg://`` URL of a new, empty database, dropped after the test."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty project database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "kdesk.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def chroma_server() -> Iterator[ChromaServer]:
    """A `chroma run` server on 127.0.0.1 for the session (chromadb is a dependency: never
    skipped)."""
    server = ChromaServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def chroma_url(chroma_server: ChromaServer) -> Iterator[str]:
    """The URL of the session's Chroma server, every collection dropped after the test."""
    try:
        yield chroma_server.url
    finally:
        chroma_server.reset()


@pytest.fixture(params=["embedded", "server"])
def chroma_mode(request: pytest.FixtureRequest) -> str:
    """KDESK_CHROMA_URL for a test run twice: "" (embedded Chroma), then the server's URL."""
    if request.param == "embedded":
        return ""
    return str(request.getfixturevalue("chroma_url"))
