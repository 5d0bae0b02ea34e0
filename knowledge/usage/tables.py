"""The usage tables: one row per answered question (with covering indexes for the analytics),
the documents each answer cited, and the vectors of gap questions. ``events.py`` writes them,
``analytics.py`` aggregates them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.core.db import Base, UTCDateTime


class UsageEventRow(Base):
    __tablename__ = "usage_events"
    # Covering indexes: every analytics query reads one of them, never the wide table rows.
    __table_args__ = (
        Index(
            "ix_usage_events_activity",
            *("day", "role", "model", "abstained", "feedback", "user", "tokens_in", "tokens_out"),
            *("first_token_ms", "error"),
        ),
        Index("ix_usage_events_total", "day", "total_ms", "role"),
        Index("ix_usage_events_first_token", "day", "first_token_ms", "role"),
        Index("ix_usage_events_retrieval", "day", "retrieval_ms", "role"),
        Index("ix_usage_events_questions", "day", "question_hash", "role", "abstained", "feedback"),
        Index("ix_usage_events_question_hash", "question_hash"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    day: Mapped[date] = mapped_column(Date)  # UTC day of created_at, for cheap grouping
    user: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20))
    persona: Mapped[str] = mapped_column(String(100))
    collections: Mapped[str] = mapped_column(Text)  # JSON list
    question: Mapped[str | None] = mapped_column(Text)
    question_hash: Mapped[str | None] = mapped_column(String(16))
    question_storage: Mapped[str] = mapped_column(String(10))
    answer_chars: Mapped[int] = mapped_column(Integer)
    abstained: Mapped[bool] = mapped_column(Boolean)
    evidence: Mapped[str] = mapped_column(String(10))
    quoted: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    top_score: Mapped[float] = mapped_column(Float)
    cited_count: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(200))
    tokens_in: Mapped[int] = mapped_column(Integer)
    tokens_out: Mapped[int] = mapped_column(Integer)
    tokens_estimated: Mapped[bool] = mapped_column(Boolean)
    retrieval_ms: Mapped[float] = mapped_column(Float)
    first_token_ms: Mapped[float | None] = mapped_column(Float)
    total_ms: Mapped[float] = mapped_column(Float)
    feedback: Mapped[int | None] = mapped_column(SmallInteger)  # +1 thumbs up, -1 thumbs down
    feedback_comment: Mapped[str | None] = mapped_column(Text)
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # which model answered and why (knowledge.assistant.routing); a stored answer served again
    route: Mapped[str | None] = mapped_column(String(20))
    route_reason: Mapped[str | None] = mapped_column(Text)
    cached: Mapped[bool | None] = mapped_column(Boolean)


class UsageCitationRow(Base):
    """A document cited by an answer (once per answer, however many of its passages). The
    event's day and role are repeated here so that citation counts never join the events."""

    __tablename__ = "usage_citations"
    __table_args__ = (Index("ix_usage_citations_doc", "doc_id", "day", "role"),)
    event_id: Mapped[str] = mapped_column(
        ForeignKey("usage_events.id", ondelete="CASCADE"), primary_key=True
    )
    doc_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    file_name: Mapped[str] = mapped_column(String(500))
    collection: Mapped[str] = mapped_column(String(200))
    day: Mapped[date] = mapped_column(Date)
    role: Mapped[str] = mapped_column(String(100))


class QuestionVectorRow(Base):
    __tablename__ = "usage_question_vectors"
    question_hash: Mapped[str] = mapped_column(String(16), primary_key=True)
    embedding_model: Mapped[str] = mapped_column(String(200), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, unit length
