"""The conversation store: owners only, titles, rename, delete, retention (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from knowledge.core.db import utc_now
from knowledge.core.errors import KdeskError, NotFoundError
from knowledge.usage.conversations import (
    ConversationBook,
    StoredCitation,
    StoredTurn,
    title_of,
)
from tests.db import migrated_engine

CITATION = StoredCitation(
    n=1,
    chunk_id="c1",
    doc_id="d1",
    file_name="travel.pdf",
    collection="policies",
    page=3,
    location="p. 3",
    quote="Economy class for flights under 6 hours.",
    score=0.71,
)


def turn(question: str, answer: str = "It is [1].") -> StoredTurn:
    return StoredTurn(question, answer, False, (CITATION,), "ev1")


def test_turns_are_kept_in_order_with_their_citations(database_url: str):
    book = ConversationBook(migrated_engine(database_url))
    c = book.create("alice", persona="employee", collections=["policies"])
    book.append("alice", c.id, turn("What class may I fly?"))
    book.append("alice", c.id, turn("And on long flights?", "Business [1]."))
    kept = book.get("alice", c.id)
    assert [t.question for t in kept.turns] == ["What class may I fly?", "And on long flights?"]
    assert kept.turns[1].answer == "Business [1]."
    assert kept.turns[0].citations == (CITATION,) and kept.turns[0].event_id == "ev1"
    assert kept.title == "What class may I fly?"  # the first question
    assert kept.collections == ("policies",) and kept.persona == "employee"


def test_another_users_conversation_is_not_found_like_a_missing_one(database_url: str):
    book = ConversationBook(migrated_engine(database_url))
    c = book.create("alice")
    book.append("alice", c.id, turn("Secret question"))
    assert book.list("bob") == []
    for action in (
        lambda: book.get("bob", c.id),
        lambda: book.append("bob", c.id, turn("mine now?")),
        lambda: book.rename("bob", c.id, "taken"),
        lambda: book.delete("bob", c.id),
    ):
        with pytest.raises(NotFoundError) as theirs:
            action()
        with pytest.raises(NotFoundError) as missing:
            book.get("bob", "0" * 32)
        assert str(theirs.value).replace(c.id, "X") == str(missing.value).replace("0" * 32, "X")
    assert [t.question for t in book.get("alice", c.id).turns] == ["Secret question"]
    assert book.get("alice", c.id).title == "Secret question"


def test_listed_newest_first_renamed_and_deleted(database_url: str):
    book = ConversationBook(migrated_engine(database_url))
    first, second = book.create("alice"), book.create("alice")
    book.append("alice", first.id, turn("Older question"))
    book.touch(second.id, utc_now() - timedelta(days=1))
    assert [c.id for c in book.list("alice")] == [first.id, second.id]
    book.append("alice", second.id, turn("Newer question"))  # continued: now first
    assert [c.id for c in book.list("alice")] == [second.id, first.id]

    book.rename("alice", first.id, "  Travel   rules ")
    assert book.get("alice", first.id).title == "Travel rules"
    with pytest.raises(KdeskError, match="cannot be empty"):
        book.rename("alice", first.id, "   ")
    assert book.get("alice", first.id).title == "Travel rules"  # bad input loses nothing

    book.delete("alice", first.id)
    assert [c.id for c in book.list("alice")] == [second.id]
    with pytest.raises(NotFoundError):
        book.get("alice", first.id)


def test_purge_removes_conversations_not_continued_within_the_retention(database_url: str):
    book = ConversationBook(migrated_engine(database_url))
    old, recent = book.create("alice"), book.create("bob")
    book.append("alice", old.id, turn("Old"))
    book.append("bob", recent.id, turn("Recent"))
    book.touch(old.id, utc_now() - timedelta(days=31))
    book.touch(recent.id, utc_now() - timedelta(days=29))
    assert book.purge(0) == 0  # 0: kept forever
    assert book.purge(30) == 1
    assert book.list("alice") == [] and [c.id for c in book.list("bob")] == [recent.id]
    with pytest.raises(NotFoundError):
        book.get("alice", old.id)


def test_titles_are_the_first_question_shortened_at_a_word():
    assert title_of("  What is   the travel policy? ") == "What is the travel policy?"
    long = "How many days of parental leave do employees get when they adopt a child abroad?"
    short = title_of(long)
    assert short.endswith("…") and len(short) <= 61 and long.startswith(short[:-1])
