"""AppTest fixtures: the real stack (SQLite, Chroma, the embedding model, the Ollama client)
over a tmp data dir, answering through a fake Ollama server on 127.0.0.1."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from streamlit.testing.v1 import AppTest

from knowledge.access.accounts import AccountBook
from knowledge.access.audit import AuditLog
from knowledge.access.rolebook import RoleBook
from knowledge.core.db import sqlite_url
from knowledge.core.settings import load_settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from pages.auth import SESSION_KEY, SignedIn
from pages.shared import get_desk
from tests.db import migrated_engine
from tests.fake_ollama import FakeOllama
from tests.pages.support import FILE_NAME, MODEL, ROOT, grounded_reply, handbook_pdf

Configure = Callable[[Path, str], None]
TESTER = "tester"
TEST_PASSWORD = "a long test password"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


def open_page(path: str, user: str | None = TESTER, roles: Sequence[str] = ("admin",)) -> AppTest:
    """An AppTest of a script given relative to the repository root (not to the caller),
    signed in as ``user`` holding ``roles`` (None: nobody is signed in)."""
    at = AppTest.from_file(str(ROOT / path), default_timeout=120)
    if user is not None:
        sign_in(at, user, roles)
    return at


def ensure_account(data_dir: Path, user: str, roles: Sequence[str]) -> None:
    """A local account ``user`` (password TEST_PASSWORD) holding exactly ``roles``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = migrated_engine(sqlite_url(data_dir / "kdesk.sqlite3"))
    audit = AuditLog(engine)
    book = AccountBook(engine, RoleBook(engine, audit), audit, hasher=FAST_HASHER)
    if book.account(user) is None:
        book.add(user, roles, "test", password=TEST_PASSWORD)
    else:
        book.roles.assign(user, roles, check_admins=False)
    engine.dispose()


def sign_in(at: AppTest, user: str, roles: Sequence[str] = ("admin",)) -> AppTest:
    """What passing the sign-in gate leaves in the session, for an account that exists in the
    data dir that ``configure`` set (KDESK_DATA_DIR)."""
    if data_dir := os.environ.get("KDESK_DATA_DIR"):
        ensure_account(Path(data_dir), user, roles)
    at.session_state[SESSION_KEY] = SignedIn(user, "local")
    return at


@pytest.fixture(autouse=True)
def fresh_desk() -> Iterator[None]:
    """Every test builds its Desk from its own settings (the embedding model stays loaded)."""
    get_desk.clear()
    yield
    get_desk.clear()


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama(reply=grounded_reply, models=[MODEL]) as server:
        yield server


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Configure:
    """Point the app's settings (KDESK_* variables) at a data dir and an Ollama host."""

    def apply(data_dir: Path, ollama_host: str) -> None:
        monkeypatch.setenv("KDESK_DATA_DIR", str(data_dir))
        monkeypatch.setenv("KDESK_MODEL_BACKEND", "ollama")
        monkeypatch.setenv("KDESK_OLLAMA_HOST", ollama_host)
        monkeypatch.setenv("KDESK_OLLAMA_MODEL", MODEL)
        monkeypatch.setenv("KDESK_WARM_UP", "false")  # each test's desk loads on first use
        # the fake server answers from sources only: it cannot rewrite a follow-up
        monkeypatch.setenv("KDESK_REWRITE_FOLLOWUPS", "false")
        # a module's tests share a data dir: an answer one test cached would answer the next
        # (the cache is tested in tests/knowledge/test_answer_cache.py and its own page test)
        monkeypatch.setenv("KDESK_ANSWER_CACHE", "false")
        get_desk.clear()

    return apply


def ingest_handbook(data_dir: Path, collection: str = "HR") -> None:
    """Ingest the handbook through a Desk built like the app builds its own."""
    desk = Desk(load_settings(data_dir=data_dir, model_backend="ollama"))
    [report] = desk.ingest([Upload(FILE_NAME, handbook_pdf())], collection)
    assert report.status == "added", report
    assert report.chunks == 3, "one chunk per handbook page"


@pytest.fixture(scope="module")
def handbook_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the handbook in collection HR; tests must not change it."""
    data_dir = tmp_path_factory.mktemp("handbook") / "data"
    ingest_handbook(data_dir)
    return data_dir


def finish_jobs(at: AppTest, timeout_s: float = 120) -> AppTest:
    """Wait for the background ingestion jobs of the data dir, then rerun the page."""
    desk = Desk(load_settings(data_dir=Path(os.environ["KDESK_DATA_DIR"]), model_backend="ollama"))
    deadline = time.monotonic() + timeout_s
    while desk.jobs.recent(active_only=True):
        assert time.monotonic() < deadline, "ingestion jobs did not end"
        time.sleep(0.05)
    at.run()
    assert not at.exception
    return at
