"""Each user's conversations, kept: created, continued turn by turn, listed newest first,
renamed, deleted, and purged after ``KDESK_CONVERSATION_DAYS``. Every read and write names the
owner; another user's conversation is "not found", exactly like a missing one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Boolean, Engine, ForeignKey, Index, Integer, String, Text, delete, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.core.db import Base, UTCDateTime, utc_now
from knowledge.core.errors import KdeskError, NotFoundError
from knowledge.core.types import Answer

TITLE_CHARS = 60


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_owner", "owner", "updated_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    persona: Mapped[str] = mapped_column(String(100))
    collections: Mapped[str] = mapped_column(Text)  # JSON list
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ConversationTurnRow(Base):
    __tablename__ = "conversation_turns"
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    citations: Mapped[str] = mapped_column(Text)  # JSON list of StoredCitation fields
    abstained: Mapped[bool] = mapped_column(Boolean)
    event_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class StoredCitation:
    """A citation as kept: the chunk it points to and what was shown, so that it still reads
    when the document has since been deleted."""

    n: int
    chunk_id: str
    doc_id: str
    file_name: str
    collection: str
    page: int
    location: str
    quote: str
    score: float


@dataclass(frozen=True)
class StoredTurn:
    question: str
    answer: str
    abstained: bool
    citations: tuple[StoredCitation, ...] = ()
    event_id: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Conversation:
    id: str
    owner: str
    title: str
    persona: str
    collections: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    turns: tuple[StoredTurn, ...] = field(default=())


def title_of(question: str) -> str:
    """The first question, shortened at a word to about ``TITLE_CHARS`` characters."""
    text = " ".join(question.split()) or "New conversation"
    if len(text) <= TITLE_CHARS:
        return text
    cut = text[:TITLE_CHARS].rsplit(" ", 1)[0] or text[:TITLE_CHARS]
    return cut.rstrip(" ,;:.") + "…"


def stored_turn(answer: Answer) -> StoredTurn:
    citations = tuple(
        StoredCitation(
            n=c.n,
            chunk_id=c.chunk.id,
            doc_id=c.chunk.doc_id,
            file_name=c.chunk.file_name,
            collection=c.chunk.collection,
            page=c.page,
            location=c.chunk.cited_as(c.page),
            quote=c.quote,
            score=round(c.score, 4),
        )
        for c in answer.citations
    )
    return StoredTurn(answer.question, answer.text, answer.abstained, citations, answer.event_id)


class ConversationBook:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, owner: str, *, title: str = "", persona: str = "", collections: Sequence[str] = ()
    ) -> Conversation:
        now = utc_now()
        row = ConversationRow(
            id=uuid.uuid4().hex,
            owner=owner,
            title=title_of(title) if title.strip() else "New conversation",
            persona=persona,
            collections=json.dumps(list(collections)),
            created_at=now,
            updated_at=now,
        )
        with Session(self.engine) as session, session.begin():
            session.add(row)
            conversation = _conversation(row)
        return conversation

    def append(self, owner: str, conversation_id: str, turn: StoredTurn) -> None:
        """Add a turn; the first one gives an untitled conversation its title."""
        now = utc_now()
        with Session(self.engine) as session, session.begin():
            row = self._owned(session, owner, conversation_id)
            last = session.scalar(
                select(ConversationTurnRow.n)
                .where(ConversationTurnRow.conversation_id == row.id)
                .order_by(ConversationTurnRow.n.desc())
                .limit(1)
            )
            if last is None and row.title == "New conversation":
                row.title = title_of(turn.question)
            row.updated_at = now
            session.add(
                ConversationTurnRow(
                    conversation_id=row.id,
                    n=0 if last is None else last + 1,
                    question=turn.question,
                    answer=turn.answer,
                    citations=json.dumps([c.__dict__ for c in turn.citations]),
                    abstained=turn.abstained,
                    event_id=turn.event_id,
                    created_at=now,
                )
            )

    def list(self, owner: str, limit: int = 200) -> list[Conversation]:
        """The owner's conversations, the most recently continued first (without turns)."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(ConversationRow)
                .where(ConversationRow.owner == owner)
                .order_by(ConversationRow.updated_at.desc(), ConversationRow.created_at.desc())
                .limit(limit)
            )
            return [_conversation(r) for r in rows]

    def get(self, owner: str, conversation_id: str) -> Conversation:
        """The conversation with its turns in order; another user's is "not found"."""
        with Session(self.engine) as session:
            row = self._owned(session, owner, conversation_id)
            turns = session.scalars(
                select(ConversationTurnRow)
                .where(ConversationTurnRow.conversation_id == row.id)
                .order_by(ConversationTurnRow.n)
            )
            return _conversation(row, tuple(_turn(t) for t in turns))

    def rename(self, owner: str, conversation_id: str, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            raise KdeskError("A conversation's title cannot be empty.")
        with Session(self.engine) as session, session.begin():
            self._owned(session, owner, conversation_id).title = title[:200]

    def delete(self, owner: str, conversation_id: str) -> None:
        with Session(self.engine) as session, session.begin():
            row = self._owned(session, owner, conversation_id)
            session.execute(
                delete(ConversationTurnRow).where(ConversationTurnRow.conversation_id == row.id)
            )
            session.delete(row)

    def purge(self, days: int, *, now: datetime | None = None) -> int:
        """Delete every conversation not continued for ``days`` days (0 keeps them all);
        returns how many."""
        if days <= 0:
            return 0
        cutoff = (now or utc_now()) - timedelta(days=days)
        with Session(self.engine) as session, session.begin():
            old = select(ConversationRow.id).where(ConversationRow.updated_at < cutoff)
            ids = list(session.scalars(old))
            if not ids:
                return 0
            session.execute(
                delete(ConversationTurnRow).where(ConversationTurnRow.conversation_id.in_(ids))
            )
            session.execute(delete(ConversationRow).where(ConversationRow.id.in_(ids)))
        return len(ids)

    def touch(self, conversation_id: str, when: datetime) -> None:
        """Set when a conversation was last continued (imports, tests of the retention)."""
        with Session(self.engine) as session, session.begin():
            session.execute(
                sql_update(ConversationRow)
                .where(ConversationRow.id == conversation_id)
                .values(updated_at=when)
            )

    @staticmethod
    def _owned(session: Session, owner: str, conversation_id: str) -> ConversationRow:
        row = session.get(ConversationRow, conversation_id)
        if row is None or row.owner != owner:
            raise NotFoundError(f"No conversation with id {conversation_id}.")
        return row


def _conversation(row: ConversationRow, turns: tuple[StoredTurn, ...] = ()) -> Conversation:
    return Conversation(
        id=row.id,
        owner=row.owner,
        title=row.title,
        persona=row.persona,
        collections=tuple(json.loads(row.collections or "[]")),
        created_at=row.created_at,
        updated_at=row.updated_at,
        turns=turns,
    )


def _turn(row: ConversationTurnRow) -> StoredTurn:
    citations = tuple(StoredCitation(**c) for c in json.loads(row.citations or "[]"))
    return StoredTurn(
        row.question, row.answer, row.abstained, citations, row.event_id, row.created_at
    )
