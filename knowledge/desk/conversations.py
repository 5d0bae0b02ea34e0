"""A signed-in user's conversations: their own only, stored answers reopened with their
citations (the passage as it was shown when its document has since been deleted), and the
retention applied whenever the list is read."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from knowledge.assistant.context import context_window
from knowledge.assistant.personas import Turn
from knowledge.core.types import Answer, Chunk, Citation
from knowledge.usage.conversations import (
    Conversation,
    ConversationBook,
    StoredCitation,
    StoredTurn,
    stored_turn,
)

if TYPE_CHECKING:
    from knowledge.desk.facade import UserDesk

PURGE_EVERY_S = 3600.0
_last_purge: dict[int, float] = {}  # per book (engine), when the retention last ran here


def conversation_book(desk: object) -> ConversationBook:
    """The desk's book of conversations, made on first use (one per desk)."""
    book = getattr(desk, "_conversation_book", None)
    if book is None:
        book = ConversationBook(desk.engine)  # type: ignore[attr-defined]
        desk._conversation_book = book  # type: ignore[attr-defined]
    return book


def purge_expired(book: ConversationBook, days: int, *, force: bool = False) -> int:
    """Apply the retention, at most once an hour per process unless ``force``."""
    now = time.monotonic()
    last = _last_purge.get(id(book))
    if not force and last is not None and now - last < PURGE_EVERY_S:
        return 0
    _last_purge[id(book)] = now
    return book.purge(days)


class UserConversations:
    def __init__(self, me: UserDesk) -> None:
        self.me = me
        self.book = conversation_book(me.desk)

    @property
    def owner(self) -> str:
        return self.me.user

    def recent(self) -> list[Conversation]:
        purge_expired(self.book, self.me.desk.settings.conversation_days)
        return self.book.list(self.owner)

    def start(self, first_question: str = "", collections: Sequence[str] = ()) -> Conversation:
        persona = self.me.role.name if self.me.role else ""
        return self.book.create(
            self.owner, title=first_question, persona=persona, collections=collections
        )

    def get(self, conversation_id: str) -> Conversation:
        return self.book.get(self.owner, conversation_id)

    def append(self, conversation_id: str, answer: Answer) -> None:
        self.book.append(self.owner, conversation_id, stored_turn(answer))

    def rename(self, conversation_id: str, title: str) -> None:
        self.book.rename(self.owner, conversation_id, title)

    def delete(self, conversation_id: str) -> None:
        self.book.delete(self.owner, conversation_id)

    def answers(self, conversation_id: str) -> list[Answer]:
        """The stored turns as answers to show again, citations pointing to the stored
        chunks the user may still read."""
        turns = self.get(conversation_id).turns
        wanted = [c.chunk_id for t in turns for c in t.citations]
        found = self.me.desk.store.chunks(wanted) if wanted else {}
        readable = set(self.me.collections())
        chunks = {i: c for i, c in found.items() if c.collection in readable}
        return [_answer(t, chunks) for t in turns]


def model_line(me: UserDesk) -> str:
    """The model that answers and the context window assumed for it (what long conversations
    are fitted into)."""
    model = me.desk.model
    return f"Answers by `{model.name}` · context window {context_window(model):,} tokens"


def history_turns(answers: Sequence[Answer]) -> list[Turn]:
    return [Turn(a.question, a.text) for a in answers]


def _answer(turn: StoredTurn, chunks: dict[str, Chunk]) -> Answer:
    citations = [
        Citation(c.n, chunks.get(c.chunk_id) or _gone(c), c.score, c.quote, c.page)
        for c in turn.citations
    ]
    return Answer(
        question=turn.question,
        text=turn.answer,
        abstained=turn.abstained,
        model="kept conversation",
        citations=citations,
        evidence="none" if turn.abstained else "strong",
        event_id=turn.event_id,
    )


def _gone(c: StoredCitation) -> Chunk:
    """A stand-in for a passage no longer stored (or no longer readable): what was shown."""
    return Chunk(
        id=c.chunk_id,
        doc_id=c.doc_id,
        collection=c.collection,
        file_name=c.file_name,
        title=c.file_name,
        page_start=c.page,
        page_end=c.page,
        heading_path=(),
        char_start=0,
        char_end=len(c.quote),
        text=c.quote,
        content_hash="",
        page_labels={c.page: c.location} if not c.location.startswith("p. ") else {},
    )
