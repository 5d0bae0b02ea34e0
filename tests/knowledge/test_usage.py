"""Usage events: what an exchange records (through Desk.ask, as chat and CLI use it), feedback,
question storage modes, and CSV export, over a real SQLite file."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime

import numpy as np
import pytest

from knowledge.core import metrics
from knowledge.core.errors import NotFoundError
from knowledge.core.redaction import normalized, question_hash, redact, stored_question
from knowledge.core.settings import Settings
from knowledge.core.types import Requester
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.usage.events import (
    EXPORT_COLUMNS,
    CitedDocument,
    TokenCount,
    UsageEvent,
    UsageFilter,
    UsageLog,
)
from tests.conftest import ScriptedChatModel
from tests.pdfs import make_pdf

HANDBOOK = [
    "Vacation Policy\nEvery full-time employee receives 27 days of paid vacation per calendar "
    "year. Vacation requests are approved by your team lead at least two weeks in advance.",
    "Travel Expenses\nHotel costs are reimbursed up to 140 euros per night in major cities. "
    "Submit receipts through the expense portal within thirty days of the trip.",
]
VACATION = "How many days of paid vacation does a full-time employee receive?"
OFF_TOPIC = "What is the boiling point of mercury on Jupiter?"
MANAGER = Requester("ann", "manager", "cli")


@pytest.fixture
def handbook_desk(desk: Desk) -> Desk:
    [report] = desk.ingest([Upload("handbook.pdf", make_pdf(HANDBOOK, title="Handbook"))], "HR")
    assert report.status == "added"
    return desk


def ask(desk: Desk, question: str, **kwargs: object) -> tuple[str, object]:
    stream = desk.ask(question, **kwargs)  # type: ignore[arg-type]
    text = "".join(stream)
    return text, stream.answer


class CountingModel(ScriptedChatModel):
    """A model that reports token counts like Ollama does when its stream finishes."""

    def stream(
        self, messages, *, temperature: float, max_tokens: int, usage: dict | None = None
    ) -> Iterator[str]:
        yield from super().stream(messages, temperature=temperature, max_tokens=max_tokens)
        if usage is not None:
            usage.update(prompt_tokens=321, completion_tokens=12)


# What an exchange records ---------------------------------------------------------------------


def test_an_answered_question_is_recorded_with_who_what_and_how_long(handbook_desk: Desk):
    model = handbook_desk.model
    assert isinstance(model, ScriptedChatModel)
    model.reply = "Every full-time employee receives 27 days of paid vacation [1]."
    _, answer = ask(handbook_desk, VACATION, collections=["HR"], requester=MANAGER)
    assert answer.event_id
    event = handbook_desk.usage.event(answer.event_id)
    assert (event["user"], event["role"], event["channel"]) == ("ann", "manager", "cli")
    assert event["collections"] == '["HR"]'
    assert event["question"] == VACATION
    assert event["question_hash"] == question_hash(VACATION)
    assert event["answer_chars"] == len(answer.text)
    assert event["abstained"] is False and event["evidence"] == answer.evidence
    assert event["model"] == "scripted · test"
    assert event["top_score"] == pytest.approx(max(s.score for s in answer.sources))
    assert event["cited_documents"] == ["handbook.pdf"] and event["cited_count"] == 1
    assert event["retrieval_ms"] == pytest.approx(answer.retrieval_ms)
    assert event["first_token_ms"] == pytest.approx(answer.first_token_ms)
    assert event["total_ms"] == pytest.approx(answer.total_ms)
    assert event["retrieval_ms"] <= event["first_token_ms"] <= event["total_ms"]
    assert event["feedback"] is None


def test_without_backend_counts_tokens_are_estimated_and_marked(handbook_desk: Desk):
    _, answer = ask(handbook_desk, VACATION)
    event = handbook_desk.usage.event(answer.event_id)
    assert event["tokens_estimated"] is True
    assert event["tokens_in"] > 50  # the prompt carries the sources
    assert event["tokens_out"] == (len("The answer is in the sources [1].") + 3) // 4


def test_token_counts_reported_by_the_backend_are_used(settings: Settings, embedder):
    desk = Desk(settings, embedder=embedder, model=CountingModel("Vacation is 27 days [1]."))
    desk.ingest([Upload("handbook.pdf", make_pdf(HANDBOOK))], "HR")
    _, answer = ask(desk, VACATION)
    event = desk.usage.event(answer.event_id)
    assert (event["tokens_in"], event["tokens_out"], event["tokens_estimated"]) == (321, 12, False)


def test_an_abstention_is_recorded_without_model_tokens(handbook_desk: Desk):
    model = handbook_desk.model
    assert isinstance(model, ScriptedChatModel)
    _, answer = ask(handbook_desk, OFF_TOPIC)
    assert answer.abstained and model.calls == []
    event = handbook_desk.usage.event(answer.event_id)
    assert event["abstained"] is True and event["first_token_ms"] is None
    assert (event["tokens_in"], event["tokens_out"], event["tokens_estimated"]) == (0, 0, False)
    assert event["cited_documents"] == []
    assert (event["user"], event["role"], event["channel"]) == ("anonymous", "employee", "api")


def test_a_model_failure_is_recorded_with_its_error(settings: Settings, embedder):
    failing = ScriptedChatModel("Vacation is 27 days of paid vacation [1].", fail_after=2)
    desk = Desk(settings, embedder=embedder, model=failing)
    desk.ingest([Upload("handbook.pdf", make_pdf(HANDBOOK))], "HR")
    before = metrics.MODEL_ERRORS.labels("scripted · test")._value.get()
    _, answer = ask(desk, VACATION)
    assert answer.error
    assert desk.usage.event(answer.event_id)["error"] == answer.error
    assert metrics.MODEL_ERRORS.labels("scripted · test")._value.get() == before + 1


def test_an_exchange_is_recorded_once_and_only_when_read_to_the_end(handbook_desk: Desk):
    stream = handbook_desk.ask(VACATION)
    assert handbook_desk.usage.date_range() is None, "nothing before the stream is read"
    list(stream)
    list(stream)  # a second pass yields nothing and records nothing
    assert stream.answer.event_id
    with handbook_desk.engine.connect() as connection:
        assert connection.exec_driver_sql("select count(*) from usage_events").scalar() == 1


def test_a_failing_usage_store_never_costs_the_answer(
    handbook_desk: Desk, monkeypatch: pytest.MonkeyPatch
):
    def broken(event: UsageEvent) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(handbook_desk.usage, "record", broken)
    before = metrics.USAGE_RECORD_ERRORS._value.get()
    text, answer = ask(handbook_desk, VACATION)
    assert text and answer.text and answer.event_id is None
    assert metrics.USAGE_RECORD_ERRORS._value.get() == before + 1


# Feedback -------------------------------------------------------------------------------------


def test_feedback_updates_the_event_by_id(handbook_desk: Desk):
    _, answer = ask(handbook_desk, VACATION)
    handbook_desk.feedback(answer.event_id, "down", "  Wrong year  ")
    event = handbook_desk.usage.event(answer.event_id)
    assert (event["feedback"], event["feedback_comment"]) == (-1, "Wrong year")
    assert event["feedback_at"] is not None
    handbook_desk.feedback(answer.event_id, "up")  # no comment given: the comment stays
    assert handbook_desk.usage.event(answer.event_id)["feedback_comment"] == "Wrong year"
    assert handbook_desk.usage.event(answer.event_id)["feedback"] == 1
    handbook_desk.feedback(answer.event_id, None, "")
    event = handbook_desk.usage.event(answer.event_id)
    assert (event["feedback"], event["feedback_comment"]) == (None, None)


def test_feedback_on_an_unknown_event_says_so(handbook_desk: Desk):
    with pytest.raises(NotFoundError):
        handbook_desk.feedback("no-such-event", "up")


def test_gap_questions_get_their_vector_when_the_gap_happens(handbook_desk: Desk):
    _, answered = ask(handbook_desk, VACATION)
    _, abstained = ask(handbook_desk, OFF_TOPIC)
    usage = handbook_desk.usage
    usage.embed = None  # from now on only stored vectors can be found
    assert set(usage.question_vectors({question_hash(OFF_TOPIC): OFF_TOPIC})) == {
        question_hash(OFF_TOPIC)
    }
    assert usage.question_vectors({question_hash(VACATION): VACATION}) == {}
    usage.embed = handbook_desk.embedder.embed_documents
    handbook_desk.feedback(answered.event_id, "down")
    usage.embed = None
    vectors = usage.question_vectors({question_hash(VACATION): VACATION})
    assert np.linalg.norm(vectors[question_hash(VACATION)]) == pytest.approx(1.0, abs=1e-3)


# Question storage -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Can john.doe@acme.com get a new laptop?", "Can [email] get a new laptop?"),
        ("Call me at +49 170 1234567 about it", "Call me at [phone] about it"),
        (
            "Status of ticket INC-20391 and order 123456?",
            "Status of ticket [id] and order [number]?",
        ),
        ("Is employee EMP4471 on leave?", "Is employee [id] on leave?"),
        ("Refund to DE89 3704 0044 0532 0130 00 please", "Refund to [iban] please"),
        ("I was sick on 12.03.2024", "I was sick on [date]"),
        ("I am Anna Schmidt, how do I reset my VPN?", "I am [name], how do I reset my VPN?"),
        ("Meeting with Dr. Smith", "Meeting with Dr. [name]"),
        ("How many days of leave in 2024?", "How many days of leave in 2024?"),
        (
            "What does clause 4.2.1 say about covid-19?",
            "What does clause 4.2.1 say about covid-19?",
        ),
    ],
)
def test_redaction_masks_people_and_record_identifiers(question: str, expected: str):
    assert redact(question) == expected


def test_storage_modes_keep_all_a_redacted_copy_or_nothing():
    question = "Can  john.doe@acme.com get a laptop?"
    assert stored_question(question, "full") == (
        "Can john.doe@acme.com get a laptop?",
        question_hash("Can john.doe@acme.com get a laptop?"),
    )
    text, digest = stored_question(question, "redacted")
    assert text == "Can [email] get a laptop?"
    assert digest == stored_question("Can jane@acme.com get a laptop ?", "redacted")[1]
    assert stored_question(question, "off") == (None, None)


def test_the_hash_groups_askings_that_differ_only_in_case_spacing_and_punctuation():
    assert normalized("  How do I  reset my VPN?? ") == "how do i reset my vpn"
    assert question_hash("How do I reset my VPN?") == question_hash("how do i reset my vpn")


@pytest.mark.parametrize("storage", ["full", "redacted", "off"])
def test_the_desk_stores_questions_as_configured(settings: Settings, embedder, storage: str):
    desk = Desk(
        settings.model_copy(update={"question_storage": storage}),
        embedder=embedder,
        model=ScriptedChatModel(),
    )
    question = "Is there a policy for jane.doe@acme.com on Jupiter?"
    _, answer = ask(desk, question)
    event = desk.usage.event(answer.event_id)
    expected = {
        "full": question,
        "redacted": "Is there a policy for [email] on Jupiter?",
        "off": None,
    }[storage]
    assert event["question"] == expected and event["question_storage"] == storage
    assert (event["question_hash"] is None) == (storage == "off")


# Export ---------------------------------------------------------------------------------------


def _event(question: str, day: int, role: str = "employee", **changes: object) -> UsageEvent:
    values: dict[str, object] = {
        "question": question,
        "user": "bob",
        "role": role,
        "channel": "chat",
        "model": "m1",
        "abstained": False,
        "total_ms": 1000.0,
        "created_at": datetime(2026, 3, day, 12, 0, tzinfo=UTC),
    }
    return UsageEvent(**(values | changes))  # type: ignore[arg-type]


def test_csv_export_has_one_row_per_filtered_event(database_url: str):
    from tests.db import migrated_engine

    log = UsageLog(migrated_engine(database_url), "redacted")  # a SQLite file, then PostgreSQL
    cited = (CitedDocument("d1", "a.pdf", "HR"), CitedDocument("d2", "b.pdf", "HR"))
    log.record_many(
        [
            _event("Mail bob@acme.com, about leave?", 1, cited=cited, tokens=TokenCount(10, 5)),
            _event("Parking, please?", 2, role="manager", abstained=True, feedback="down"),
            _event("Outside the period", 9),
        ]
    )
    out = io.StringIO()
    count = log.export_csv(UsageFilter(date(2026, 3, 1), date(2026, 3, 2)), out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert count == len(rows) == 2
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    first, second = rows
    assert first["question"] == "Mail [email], about leave?"
    assert sorted(first["cited_documents"].split("; ")) == ["a.pdf", "b.pdf"]
    assert (first["tokens_in"], first["tokens_out"], first["feedback"]) == ("10", "5", "")
    assert first["created_at"].startswith("2026-03-01T12:00:00")
    assert (second["role"], second["abstained"], second["feedback"]) == ("manager", "True", "down")
    log.record(_event('=HYPERLINK("http://evil")', 1, feedback_comment="+1 great"))
    injected = list(csv.DictReader(io.StringIO(log.export_csv_bytes(UsageFilter()).decode())))
    [formula] = [row for row in injected if "HYPERLINK" in row["question"]]
    assert formula["question"].startswith("'=HYPERLINK"), "never a live formula in a spreadsheet"
    assert formula["feedback_comment"] == "'+1 great"
    only_managers = io.StringIO()
    assert log.export_csv(UsageFilter(roles=("manager",)), only_managers) == 1
    assert log.export_csv_bytes(UsageFilter()).decode().count("\n") == 5  # header + 4 events
