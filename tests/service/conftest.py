"""The API's shared fixture: one office (tests/leaks.py: two users with disjoint collections,
one with both, one with none, an admin) behind a real uvicorn server on loopback, answering
with the Ollama-protocol test server. Tests that change things make their own users or
collections, so the office stays as described for the others."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from knowledge.core.settings import Settings
from knowledge.desk.root import Desk
from knowledge.service.app import create_app
from tests.fake_ollama import FakeOllama
from tests.leaks import furnish
from tests.pages.support import MODEL, grounded_reply
from tests.service.live import LiveServer


@dataclass
class Served:
    desk: Desk
    url: str  # http://127.0.0.1:PORT
    ollama: FakeOllama
    doc_ids: dict[str, set[str]]  # user -> the doc ids of their side
    data_dir: Path

    def key(
        self, user: str, scopes: Sequence[str] = ("read",), *, expires_days: int | None = None
    ) -> str:
        """A new API key of ``user`` with these scopes (its secret)."""
        _, secret = self.desk.api_keys.create(user, "test", scopes, expires_days=expires_days)
        return secret

    def client(self, secret: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("api") / "data"
    with FakeOllama(reply=grounded_reply, models=[MODEL]) as ollama:
        settings = Settings(
            data_dir=data_dir,
            model_backend="ollama",
            ollama_host=ollama.url,
            ollama_model=MODEL,
            answer_cache=False,  # each question answered afresh (the cache has its own tests)
            rewrite_followups=False,
        )
        desk = Desk(settings, embedder=embedder)
        doc_ids = furnish(desk)
        server = LiveServer(create_app(desk)).start()
        try:
            yield Served(desk, server.url, ollama, doc_ids, data_dir)
        finally:
            server.stop()
