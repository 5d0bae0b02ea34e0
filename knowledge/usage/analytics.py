"""Usage analytics: every figure is a SQL aggregation over ``usage_events`` that reads a covering
index, and only aggregates (a few thousand rows at most) reach Python.

- ``activity``: one GROUP BY (day, role, model, outcome, feedback) - the "cube" that the
  counts, charts and the summary are summed from;
- percentiles are nearest-rank (the value at rank ceil(p * n)), fetched per group as
  ``ORDER BY value LIMIT 1 OFFSET rank - 1`` along an index on (day, value), so no query sorts
  the period's events; it works the same on SQLite and PostgreSQL;
- question and document tables group by hash / document id, then look up one text per group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

import pandas as pd
from sqlalchemy import ColumnElement, Engine, Select, case, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from knowledge.search.schema import DocumentRow
from knowledge.usage.events import UsageCitationRow, UsageEventRow, UsageFilter, UsageLog
from knowledge.usage.gaps import DEFAULT_SIMILARITY, GapQuestion, GapTopic, group_gaps
from knowledge.usage.routes import cache_hit_rate, route_split

E = UsageEventRow
C = UsageCitationRow
Value = InstrumentedAttribute[float] | InstrumentedAttribute[float | None]
STAGES: dict[str, Value] = {
    "retrieval": E.retrieval_ms,
    "first token": E.first_token_ms,
    "total": E.total_ms,
}
LEVELS = (50, 95)
GAP_QUESTIONS = 500  # the most recent distinct gap questions that are grouped
SUBQUERIES_PER_SELECT = 400


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _rows(engine: Engine, query: Select) -> list[tuple]:  # type: ignore[type-arg]
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def _frame(engine: Engine, query: Select, columns: Sequence[str]) -> pd.DataFrame:  # type: ignore[type-arg]
    return pd.DataFrame(_rows(engine, query), columns=list(columns))


def _days(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column)


def _utc(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column, utc=True)


# The activity cube ---------------------------------------------------------------------------

ACTIVITY_COLUMNS = [
    "day", "role", "model", "abstained", "feedback", "questions", "model_errors", "tokens_in",
    "tokens_out", "timed_first_token",
]  # fmt: skip


def activity(engine: Engine, filters: UsageFilter) -> pd.DataFrame:
    """Questions and sums per (day, role, model, abstained, feedback): one scan of the period."""
    keys = (E.day, E.role, E.model, E.abstained, E.feedback)
    query = (
        select(
            *keys,
            func.count(),
            func.count(E.error),
            func.coalesce(func.sum(E.tokens_in), 0),
            func.coalesce(func.sum(E.tokens_out), 0),
            func.count(E.first_token_ms),
        )
        .where(*filters.conditions())
        .group_by(*keys)
    )
    frame = _frame(engine, query, ACTIVITY_COLUMNS)
    return frame.assign(day=_days(frame["day"]), abstained=frame["abstained"].astype(bool))


def distinct_users(engine: Engine, filters: UsageFilter) -> int:
    query = select(func.count(E.user.distinct())).where(*filters.conditions())
    return int(_rows(engine, query)[0][0])


# Percentiles ---------------------------------------------------------------------------------


def rank(count: int, level: int) -> int:
    """The 1-based nearest rank of percentile ``level`` among ``count`` values."""
    return (count * level + 99) // 100


def nth_values(
    engine: Engine, value: Value, filters: UsageFilter, wanted: Sequence[tuple[object, int]]
) -> list[float | None]:
    """The ``rank``-th smallest non-null ``value`` for each (day or None for all, rank)."""
    found: list[float | None] = []
    for start in range(0, len(wanted), SUBQUERIES_PER_SELECT):
        picks = [
            select(value)
            .where(*filters.conditions(), value.is_not(None), *([E.day == day] if day else []))
            .order_by(value)
            .limit(1)
            .offset(n - 1)
            .scalar_subquery()
            for day, n in wanted[start : start + SUBQUERIES_PER_SELECT]
        ]
        found.extend(_rows(engine, select(*picks))[0])
    return [None if v is None else round(float(v), 1) for v in found]


def percentiles(
    engine: Engine, value: Value, filters: UsageFilter, counts: dict[object, int]
) -> dict[object, dict[str, float | None]]:
    """p50/p95 per group key (a day, or None for the whole period), given its number of values."""
    keys = [key for key, n in counts.items() if n > 0]
    wanted = [(key, rank(counts[key], level)) for key in keys for level in LEVELS]
    values = iter(nth_values(engine, value, filters, wanted))
    return {key: {f"p{level}": next(values) for level in LEVELS} for key in keys}


def latency_percentiles(
    engine: Engine, filters: UsageFilter, count: int | None = None
) -> dict[str, float | None]:
    """p50/p95 of the total answer time over the period (``count``: its number of events)."""
    if count is None:
        query = select(func.count()).select_from(E).where(*filters.conditions())
        count = int(_rows(engine, query)[0][0])
    found = percentiles(engine, E.total_ms, filters, {None: count})
    return found.get(None, {"p50": None, "p95": None})


def latency_per_day(engine: Engine, filters: UsageFilter, cube: pd.DataFrame) -> pd.DataFrame:
    """p50 and p95 per day and stage (retrieval, first token, total), in milliseconds."""
    per_day = cube.groupby("day")[["questions", "timed_first_token"]].sum()
    rows = []
    for stage, column in STAGES.items():
        counted = per_day["timed_first_token" if stage == "first token" else "questions"]
        counts = {day.date(): int(n) for day, n in counted.items()}
        for day, found in percentiles(engine, column, filters, counts).items():
            rows.append({"day": day, "stage": stage, **found})
    frame = pd.DataFrame(rows, columns=["day", "stage", *(f"p{level}" for level in LEVELS)])
    return frame.assign(day=_days(frame["day"]))


# Summary (the `kdesk usage` contract) ---------------------------------------------------------

COUNTS = ("questions", "abstained", "model_errors", "feedback_up", "feedback_down")


def _counts(cube: pd.DataFrame) -> dict[str, int]:
    return {
        "questions": int(cube["questions"].sum()),
        "answered": int(cube.loc[~cube["abstained"], "questions"].sum()),
        "abstained": int(cube.loc[cube["abstained"], "questions"].sum()),
        "model_errors": int(cube["model_errors"].sum()),
        "feedback_up": int(cube.loc[cube["feedback"] == 1, "questions"].sum()),
        "feedback_down": int(cube.loc[cube["feedback"] == -1, "questions"].sum()),
        "tokens_in": int(cube["tokens_in"].sum()),
        "tokens_out": int(cube["tokens_out"].sum()),
    }


def summary(
    engine: Engine, filters: UsageFilter, cube: pd.DataFrame | None = None
) -> dict[str, object]:
    """Headline figures, overall and by role."""
    cube = activity(engine, filters) if cube is None else cube
    result: dict[str, object] = dict(_counts(cube))
    result["users"] = distinct_users(engine, filters)
    result["latency_ms"] = latency_percentiles(engine, filters, int(cube["questions"].sum()))
    result["by_role"] = {
        role: _counts(part)
        | {
            "latency_ms": latency_percentiles(
                engine, _only(filters, role), _counts(part)["questions"]
            )
        }
        for role, part in cube.groupby("role")
    }
    models = cube.groupby("model")["questions"].sum().sort_values(ascending=False)
    result["models"] = {str(m): int(n) for m, n in models.items()}
    result["routes"] = route_split(engine, filters)  # fast / strong / cache (usage/routes.py)
    result["answer_cache"] = cache_hit_rate(engine, filters)
    return result


def _only(filters: UsageFilter, role: object) -> UsageFilter:
    return replace(filters, roles=(str(role),))  # keeps the viewer's permission scope


# Charts (summed from the cube) ----------------------------------------------------------------


def questions_per_day(cube: pd.DataFrame) -> pd.DataFrame:
    return cube.groupby(["day", "role"], as_index=False)["questions"].sum()


def outcomes_per_day(cube: pd.DataFrame) -> pd.DataFrame:
    outcome = cube["abstained"].map({True: "abstained", False: "answered"})
    return (
        cube.assign(outcome=outcome).groupby(["day", "outcome"], as_index=False)["questions"].sum()
    )


def model_share(cube: pd.DataFrame) -> pd.DataFrame:
    frame = cube.groupby("model", as_index=False)["questions"].sum()
    frame = frame.sort_values(["questions", "model"], ascending=[False, True], ignore_index=True)
    total = frame["questions"].sum()
    return frame.assign(share=frame["questions"] / total if total else 0.0)


def feedback_per_day(cube: pd.DataFrame) -> pd.DataFrame:
    """Thumbs up and down per day, and the share of up among the rated answers."""
    rated = cube[cube["feedback"].notna()]
    rating = rated["feedback"].map({1: "up", -1: "down"})
    frame = rated.assign(rating=rating).pivot_table(
        index="day", columns="rating", values="questions", aggfunc="sum", fill_value=0
    )
    frame = frame.reindex(columns=["up", "down"], fill_value=0).reset_index()
    frame.columns.name = None
    total = frame["up"] + frame["down"]
    return frame.assign(up_share=(frame["up"] / total.where(total > 0)).fillna(0.0))


# Tables --------------------------------------------------------------------------------------


def most_cited_documents(engine: Engine, filters: UsageFilter, limit: int = 20) -> pd.DataFrame:
    answers = func.count().label("answers")
    top = (
        select(C.doc_id, answers)
        .where(*filters.conditions(C))
        .group_by(C.doc_id)
        .order_by(answers.desc(), C.doc_id)
        .limit(limit)
        .subquery()
    )
    named = aliased(C)

    def first(column: InstrumentedAttribute[str]) -> ColumnElement[str]:
        return select(column).where(named.doc_id == top.c.doc_id).limit(1).scalar_subquery()

    query = select(first(named.collection), first(named.file_name), top.c.answers)
    query = query.order_by(top.c.answers.desc(), top.c.doc_id)
    return _frame(engine, query, ["collection", "document", "answers"])


def never_cited_documents(engine: Engine, filters: UsageFilter) -> pd.DataFrame:
    """Documents in the knowledge base that no answer in the period cited."""
    d = DocumentRow
    cited = exists().where(C.doc_id == d.doc_id, *filters.conditions(C))
    visible = [] if filters.collections is None else [d.collection.in_(filters.collections)]
    query = (
        select(d.collection, d.file_name, d.title, d.pages, d.ingested_at)
        .where(~cited, *visible)
        .order_by(d.collection, d.file_name)
    )
    frame = _frame(engine, query, ["collection", "document", "title", "pages", "ingested_at"])
    return frame.assign(ingested_at=_utc(frame["ingested_at"]))


def _question_groups(filters: UsageFilter, *extra: ColumnElement[bool]) -> Select:  # type: ignore[type-arg]
    return (
        select(
            E.question_hash.label("question_hash"),
            func.count().label("asked"),
            _count_if(E.abstained.is_(True)).label("abstained"),
            _count_if(E.feedback == -1).label("thumbs_down"),
            func.max(E.day).label("last_asked"),
        )
        .where(*filters.conditions(), E.question_hash.is_not(None), *extra)
        .group_by(E.question_hash)
    )


def _with_text(groups: Select) -> Select:  # type: ignore[type-arg]
    """The groups with one stored text per hash (all texts of a hash are the same question)."""
    g = groups.subquery()
    text = select(E.question).where(E.question_hash == g.c.question_hash).limit(1).scalar_subquery()
    return select(
        g.c.question_hash, text, g.c.asked, g.c.abstained, g.c.thumbs_down, g.c.last_asked
    )


def top_questions(engine: Engine, filters: UsageFilter, limit: int = 20) -> pd.DataFrame:
    groups = _question_groups(filters)
    groups = groups.order_by(func.count().desc(), func.max(E.day).desc()).limit(limit)
    columns = ["hash", "question", "asked", "abstained", "thumbs_down", "last_asked"]
    frame = _frame(engine, _with_text(groups), columns).drop(columns="hash")
    return frame.assign(last_asked=_days(frame["last_asked"]))


def gap_questions(
    engine: Engine, filters: UsageFilter, limit: int = GAP_QUESTIONS
) -> list[GapQuestion]:
    """Distinct questions that were abstained on or got a thumbs down, most recent first."""
    groups = _question_groups(filters, or_(E.abstained, E.feedback == -1))
    groups = groups.order_by(func.max(E.day).desc(), func.count().desc()).limit(limit)
    return [
        GapQuestion(h, q or "", int(n), int(a), int(d), _as_utc(last))
        for h, q, n, a, d, last in _rows(engine, _with_text(groups))
    ]


def knowledge_gaps(
    log: UsageLog, filters: UsageFilter, similarity: float = DEFAULT_SIMILARITY
) -> list[GapTopic]:
    questions = gap_questions(log.engine, filters)
    vectors = log.question_vectors({q.question_hash: q.question for q in questions})
    return group_gaps(questions, vectors, similarity)


def gaps_frame(topics: Sequence[GapTopic]) -> pd.DataFrame:
    rows = [
        {
            "topic": t.label,
            "asked": t.asked,
            "abstained": t.abstained,
            "thumbs_down": t.thumbs_down,
            "questions": len(t.questions),
            "examples": " · ".join(t.questions[:3]),
            "last_asked": t.last_asked,
        }
        for t in topics
    ]
    columns = ["topic", "asked", "abstained", "thumbs_down", "questions", "examples", "last_asked"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(last_asked=_utc(frame["last_asked"]))


def _as_utc(value: date | datetime | str) -> datetime:
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# Everything the analytics page shows ---------------------------------------------------------


@dataclass
class Dashboard:
    filters: UsageFilter
    summary: dict[str, object]
    questions_per_day: pd.DataFrame
    outcomes_per_day: pd.DataFrame
    latency_per_day: pd.DataFrame
    model_share: pd.DataFrame
    feedback_per_day: pd.DataFrame
    most_cited: pd.DataFrame
    never_cited: pd.DataFrame
    top_questions: pd.DataFrame
    gaps: pd.DataFrame
    built_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def questions(self) -> int:
        return int(self.summary["questions"])  # type: ignore[call-overload]


def build_dashboard(log: UsageLog, filters: UsageFilter) -> Dashboard:
    engine = log.engine
    cube = activity(engine, filters)
    return Dashboard(
        filters=filters,
        summary=summary(engine, filters, cube),
        questions_per_day=questions_per_day(cube),
        outcomes_per_day=outcomes_per_day(cube),
        latency_per_day=latency_per_day(engine, filters, cube),
        model_share=model_share(cube),
        feedback_per_day=feedback_per_day(cube),
        most_cited=most_cited_documents(engine, filters),
        never_cited=never_cited_documents(engine, filters),
        top_questions=top_questions(engine, filters),
        gaps=gaps_frame(knowledge_gaps(log, filters)),
    )


def default_range(today: date | None = None, days: int = 30) -> tuple[date, date]:
    """The last ``days`` UTC days, today included."""
    end = today or datetime.now(UTC).date()
    return date.fromordinal(end.toordinal() - days + 1), end
