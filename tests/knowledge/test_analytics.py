"""Usage aggregations on fixed data: counts, nearest-rank percentiles, per-day series, documents,
questions, filters - the same figures on SQLite and PostgreSQL (``database_url``) - and that
they read covering indexes rather than the table (SQLite's query plans)."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from knowledge.core.db import sqlite_url
from knowledge.search.schema import CollectionRow, DocumentRow
from knowledge.usage import analytics
from knowledge.usage.events import CitedDocument, UsageEvent, UsageFilter, UsageLog
from tests.db import migrated_engine

D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
VACATION = "How many vacation days?"
PARKING = "Parking?"
DOCS = {d: CitedDocument(d, f"{d}.pdf", "HR") for d in ("d1", "d2", "d3")}
ALL = UsageFilter()


def event(day: date, role: str, model: str, total: float, **changes: object) -> UsageEvent:
    values: dict[str, object] = {
        "question": f"Question asked at {total} ms?",
        "user": f"{role}-user",
        "role": role,
        "channel": "chat",
        "model": model,
        "abstained": False,
        "total_ms": total,
        "created_at": datetime(day.year, day.month, day.day, 9, int(total) % 60, tzinfo=UTC),
    }
    return UsageEvent(**(values | changes))  # type: ignore[arg-type]


def cite(*ids: str) -> tuple[CitedDocument, ...]:
    return tuple(DOCS[i] for i in ids)


FIXED = [
    event(D1, "employee", "m1", 100, retrieval_ms=10, first_token_ms=50, feedback="up",
          question=VACATION, cited=cite("d1")),
    event(D1, "employee", "m1", 300, retrieval_ms=20, first_token_ms=60, cited=cite("d1", "d2")),
    event(D1, "manager", "m2", 40, retrieval_ms=40, abstained=True, feedback="down",
          question=PARKING),
    event(D2, "employee", "m2", 200, retrieval_ms=30, first_token_ms=70, error="boom",
          feedback="down", cited=cite("d2")),
    event(D2, "admin", "m1", 20, retrieval_ms=20, abstained=True, question="parking"),
    event(D3, "manager", "m1", 1000, retrieval_ms=5, first_token_ms=500, feedback="up",
          question="how many  vacation days", cited=cite("d1")),
]  # fmt: skip


def add_documents(log: UsageLog, *ids: str) -> None:
    now = datetime(2026, 2, 1, tzinfo=UTC)
    with Session(log.engine) as session, session.begin():
        session.add(CollectionRow(name="HR", revision=1, created_at=now))
        session.flush()
        for doc_id in ids:
            session.add(
                DocumentRow(doc_id=doc_id, collection="HR", file_name=f"{doc_id}.pdf",
                            title=doc_id.upper(), sha256=doc_id, pages=1, chunks=1,
                            ingested_at=now, pdf_path="")
            )  # fmt: skip


def fixed_log(url: str) -> UsageLog:
    usage = UsageLog(migrated_engine(url))
    add_documents(usage, "d1", "d2", "d3")
    usage.record_many(FIXED)
    return usage


@pytest.fixture
def log(database_url: str) -> UsageLog:
    return fixed_log(database_url)


@pytest.fixture
def sqlite_log(tmp_path) -> UsageLog:
    return fixed_log(sqlite_url(tmp_path / "kdesk.sqlite3"))


def records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict("records")


def test_summary_counts_and_nearest_rank_latency(log: UsageLog):
    s = analytics.summary(log.engine, ALL)
    assert {k: s[k] for k in ("questions", "answered", "abstained", "model_errors")} == {
        "questions": 6, "answered": 4, "abstained": 2, "model_errors": 1,
    }  # fmt: skip
    assert (s["feedback_up"], s["feedback_down"], s["users"]) == (2, 2, 3)
    # totals sorted: 20 40 100 200 300 1000 -> rank ceil(.5*6)=3 and ceil(.95*6)=6
    assert s["latency_ms"] == {"p50": 100.0, "p95": 1000.0}
    employee = s["by_role"]["employee"]
    assert (employee["questions"], employee["abstained"], employee["feedback_down"]) == (3, 0, 1)
    assert employee["latency_ms"] == {"p50": 200.0, "p95": 300.0}
    assert s["by_role"]["admin"]["latency_ms"] == {"p50": 20.0, "p95": 20.0}
    assert s["models"] == {"m1": 4, "m2": 2}


def test_filters_select_days_and_roles(log: UsageLog):
    assert analytics.summary(log.engine, UsageFilter(since=D2))["questions"] == 3
    assert analytics.summary(log.engine, UsageFilter(until=D1))["questions"] == 3
    assert analytics.summary(log.engine, UsageFilter(D2, D2))["questions"] == 2
    managers = analytics.summary(log.engine, UsageFilter(roles=("manager",)))
    assert (managers["questions"], managers["latency_ms"]) == (2, {"p50": 40.0, "p95": 1000.0})
    assert list(managers["by_role"]) == ["manager"]


def test_questions_and_outcomes_per_day(log: UsageLog):
    cube = analytics.activity(log.engine, ALL)
    per_role = analytics.questions_per_day(cube)
    assert [(r["day"].date(), r["role"], r["questions"]) for r in records(per_role)] == [
        (D1, "employee", 2), (D1, "manager", 1), (D2, "admin", 1), (D2, "employee", 1),
        (D3, "manager", 1),
    ]  # fmt: skip
    outcomes = analytics.outcomes_per_day(cube)
    assert [(r["day"].date(), r["outcome"], r["questions"]) for r in records(outcomes)] == [
        (D1, "abstained", 1), (D1, "answered", 2), (D2, "abstained", 1), (D2, "answered", 1),
        (D3, "answered", 1),
    ]  # fmt: skip


def test_latency_per_day_and_stage(log: UsageLog):
    frame = analytics.latency_per_day(log.engine, ALL, analytics.activity(log.engine, ALL))
    found = {(r["day"].date(), r["stage"]): (r["p50"], r["p95"]) for r in records(frame)}
    assert found == {
        (D1, "retrieval"): (20.0, 40.0),
        (D1, "first token"): (50.0, 60.0),  # the abstention has no first token
        (D1, "total"): (100.0, 300.0),
        (D2, "retrieval"): (20.0, 30.0),
        (D2, "first token"): (70.0, 70.0),
        (D2, "total"): (20.0, 200.0),
        (D3, "retrieval"): (5.0, 5.0),
        (D3, "first token"): (500.0, 500.0),
        (D3, "total"): (1000.0, 1000.0),
    }


def test_model_share_and_feedback_per_day(log: UsageLog):
    cube = analytics.activity(log.engine, ALL)
    shares = analytics.model_share(cube)
    assert [(r["model"], r["questions"]) for r in records(shares)] == [("m1", 4), ("m2", 2)]
    assert shares["share"].tolist() == pytest.approx([2 / 3, 1 / 3])
    feedback = analytics.feedback_per_day(cube)
    assert [(r["day"].date(), r["up"], r["down"], r["up_share"]) for r in records(feedback)] == [
        (D1, 1, 1, 0.5), (D2, 0, 1, 0.0), (D3, 1, 0, 1.0),
    ]  # fmt: skip


def test_most_and_never_cited_documents(log: UsageLog):
    most = analytics.most_cited_documents(log.engine, ALL)
    assert [(r["document"], r["answers"]) for r in records(most)] == [("d1.pdf", 3), ("d2.pdf", 2)]
    never = analytics.never_cited_documents(log.engine, ALL)
    assert never["document"].tolist() == ["d3.pdf"]
    assert analytics.never_cited_documents(log.engine, UsageFilter(D2, D2))[
        "document"
    ].tolist() == ["d1.pdf", "d3.pdf"]
    managers = UsageFilter(roles=("manager",))
    assert analytics.never_cited_documents(log.engine, managers)["document"].tolist() == [
        "d2.pdf",
        "d3.pdf",
    ]


def test_top_questions_group_repeated_askings(log: UsageLog):
    top = records(analytics.top_questions(log.engine, ALL, limit=2))
    assert [(r["question"], r["asked"], r["abstained"], r["thumbs_down"]) for r in top] == [
        (VACATION, 2, 0, 0),  # last asked on day 3, so before the parking question
        (PARKING, 2, 2, 1),
    ]
    assert top[0]["last_asked"].date() == D3


def test_gap_questions_are_abstentions_and_thumbs_down_most_recent_first(log: UsageLog):
    gaps = analytics.gap_questions(log.engine, ALL)
    assert [(g.question, g.asked, g.abstained, g.thumbs_down) for g in gaps] == [
        (PARKING, 2, 2, 1),
        ("Question asked at 200 ms?", 1, 0, 1),
    ]
    assert gaps[0].last_asked.date() == D2
    assert len(analytics.gap_questions(log.engine, ALL, limit=1)) == 1


def test_an_empty_period_gives_empty_figures(log: UsageLog):
    empty = UsageFilter(date(2030, 1, 1), date(2030, 1, 31))
    board = analytics.build_dashboard(log, empty)
    assert board.questions == 0
    assert board.summary["latency_ms"] == {"p50": None, "p95": None}
    assert board.summary["by_role"] == {}
    frames = [board.questions_per_day, board.latency_per_day, board.feedback_per_day]
    frames += [board.model_share, board.most_cited, board.top_questions, board.gaps]
    assert all(frame.empty for frame in frames)
    assert board.never_cited["document"].tolist() == ["d1.pdf", "d2.pdf", "d3.pdf"]


def test_the_dashboard_holds_every_figure_of_the_page(log: UsageLog):
    board = analytics.build_dashboard(log, ALL)
    assert board.questions == 6
    assert len(board.latency_per_day) == 9
    assert board.gaps["asked"].sum() == 3  # no embedder: each gap question is its own topic


def nearest_rank(values: list[float], level: int) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(level * len(ordered) / 100) - 1]


def test_percentiles_match_a_reference_on_random_data(database_url: str):
    rng = random.Random(4)
    log = UsageLog(migrated_engine(database_url))
    days = [date(2026, 4, d) for d in range(1, 8)]
    events = [
        event(rng.choice(days), rng.choice(["a", "b", "c"]), "m", round(rng.expovariate(1e-3), 3))
        for _ in range(700)
    ]
    log.record_many(events)
    only_b = UsageFilter(roles=("b",))
    frame = analytics.latency_per_day(log.engine, only_b, analytics.activity(log.engine, only_b))
    for row in records(frame[frame["stage"] == "total"]):
        values = [
            e.total_ms for e in events if e.role == "b" and e.created_at.date() == row["day"].date()
        ]
        assert row["p50"] == pytest.approx(nearest_rank(values, 50), abs=0.05)
        assert row["p95"] == pytest.approx(nearest_rank(values, 95), abs=0.05)
    overall = analytics.latency_percentiles(log.engine, ALL)
    assert overall["p95"] == pytest.approx(nearest_rank([e.total_ms for e in events], 95), abs=0.05)


def plan(log: UsageLog, query) -> str:
    sql = str(query.compile(log.engine, compile_kwargs={"literal_binds": True}))
    with log.engine.connect() as connection:
        return " | ".join(
            row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
        )


def test_aggregations_read_covering_indexes_not_the_table(sqlite_log: UsageLog):
    """What keeps the page fast at 100k events (timings are in docs/benchmarks.md)."""
    from sqlalchemy import func, select

    from knowledge.usage.events import UsageCitationRow as C
    from knowledge.usage.events import UsageEventRow as E

    log = sqlite_log

    period = UsageFilter(D1, D3, ("employee", "manager"))
    keys = (E.day, E.role, E.model, E.abstained, E.feedback)
    cube = select(*keys, func.count(E.error), func.sum(E.tokens_in), func.count(E.first_token_ms))
    cube = cube.where(*period.conditions()).group_by(*keys)
    assert "COVERING INDEX ix_usage_events_activity" in plan(log, cube)
    nth = select(E.total_ms).where(*period.conditions(), E.day == D1).order_by(E.total_ms)
    assert "COVERING INDEX ix_usage_events_total" in plan(log, nth.limit(1).offset(1))
    cited = select(C.doc_id, func.count()).where(*period.conditions(C)).group_by(C.doc_id)
    assert "COVERING INDEX ix_usage_citations_doc" in plan(log, cited)
    questions = analytics._question_groups(period)
    assert "COVERING INDEX ix_usage_events_questions" in plan(log, questions)


def test_synthetic_events_fill_every_figure_of_the_page(database_url: str):
    """The benchmark's generator (knowledge/usage_bench.py) exercises every chart and table."""
    from knowledge.evaluation.usage_bench import COLLECTION, fill_usage

    log = UsageLog(migrated_engine(database_url))
    fill_usage(log, 3000, batch=1000)
    board = analytics.build_dashboard(log, UsageFilter(*analytics.default_range()))
    assert board.questions == 3000, "all events fall inside the default 30 days"
    assert set(board.questions_per_day["role"]) == {"employee", "manager", "contractor", "admin"}
    assert set(board.latency_per_day["stage"]) == {"retrieval", "first token", "total"}
    assert len(board.model_share) == 2 and not board.feedback_per_day.empty
    assert not board.gaps.empty and not board.top_questions.empty
    assert set(board.most_cited["collection"]) == {COLLECTION}
    assert len(board.never_cited) == 20, "a third of the 60 documents is never cited"
