"""Usage events: one row per answered question, written when the answer stream finishes.

``UsageLog`` owns the tables (``usage_events``, ``usage_citations``, ``usage_question_vectors``)
in the project's database. Question text is stored according to ``KDESK_QUESTION_STORAGE``
(see ``knowledge.core.redaction``). The vectors of "gap" questions (abstained or thumbs-down) are
computed when the gap happens, so grouping them for the analytics page never waits for the
embedding model; ``analytics.py`` reads these tables with SQL aggregations only.
"""

from __future__ import annotations

import getpass
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Literal, TextIO

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Engine,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from knowledge.core.db import utc_now
from knowledge.core.errors import NotFoundError
from knowledge.core.exports import write_csv
from knowledge.core.redaction import QuestionStorage, stored_question
from knowledge.core.types import Answer, Requester
from knowledge.usage.tables import QuestionVectorRow, UsageCitationRow, UsageEventRow

log = logging.getLogger("kdesk.usage")

Rating = Literal["up", "down"]
RATING_VALUE: dict[Rating, int] = {"up": 1, "down": -1}
Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class CitedDocument:
    doc_id: str
    file_name: str
    collection: str


@dataclass(frozen=True)
class TokenCount:
    prompt: int = 0
    completion: int = 0
    estimated: bool = False  # True: characters / 4, the backend reported no counts


def estimate_tokens(chars: int) -> int:
    return (chars + 3) // 4


@dataclass(frozen=True)
class UsageEvent:
    question: str
    user: str
    role: str
    channel: str
    model: str
    abstained: bool
    total_ms: float
    retrieval_ms: float = 0.0
    first_token_ms: float | None = None
    persona: str = "default"
    collections: tuple[str, ...] = ()
    answer_chars: int = 0
    evidence: str = "strong"
    quoted: bool = False
    error: str | None = None
    top_score: float = 0.0
    cited: tuple[CitedDocument, ...] = ()
    tokens: TokenCount = TokenCount()
    feedback: Rating | None = None
    feedback_comment: str | None = None
    created_at: datetime = field(default_factory=utc_now)
    route: str = "none"  # knowledge.assistant.routing: fast, strong, single, persona, cache
    route_reason: str = ""
    cached: bool = False

    @property
    def is_gap(self) -> bool:
        return self.abstained or self.feedback == "down"

    @classmethod
    def from_answer(
        cls,
        answer: Answer,
        requester: Requester,
        collections: Sequence[str],
        persona: str,
        tokens: TokenCount,
    ) -> UsageEvent:
        cited = {c.chunk.doc_id: c.chunk for c in answer.citations}
        return cls(
            question=answer.question,
            user=requester.user,
            role=requester.role,
            channel=requester.channel,
            persona=persona,
            collections=tuple(collections),
            answer_chars=len(answer.text),
            abstained=answer.abstained,
            evidence=answer.evidence,
            quoted=answer.quoted,
            error=answer.error,
            top_score=max((s.score for s in answer.sources), default=0.0),
            cited=tuple(CitedDocument(c.doc_id, c.file_name, c.collection) for c in cited.values()),
            model=answer.model,
            tokens=tokens,
            retrieval_ms=answer.retrieval_ms,
            first_token_ms=answer.first_token_ms,
            total_ms=answer.total_ms,
            route=answer.route,
            route_reason=answer.route_reason,
            cached=answer.cached,
        )


def os_user() -> str:
    """The login name of whoever runs the command line, or "anonymous"."""
    try:
        return getpass.getuser() or "anonymous"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "anonymous"


@dataclass(frozen=True)
class UsageFilter:
    """Which events an aggregate covers: a UTC date range (both ends included) and roles.

    ``collections`` is the viewer's permission scope (None: everything): citations count only
    in these collections, and events only when every collection they searched is one of them
    - ``searched`` lists those events' stored collection lists (see ``UsageLog.scoped``)."""

    since: date | None = None
    until: date | None = None
    roles: tuple[str, ...] = ()
    collections: tuple[str, ...] | None = None
    searched: tuple[str, ...] = ()

    def conditions(
        self, table: type[UsageEventRow] | type[UsageCitationRow] = UsageEventRow
    ) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.since:
            found.append(table.day >= self.since)
        if self.until:
            found.append(table.day <= self.until)
        if self.roles:
            found.append(table.role.in_(self.roles))
        if self.collections is not None:
            if table is UsageCitationRow:
                found.append(UsageCitationRow.collection.in_(self.collections))
            else:
                found.append(UsageEventRow.collections.in_(self.searched))
        return found


