"""Knowledge gaps: unanswered questions grouped by meaning into topics named by their most
central question - with hand-made vectors (exact) and with the real embedding model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from knowledge.core.db import sqlite_url
from knowledge.core.redaction import question_hash
from knowledge.usage.analytics import knowledge_gaps
from knowledge.usage.events import UsageEvent, UsageFilter, UsageLog
from knowledge.usage.gaps import GapQuestion, group_gaps
from tests.db import migrated_engine

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def gap(question: str, asked: int = 1, days_ago: int = 0, down: int = 0) -> GapQuestion:
    return GapQuestion(
        question_hash(question), question, asked, asked - down, down, NOW - timedelta(days_ago)
    )


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_close_questions_form_one_topic_named_by_its_most_central_question():
    questions = [gap("a-left", 1), gap("a-middle", 1), gap("a-right", 5, days_ago=2), gap("b", 2)]
    vectors = {
        question_hash("a-left"): unit(1, 0.35, 0),
        question_hash("a-middle"): unit(1, 0, 0),
        question_hash("a-right"): unit(1, -0.35, 0),
        question_hash("b"): unit(0, 0, 1),
    }
    first, second = group_gaps(questions, vectors, similarity=0.8)
    assert first.label == "a-middle", "closest to the others, though a-right is asked more"
    assert (first.asked, first.abstained, first.thumbs_down) == (7, 7, 0)
    assert first.questions == ("a-right", "a-left", "a-middle")  # most asked first
    assert first.last_asked == NOW
    assert (second.label, second.asked, second.questions) == ("b", 2, ("b",))


def test_a_high_threshold_keeps_duplicates_only():
    questions = [gap("x"), gap("y")]
    vectors = {question_hash("x"): unit(1, 0.3), question_hash("y"): unit(1, -0.3)}
    assert len(group_gaps(questions, vectors, similarity=0.95)) == 2
    assert len(group_gaps(questions, vectors, similarity=0.5)) == 1


def test_questions_without_a_vector_stay_on_their_own():
    topics = group_gaps([gap("lonely", 3), gap("x")], {question_hash("x"): unit(1, 0)})
    assert [(t.label, t.asked) for t in topics] == [("lonely", 3), ("x", 1)]
    assert group_gaps([], {}) == []


PARAPHRASES = {
    "parking": [
        "Where can I park my car?", "What is the parking policy?", "Is there parking at work?",
    ],
    "vpn": ["How do I reset my VPN password?", "VPN password reset", "I forgot my VPN password"],
    "pets": ["Can I bring my dog to the office?", "Are pets allowed at work?"],
    "pension": ["What is the pension scheme?", "How much does the company pay into my pension?"],
}  # fmt: skip


def test_the_embedding_model_groups_paraphrases_into_topics(embedder):
    texts = [q for group in PARAPHRASES.values() for q in group]
    questions = [gap(q, asked=1 + i % 3) for i, q in enumerate(texts)]
    vectors = dict(
        zip([q.question_hash for q in questions], embedder.embed_documents(texts), strict=True)
    )
    topics = group_gaps(questions, vectors)
    assert sorted(sorted(t.questions) for t in topics) == sorted(
        sorted(group) for group in PARAPHRASES.values()
    )
    for topic in topics:
        assert topic.label in topic.questions


def test_knowledge_gaps_read_from_the_usage_log(database_url: str, embedder):
    log = UsageLog(migrated_engine(database_url), embed=embedder.embed_documents)

    def asked(question: str, **changes: object) -> UsageEvent:
        values: dict[str, object] = {
            "question": question, "user": "u", "role": "employee", "channel": "chat",
            "model": "m", "abstained": True, "total_ms": 10.0, "created_at": NOW,
        }  # fmt: skip
        return UsageEvent(**(values | changes))  # type: ignore[arg-type]

    log.record_many(
        [asked(q) for q in PARAPHRASES["parking"]]
        + [asked("Where can I park my car?")]  # asked twice: one question, counted twice
        + [asked("VPN password reset", abstained=False, feedback="down")]
        + [asked("What is the pension scheme?", abstained=False)]  # answered, not a gap
    )
    log.embed = None  # every gap question got its vector when recorded
    topics = knowledge_gaps(log, UsageFilter())
    assert [(t.asked, t.abstained, t.thumbs_down, len(t.questions)) for t in topics] == [
        (4, 4, 0, 3),
        (1, 0, 1, 1),
    ]
    assert topics[0].label in PARAPHRASES["parking"]
    assert topics[1].label == "VPN password reset"


@pytest.mark.parametrize("storage", ["off"])
def test_without_stored_questions_there_are_no_gap_topics(tmp_path, storage):
    log = UsageLog(migrated_engine(sqlite_url(tmp_path / "kdesk.sqlite3")), storage)  # type: ignore[arg-type]
    log.record(UsageEvent("Secret?", "u", "employee", "chat", "m", abstained=True, total_ms=1.0))
    assert knowledge_gaps(log, UsageFilter()) == []
