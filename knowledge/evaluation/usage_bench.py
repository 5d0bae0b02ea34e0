"""Synthetic usage events at scale, and how long the analytics aggregations take over them."""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from knowledge.search.schema import CollectionRow, DocumentRow
from knowledge.usage.analytics import build_dashboard, default_range
from knowledge.usage.events import (
    CitedDocument,
    Embed,
    TokenCount,
    UsageEvent,
    UsageFilter,
    UsageLog,
)

ROLES = (("employee", 70), ("manager", 15), ("contractor", 10), ("admin", 5))
MODELS = (("ollama · llama3.2:3b", 80), ("embedded · SmolLM2-135M-Instruct", 20))
COVERED = (
    "annual leave", "sick leave", "expense claims", "the hotel allowance", "password rules",
    "laptop encryption", "data retention", "incident reporting", "parental leave", "overtime",
    "remote work", "travel booking", "procurement approval", "gifts and hospitality",
    "conflicts of interest", "whistleblowing", "the training budget", "performance reviews",
)  # fmt: skip
MISSING = (
    "the wifi password for guests", "the company car policy", "the canteen menu",
    "the stock option plan", "the pension scheme", "bringing a dog to the office",
    "the gym membership discount", "the relocation allowance", "the bike leasing offer",
    "the christmas party date", "the parking garage fees", "the sabbatical rules",
)  # fmt: skip
PHRASINGS = (
    "What are the rules for {}?", "How does {} work?", "Where can I find {}?",
    "Who do I ask about {}?", "Is there a policy on {}?", "What changed about {} this year?",
)  # fmt: skip
COLLECTION = "synthetic"
DOCUMENTS = 60


@dataclass(frozen=True)
class SyntheticDoc:
    doc_id: str
    file_name: str


def synthetic_documents(count: int = DOCUMENTS) -> list[SyntheticDoc]:
    return [SyntheticDoc(f"synthdoc{d:04}", f"policy-{d:03}.pdf") for d in range(count)]


def add_synthetic_documents(log: UsageLog, documents: list[SyntheticDoc]) -> None:
    """Catalogue rows (no PDFs, no chunks) so that never-cited documents have something to list."""
    now = datetime.now(UTC)
    with log.engine.begin() as connection:
        if connection.execute(
            select(CollectionRow.name).where(CollectionRow.name == COLLECTION)
        ).first():
            return
        connection.execute(
            insert(CollectionRow), [{"name": COLLECTION, "revision": 1, "created_at": now}]
        )
        connection.execute(
            insert(DocumentRow),
            [
                {
                    "doc_id": d.doc_id, "collection": COLLECTION, "file_name": d.file_name,
                    "title": d.file_name.removesuffix(".pdf").title(), "sha256": d.doc_id,
                    "pages": 10, "pages_without_text": "[]", "chunks": 30, "version": 1,
                    "ingested_at": now, "pdf_path": "",
                }
                for d in documents
            ],
        )  # fmt: skip


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def synthetic_events(
    count: int, days: int = 30, seed: int = 3, now: datetime | None = None
) -> Iterator[UsageEvent]:
    """``count`` plausible exchanges spread over the last ``days`` days: popular topics asked far
    more often than rare ones, a few topics the knowledge base lacks (abstained, thumbs down)."""
    rng = random.Random(seed)
    end = now or datetime.now(UTC)
    documents = synthetic_documents()
    covered = [p.format(t) for t in COVERED for p in PHRASINGS]
    missing = [p.format(t) for t in MISSING for p in PHRASINGS]
    popularity = [1 / (rank + 1) ** 0.8 for rank in range(len(covered))]
    for _ in range(count):
        gap = rng.random() < 0.12
        question = rng.choice(missing) if gap else rng.choices(covered, popularity)[0]
        abstained = rng.random() < (0.8 if gap else 0.04)
        moment = end - timedelta(days=rng.random() * (days - 1))  # inside the last `days` days
        yield _event(rng, question, abstained, gap, documents, moment)


