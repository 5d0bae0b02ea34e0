"""Shared fixtures: real SQLite, real Chroma and the real embedding model in tmp dirs, plus
deterministic doubles for the chat model."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from knowledge.core.errors import ModelUnavailableError  # noqa: E402
from knowledge.core.settings import Settings  # noqa: E402
from knowledge.desk.root import Desk
from knowledge.search.embeddings import SentenceTransformerEmbedder  # noqa: E402
from tests.redis_server import REQUIRE_ENV as REDIS_REQUIRE_ENV  # noqa: E402
from tests.redis_server import RedisServer, RedisUnavailable  # noqa: E402
from tests.redis_server import required as redis_required  # noqa: E402


class ScriptedChatModel:
    """A chat model double: replies with a fixed text (or one computed from the messages),
    streamed word by word, and remembers what it was asked. With ``counts``, it reports token
    counts like a backend when its stream ends: the prompt's words in, the reply's words out."""

    def __init__(
        self,
        reply: str | Callable[[Sequence[dict]], str] = "",
        *,
        fail_after: int | None = None,
        name: str = "scripted · test",
        counts: bool = False,
    ) -> None:
        self.reply = reply
        self.fail_after = fail_after
        self._name = name
        self.counts = counts
        self.calls: list[dict] = []

    @property
    def name(self) -> str:
        return self._name

    def stream(
        self, messages, *, temperature: float, max_tokens: int, usage: dict | None = None
    ) -> Iterator[str]:
        self.calls.append(
            {"messages": list(messages), "temperature": temperature, "max_tokens": max_tokens}
        )
        text = self.reply(messages) if callable(self.reply) else self.reply
        pieces = re.findall(r"\S+\s*", text)
        for i, piece in enumerate(pieces):
            if self.fail_after is not None and i >= self.fail_after:
                raise ModelUnavailableError("The model server stopped responding.")
            yield piece
        if self.counts and usage is not None:
            prompt = sum(len(m["content"].split()) for m in messages)
            usage.update(prompt_tokens=prompt, completion_tokens=len(pieces))


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model_backend="ollama")


@pytest.fixture
def model() -> ScriptedChatModel:
    return ScriptedChatModel("The answer is in the sources [1].")


@pytest.fixture
def desk(settings: Settings, embedder, model: ScriptedChatModel) -> Desk:
    return Desk(settings, embedder=embedder, model=model)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server on 127.0.0.1 for the session (flushed by ``redis_url`` per test);
    skipped without redis-server unless KDESK_REQUIRE_REDIS=1 (CI)."""
    try:
        server = RedisServer.start()
    except RedisUnavailable as exc:
        if redis_required():
            pytest.fail(f"{REDIS_REQUIRE_ENV}=1, but {exc}", pytrace=False)
        pytest.skip(f"this test needs Redis: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flush()
    return redis_server.url