EXPORT_COLUMNS = (
    "id", "created_at", "user", "role", "channel", "persona", "collections", "question",
    "question_hash", "answer_chars", "abstained", "evidence", "quoted", "error", "top_score",
    "cited_documents", "model", "tokens_in", "tokens_out", "tokens_estimated", "retrieval_ms",
    "first_token_ms", "total_ms", "feedback", "feedback_comment",
)  # fmt: skip


class UsageLog:
    def __init__(
        self,
        engine: Engine,
        storage: QuestionStorage = "full",
        *,
        embed: Embed | None = None,
        embedding_model: str = "default",
    ) -> None:
        self.engine = engine
        self.storage = storage
        self.embed = embed
        self.embedding_model = embedding_model

    # Writing -------------------------------------------------------------------------------

    def record(self, event: UsageEvent) -> str:
        """Store one exchange; returns the event id that feedback refers to."""
        return self.record_many([event])[0]

    def record_many(self, events: Sequence[UsageEvent]) -> list[str]:
        rows = [self._row(event) for event in events]
        citations = [
            {"event_id": row["id"], "day": row["day"], "role": row["role"], **vars(doc)}
            for row, event in zip(rows, events, strict=True)
            for doc in event.cited
        ]
        with self.engine.begin() as connection:
            if rows:
                connection.execute(insert(UsageEventRow), rows)
            if citations:
                connection.execute(insert(UsageCitationRow), citations)
        gaps = {
            str(row["question_hash"]): str(row["question"])
            for row, event in zip(rows, events, strict=True)
            if event.is_gap and row["question_hash"]
        }
        self._remember_vectors(gaps)
        return [str(row["id"]) for row in rows]

    def _row(self, event: UsageEvent) -> dict[str, object]:
        text, digest = stored_question(event.question, self.storage)
        created = event.created_at.astimezone(UTC)
        values = {k: v for k, v in vars(event).items() if k not in ("cited", "tokens")}
        return (
            values
            | {
                "user": event.user[:200],  # the column widths (PostgreSQL enforces them)
                "role": event.role[:100],
                "channel": event.channel[:20],
                "persona": event.persona[:100],
                "model": event.model[:200],
                "route": event.route[:20],
                "id": uuid.uuid4().hex,
                "created_at": created,
                "day": created.date(),
                "question": text,
                "question_hash": digest,
                "question_storage": self.storage,
                "collections": json.dumps(list(event.collections), ensure_ascii=False),
                "cited_count": len(event.cited),
                "tokens_in": event.tokens.prompt,
                "tokens_out": event.tokens.completion,
                "tokens_estimated": event.tokens.estimated,
                "feedback": RATING_VALUE[event.feedback] if event.feedback else None,
                "feedback_at": created if event.feedback else None,
            }
        )

    def set_feedback(
        self, event_id: str, rating: Rating | None, comment: str | None = None
    ) -> None:
        """Thumbs up/down (None clears it); a comment, when given, replaces the previous one."""
        values: dict[str, object] = {
            "feedback": RATING_VALUE[rating] if rating else None,
            "feedback_at": utc_now(),
        }
        if comment is not None:
            values["feedback_comment"] = comment.strip() or None
        with Session(self.engine) as session, session.begin():
            row = session.get(UsageEventRow, event_id)
            if row is None:
                raise NotFoundError(f"No usage event with id {event_id}.")
            session.execute(
                update(UsageEventRow).where(UsageEventRow.id == event_id).values(**values)
            )
            gap = {row.question_hash: row.question} if rating == "down" else {}
        self._remember_vectors({h: q for h, q in gap.items() if h and q})

    # Question vectors (for grouping knowledge gaps) -----------------------------------------

    def _remember_vectors(self, questions: dict[str, str]) -> None:
        if not questions or self.embed is None:
            return
        try:
            self.question_vectors(questions)
        except Exception:  # noqa: BLE001 - grouping will embed them later; never lose the event
            log.exception("could not embed gap questions; they will be embedded on demand")

    def question_vectors(self, questions: dict[str, str]) -> dict[str, np.ndarray]:
        """Vectors by question hash, embedding (and keeping) the ones not stored yet."""
        found = self._stored_vectors(list(questions))
        missing = [h for h in questions if h not in found]
        if missing and self.embed is not None:
            vectors = np.asarray(self.embed([questions[h] for h in missing]), dtype=np.float32)
            fresh = dict(zip(missing, vectors, strict=True))
            self._store_vectors(fresh)
            found.update(fresh)
        return found

    def _stored_vectors(self, hashes: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        q = QuestionVectorRow
        with Session(self.engine) as session:
            for start in range(0, len(hashes), 500):
                rows = session.execute(
                    select(q.question_hash, q.vector).where(
                        q.embedding_model == self.embedding_model,
                        q.question_hash.in_(hashes[start : start + 500]),
                    )
                )
                found.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in rows)
        return found

    def _store_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        known = self._stored_vectors(list(vectors))  # a concurrent writer may have added some
        rows = [
            {"question_hash": h, "embedding_model": self.embedding_model, "vector": v.tobytes()}
            for h, v in vectors.items()
            if h not in known
        ]
        if rows:
            with self.engine.begin() as connection:
                connection.execute(insert(QuestionVectorRow), rows)

    # Reading -------------------------------------------------------------------------------

    def event(self, event_id: str) -> dict[str, object]:
        """One stored event as a dict of its columns (and its cited file names)."""
        with Session(self.engine) as session:
            row = session.get(UsageEventRow, event_id)
            if row is None:
                raise NotFoundError(f"No usage event with id {event_id}.")
            values = {c.key: getattr(row, c.key) for c in UsageEventRow.__table__.columns}
            values["cited_documents"] = list(
                session.scalars(
                    select(UsageCitationRow.file_name)
                    .where(UsageCitationRow.event_id == event_id)
                    .order_by(UsageCitationRow.file_name)
                )
            )
        return values

    def roles(self) -> list[str]:
        with Session(self.engine) as session:
            query = select(UsageEventRow.role).distinct().order_by(UsageEventRow.role)
            return list(session.scalars(query))

    def scoped(self, filters: UsageFilter, collections: Sequence[str] | None) -> UsageFilter:
        """``filters`` limited to what a viewer allowed ``collections`` may see (None: all).
        Events are kept when they searched at least one collection, all of them allowed."""
        if collections is None:
            return replace(filters, collections=None, searched=())
        allowed = set(collections)
        with Session(self.engine) as session:
            stored = session.scalars(select(UsageEventRow.collections).distinct())
            searched = tuple(
                text for text in stored if (names := set(json.loads(text))) and names <= allowed
            )
        return replace(filters, collections=tuple(sorted(allowed)), searched=searched)

    def date_range(self) -> tuple[date, date] | None:
        """The first and the last day with events, or None when nothing was recorded."""
        with Session(self.engine) as session:
            first, last = session.execute(
                select(func.min(UsageEventRow.day), func.max(UsageEventRow.day))
            ).one()
        if first is None or last is None:
            return None
        return _as_date(first), _as_date(last)

    # Export --------------------------------------------------------------------------------

    def iter_export_rows(self, filters: UsageFilter) -> Iterator[list[object]]:
        e, c = UsageEventRow, UsageCitationRow
        cited = (
            select(func.aggregate_strings(c.file_name, "; "))
            .where(c.event_id == e.id)
            .scalar_subquery()
        )
        columns = [
            cited if name == "cited_documents" else getattr(e, name) for name in EXPORT_COLUMNS
        ]
        query = select(*columns).where(*filters.conditions()).order_by(e.created_at)
        with self.engine.connect() as connection:
            for row in connection.execution_options(yield_per=2000).execute(query):
                yield [
                    _csv_value(name, value) for name, value in zip(EXPORT_COLUMNS, row, strict=True)
                ]

    def export_csv(self, filters: UsageFilter, out: TextIO) -> int:
        """Write the filtered events as CSV (a header line first); returns the number of rows."""
        return write_csv(out, self.iter_export_rows(filters), EXPORT_COLUMNS)

    def export_csv_bytes(self, filters: UsageFilter) -> bytes:
        buffer = io.StringIO()
        self.export_csv(filters, buffer)
        return buffer.getvalue().encode("utf-8")


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _csv_value(name: str, value: object) -> object:
    if value is None:
        return ""
    if name == "feedback":
        return {1: "up", -1: "down"}.get(int(value), "")  # type: ignore[call-overload]
    if name == "collections":
        return "; ".join(json.loads(str(value)))
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, float):
        return round(value, 1) if name.endswith("_ms") else round(value, 4)
    return value