def _event(
    rng: random.Random,
    question: str,
    abstained: bool,
    gap: bool,
    documents: list[SyntheticDoc],
    created_at: datetime,
) -> UsageEvent:
    retrieval = rng.lognormvariate(3.6, 0.4)
    first_token = None if abstained else retrieval + rng.lognormvariate(6.6, 0.5)
    total = retrieval + 2 if abstained else (first_token or 0) + rng.lognormvariate(7.8, 0.5)
    cited = (
        ()
        if abstained
        else tuple(
            CitedDocument(d.doc_id, d.file_name, COLLECTION)
            for d in rng.sample(documents[: DOCUMENTS * 2 // 3], rng.randint(1, 3))
        )
    )
    rated = rng.random() < 0.2
    down = rng.random() < (0.6 if gap or abstained else 0.15)
    tokens_out = 0 if abstained else rng.randint(40, 300)
    return UsageEvent(
        question=question,
        user=f"user{rng.randint(1, 300):03}",
        role=_pick(rng, ROLES),
        channel="chat" if rng.random() < 0.9 else "cli",
        model=_pick(rng, MODELS),
        abstained=abstained,
        evidence="none" if abstained else rng.choice(("strong", "strong", "weak")),
        collections=(COLLECTION,),
        answer_chars=44 if abstained else tokens_out * 4,
        top_score=rng.uniform(0.05, 0.3) if abstained else rng.uniform(0.45, 0.9),
        cited=cited,
        tokens=TokenCount(0 if abstained else rng.randint(300, 900), tokens_out),
        retrieval_ms=retrieval,
        first_token_ms=first_token,
        total_ms=total,
        feedback=("down" if down else "up") if rated else None,
        feedback_comment="Nothing about this in the handbook." if rated and down else None,
        created_at=created_at,
    )


def fill_usage(log: UsageLog, count: int, days: int = 30, batch: int = 5000) -> float:
    """Write ``count`` synthetic events (and their documents); returns the seconds it took."""
    started = time.perf_counter()
    add_synthetic_documents(log, synthetic_documents())
    events = synthetic_events(count, days)
    while chunk := [e for _, e in zip(range(batch), events, strict=False)]:
        log.record_many(chunk)
    return time.perf_counter() - started


def time_dashboard(log: UsageLog, repeats: int = 3) -> dict[str, float]:
    """Milliseconds to compute everything the analytics page shows for the default range."""
    since, until = default_range()
    filters = UsageFilter(since=since, until=until)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        build_dashboard(log, filters)
        timings.append((time.perf_counter() - started) * 1000)
    return {"first_ms": round(timings[0], 1), "best_ms": round(min(timings), 1)}


def bench_usage(embed: Embed | None, count: int = 100_000) -> dict[str, object]:
    """Write ``count`` synthetic events into a fresh SQLite file, then time the analytics page's
    aggregations (everything it shows, default 30-day range) and the `kdesk usage` summary."""
    from knowledge.core.db import make_engine, sqlite_url, upgrade
    from knowledge.usage.analytics import summary

    with tempfile.TemporaryDirectory(prefix="kdesk-usage-bench-") as tmp:
        path = Path(tmp) / "kdesk.sqlite3"
        engine = make_engine(sqlite_url(path))
        upgrade(engine)
        log = UsageLog(engine, embed=embed)
        fill_seconds = fill_usage(log, count)
        dashboard = time_dashboard(log)
        started = time.perf_counter()
        summary(log.engine, UsageFilter())
        summary_ms = (time.perf_counter() - started) * 1000
        size_mb = path.stat().st_size / 1e6
        log.engine.dispose()
    return {
        "events": count,
        "write_events_per_s": round(count / fill_seconds),
        "database_mb": round(size_mb, 1),
        "dashboard_ms": dashboard,
        "usage_summary_ms": round(summary_ms, 1),
        "what": "all analytics-page aggregations over the default 30 days (SQL, covering indexes)",
    }
