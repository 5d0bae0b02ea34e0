"""Where the answer cache keeps its entries: Redis when ``KDESK_REDIS_URL`` is set (shared by
every replica, expired by Redis), else the ``answer_cache`` table of the database. Both hold
entries by scope (the hash of everything an answer depends on, revisions included) and by
question hash; ``knowledge.desk.answer_cache`` decides what is served."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Engine, LargeBinary, String, Text, delete, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.core.db import Base, UTCDateTime


class AnswerCacheRow(Base):
    __tablename__ = "answer_cache"
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    question_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    question: Mapped[str] = mapped_column(Text)  # normalised
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, unit length
    payload: Mapped[str] = mapped_column(Text)  # the answer, JSON (answer_cache.to_payload)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


@dataclass(frozen=True)
class CacheEntry:
    question_hash: str
    question: str
    vector: np.ndarray
    payload: dict[str, Any]
    expires_at: float  # epoch seconds

    @property
    def expired(self) -> bool:
        return self.expires_at <= time.time()


class CacheStore(Protocol):
    def entry(self, scope: str, question_hash: str) -> CacheEntry | None: ...

    def entries(self, scope: str) -> list[CacheEntry]: ...

    def put(self, scope: str, entry: CacheEntry) -> None: ...

    def drop(self, scope: str, question_hash: str) -> None: ...


class DatabaseCacheStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def entry(self, scope: str, question_hash: str) -> CacheEntry | None:
        with Session(self.engine) as session:
            row = session.get(AnswerCacheRow, (scope, question_hash))
            return None if row is None else _from_row(row)

    def entries(self, scope: str) -> list[CacheEntry]:
        with Session(self.engine) as session:
            rows = session.scalars(select(AnswerCacheRow).where(AnswerCacheRow.scope == scope))
            return [_from_row(row) for row in rows]

    def put(self, scope: str, entry: CacheEntry) -> None:
        now = datetime.now(UTC)
        row = {
            "scope": scope,
            "question_hash": entry.question_hash,
            "question": entry.question,
            "vector": np.asarray(entry.vector, dtype=np.float32).tobytes(),
            "payload": json.dumps(entry.payload, ensure_ascii=False),
            "created_at": now,
            "expires_at": datetime.fromtimestamp(entry.expires_at, UTC),
        }
        table = AnswerCacheRow
        with self.engine.begin() as connection:  # replace, and sweep what expired
            connection.execute(delete(table).where(table.expires_at <= now))
            connection.execute(
                delete(table).where(
                    table.scope == scope, table.question_hash == entry.question_hash
                )
            )
            connection.execute(insert(table), [row])

    def drop(self, scope: str, question_hash: str) -> None:
        table = AnswerCacheRow
        with self.engine.begin() as connection:
            connection.execute(
                delete(table).where(table.scope == scope, table.question_hash == question_hash)
            )


def _from_row(row: AnswerCacheRow) -> CacheEntry:
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    return CacheEntry(
        row.question_hash,
        row.question,
        np.frombuffer(row.vector, dtype=np.float32),
        json.loads(row.payload),
        expires.timestamp(),
    )


class RedisCacheStore:
    """One Redis hash per scope (field: question hash); the hash expires with its newest
    entry, so a scope whose collections moved on disappears by itself."""

    prefix = "kdesk:answers:"

    def __init__(self, url: str, ttl_s: int) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.ttl_s = ttl_s

    def entry(self, scope: str, question_hash: str) -> CacheEntry | None:
        raw = self.client.hget(self.prefix + scope, question_hash)
        return None if raw is None else _decode(question_hash, raw)  # type: ignore[arg-type]

    def entries(self, scope: str) -> list[CacheEntry]:
        stored: dict[bytes, bytes] = self.client.hgetall(self.prefix + scope)  # type: ignore[assignment]
        return [_decode(h.decode(), raw) for h, raw in stored.items()]

    def put(self, scope: str, entry: CacheEntry) -> None:
        value = {
            "question": entry.question,
            "vector": base64.b64encode(np.asarray(entry.vector, np.float32).tobytes()).decode(),
            "payload": entry.payload,
            "expires_at": entry.expires_at,
        }
        key = self.prefix + scope
        with self.client.pipeline() as pipe:
            pipe.hset(key, entry.question_hash, json.dumps(value, ensure_ascii=False))
            pipe.expire(key, self.ttl_s)
            pipe.execute()

    def drop(self, scope: str, question_hash: str) -> None:
        self.client.hdel(self.prefix + scope, question_hash)


def _decode(question_hash: str, raw: bytes) -> CacheEntry:
    value = json.loads(raw)
    vector = np.frombuffer(base64.b64decode(value["vector"]), dtype=np.float32)
    return CacheEntry(
        question_hash, value["question"], vector, value["payload"], value["expires_at"]
    )
