"""Per-user rate limits: requests and model tokens within a sliding window.

Every question a user asks is a row in ``rate_limit_hits`` (written when the question is
accepted, so answers still streaming count too; its tokens are filled in when the answer is
done). A question is refused while the window already holds the allowed number of requests or
tokens; the error says when the next one will be accepted. The window lives in the database,
so every process (app replicas, the command line) shares it, and the check and the hit run in
one transaction that holds a per-user lock (knowledge.core.db.exclusive): two replicas cannot
both accept the last question of a window.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, Index, Integer, String, delete, insert, select, update
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.core.db import Base, UTCDateTime, exclusive, utc_now
from knowledge.core.errors import KdeskError

KEEP_HITS = timedelta(days=7)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class RateLimit:
    requests: int = 0  # questions per window; 0: no limit
    tokens: int = 0  # model tokens (prompt + answer) per window; 0: no limit
    window_s: int = 600

    @property
    def unlimited(self) -> bool:
        return self.requests <= 0 and self.tokens <= 0

    def describe(self) -> str:
        if self.unlimited:
            return "no limit"
        parts = []
        if self.requests > 0:
            parts.append(f"{self.requests:,} questions")
        if self.tokens > 0:
            parts.append(f"{self.tokens:,} tokens")
        return f"{' and '.join(parts)} per {duration(self.window_s)}"


def most_generous(limits: Iterable[RateLimit]) -> RateLimit:
    """The limit of a user with several roles: the most generous figure of each kind (a role
    without a limit of that kind lifts it)."""
    found = list(limits)
    if not found:
        return RateLimit()

    def best(values: Sequence[int]) -> int:
        return 0 if any(v <= 0 for v in values) else max(values)

    return RateLimit(
        requests=best([limit.requests for limit in found]),
        tokens=best([limit.tokens for limit in found]),
        window_s=max(limit.window_s for limit in found),
    )


def duration(seconds: float) -> str:
    seconds = max(0, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


class RateLimitedError(KdeskError):
    """Too many questions or tokens in the window; ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateHitRow(Base):
    __tablename__ = "rate_limit_hits"
    __table_args__ = (Index("ix_rate_limit_hits_user_at", "user", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    tokens: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class WindowUse:
    requests: int
    tokens: int


class RateLimiter:
    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.clock = clock
        self._lock = threading.Lock()  # threads of one process queue here, not in the database

    def acquire(self, user: str, limit: RateLimit) -> int:
        """Count one question for ``user``, or raise RateLimitedError; returns the hit's id
        (give it to ``settle`` with the tokens the answer used)."""
        with self._lock, self.engine.connect() as connection, exclusive(connection, f"rate:{user}"):
            now = self.clock()
            if not limit.unlimited:
                hits = self._hits(user, now - timedelta(seconds=limit.window_s), connection)
                retry = retry_after(hits, limit, now)
                if retry is not None:
                    raise RateLimitedError(limit_message(limit, retry), retry)
            connection.execute(delete(RateHitRow).where(RateHitRow.at < now - KEEP_HITS))
            result = connection.execute(insert(RateHitRow).values(user=user, at=now, tokens=0))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def settle(self, hit_id: int, tokens: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(RateHitRow).where(RateHitRow.id == hit_id).values(tokens=max(0, tokens))
            )

    def use(self, user: str, window_s: int) -> WindowUse:
        """What ``user`` has used in the last ``window_s`` seconds."""
        hits = self._hits(user, self.clock() - timedelta(seconds=window_s))
        return WindowUse(len(hits), sum(tokens for _, tokens in hits))

    def _hits(
        self, user: str, since: datetime, connection: Connection | None = None
    ) -> list[tuple[datetime, int]]:
        query = (
            select(RateHitRow.at, RateHitRow.tokens)
            .where(RateHitRow.user == user, RateHitRow.at > since)
            .order_by(RateHitRow.at)
        )
        if connection is not None:
            return [(at, int(tokens)) for at, tokens in connection.execute(query)]
        with self.engine.connect() as own:
            return [(at, int(tokens)) for at, tokens in own.execute(query)]


def retry_after(
    hits: Sequence[tuple[datetime, int]], limit: RateLimit, now: datetime
) -> int | None:
    """Seconds until one more question fits the limit (None: it fits now). ``hits`` are the
    window's (time, tokens), oldest first."""
    window = timedelta(seconds=limit.window_s)
    waits: list[float] = []
    if limit.requests > 0 and len(hits) >= limit.requests:
        expires = hits[len(hits) - limit.requests][0] + window
        waits.append((expires - now).total_seconds())
    used = sum(tokens for _, tokens in hits)
    if limit.tokens > 0 and used >= limit.tokens:
        for at, tokens in hits:  # the oldest hits leave the window first
            used -= tokens
            if used < limit.tokens:
                waits.append((at + window - now).total_seconds())
                break
    if not waits:
        return None
    return max(1, math.ceil(max(waits)))


def limit_message(limit: RateLimit, retry_after_s: int) -> str:
    return (
        f"You have reached your limit of {limit.describe()}. "
        f"Please try again in {duration(retry_after_s)}."
    )
