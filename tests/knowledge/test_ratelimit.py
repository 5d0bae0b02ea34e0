"""Rate limits: a sliding window of requests and tokens per user, with a retry-after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from knowledge.access.ratelimit import (
    RateLimit,
    RateLimitedError,
    RateLimiter,
    duration,
    most_generous,
    retry_after,
)
from tests.db import migrated_engine

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(database_url: str, clock: Clock) -> RateLimiter:
    return RateLimiter(migrated_engine(database_url), clock)  # a SQLite file, then PostgreSQL


def test_requests_over_the_limit_are_refused_with_a_retry_after(limiter, clock):
    limit = RateLimit(requests=3, window_s=60)
    for _ in range(3):
        limiter.acquire("ann", limit)
        clock.advance(10)
    with pytest.raises(RateLimitedError) as refused:
        limiter.acquire("ann", limit)
    # the first question (at 0 s) leaves the window at 60 s; it is now 30 s
    assert refused.value.retry_after_s == 30
    assert str(refused.value) == (
        "You have reached your limit of 3 questions per 1 min. Please try again in 30 s."
    )
    limiter.acquire("bob", limit)  # other users are not affected
    clock.advance(30)
    limiter.acquire("ann", limit)  # the window has slid


def test_tokens_over_the_limit_are_refused_until_enough_leave_the_window(limiter, clock):
    limit = RateLimit(tokens=1000, window_s=300)
    limiter.settle(limiter.acquire("ann", limit), 600)
    clock.advance(100)
    limiter.settle(limiter.acquire("ann", limit), 500)
    clock.advance(50)
    with pytest.raises(RateLimitedError) as refused:
        limiter.acquire("ann", limit)
    assert refused.value.retry_after_s == 150, "once the 600-token answer leaves, 500 < 1000"
    assert "1,000 tokens per 5 min" in str(refused.value)
    assert limiter.use("ann", 300).tokens == 1100


def test_unlimited_never_refuses(limiter):
    for _ in range(50):
        limiter.acquire("ann", RateLimit())
    assert limiter.use("ann", 600).requests == 50


def test_retry_after_takes_the_later_of_both_limits():
    now = START
    ago = [now - timedelta(seconds=s) for s in (50, 40, 10)]
    hits = list(zip(ago, (100, 100, 950), strict=True))
    limit = RateLimit(requests=3, tokens=1000, window_s=60)
    # requests: the oldest hit leaves in 10 s; tokens: two must leave, the second in 20 s
    assert retry_after(hits, limit, now) == 20
    assert retry_after(hits[:2], limit, now) is None


def test_most_generous_limit_of_several_roles():
    employee = RateLimit(requests=20, tokens=10_000, window_s=600)
    lead = RateLimit(requests=60, tokens=0, window_s=600)
    assert most_generous([employee, lead]) == RateLimit(60, 0, 600)
    assert most_generous([employee]) == employee
    assert most_generous([]).unlimited


def test_durations_read_well():
    assert [duration(s) for s in (0.2, 59, 60, 150, 3600, 5400)] == [
        "1 s",
        "59 s",
        "1 min",
        "2 min 30 s",
        "1 h",
        "1 h 30 min",
    ]


# Across processes ------------------------------------------------------------------------------

HAMMER = """
import sys
from knowledge.access.ratelimit import RateLimit, RateLimitedError, RateLimiter
from knowledge.core.db import make_engine

url, tries = sys.argv[1], int(sys.argv[2])
limiter = RateLimiter(make_engine(url))
limit = RateLimit(requests=25, window_s=3600)
accepted = refused = 0
print("ready", flush=True)
sys.stdin.readline()  # both processes start asking together
for _ in range(tries):
    try:
        limiter.acquire("shared-user", limit)
        accepted += 1
    except RateLimitedError:
        refused += 1
print(accepted, refused, flush=True)
"""


def test_two_processes_asking_at_once_get_exactly_the_limit(database_url: str):
    import subprocess
    import sys

    migrated_engine(database_url).dispose()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", HAMMER, database_url, "40"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in processes:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in processes:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in processes:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        results.append(tuple(int(n) for n in out.split()))
    assert sum(a for a, _ in results) == 25, results  # not 26: no check-then-insert race
    assert sum(r for _, r in results) == 80 - 25
    assert RateLimiter(migrated_engine(database_url)).use("shared-user", 3600).requests == 25
