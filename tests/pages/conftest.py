"""AppTest fixtures: the real stack (SQLite, Chroma, the embedding model, the Ollama client)
over a tmp data dir, answering through a fake Ollama server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from knowledge.desk import Desk, Upload
from knowledge.settings import load_settings
from pages.shared import get_desk
from tests.fake_ollama import FakeOllama
from tests.pages.support import FILE_NAME, MODEL, ROOT, grounded_reply, handbook_pdf

Configure = Callable[[Path, str], None]


def open_page(path: str) -> AppTest:
    """An AppTest of a script given relative to the repository root (not to the caller)."""
    return AppTest.from_file(str(ROOT / path), default_timeout=120)


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
