"""The whole desk on a real PostgreSQL server (KDESK_DATABASE_URL=postgresql+psycopg://...):
ingestion, search with metadata filters, answers recorded as usage events, feedback, the
analytics dashboard, contract clause records and their reviews, accounts, roles, rate limits
and the audit log - through the same code paths the app and the CLI use.

The fixed-data tests of the single components (test_analytics, test_usage, test_accounts,
test_roles, test_audit, test_ratelimit, test_usage_scope) run on both databases through the
``database_url`` fixture; this module checks that the pieces work together there. The test
server's own time zone is not UTC (tests/postgres.py), so nothing may depend on it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from knowledge.access.accounts import SignInError
from knowledge.access.audit import AuditQuery
from knowledge.access.ratelimit import RateLimit, RateLimitedError
from knowledge.access.roles import Role
from knowledge.contracts.book import ClauseFilter, export_csv
from knowledge.core.db import downgrade, make_engine
from knowledge.core.errors import KdeskError
from knowledge.core.settings import Settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.search.filters import SearchFilter
from knowledge.usage.analytics import build_dashboard, summary
from knowledge.usage.events import UsageFilter
from tests.conftest import ScriptedChatModel
from tests.contract_samples import GOVERNING_LAW_PAGE, contract_pdf
from tests.knowledge.test_usage import HANDBOOK, MANAGER, OFF_TOPIC, VACATION
from tests.pdfs import make_pdf
from tests.postgres import SERVER_TIME_ZONE

HOTEL = "Up to how many euros per night are hotel costs reimbursed?"
PASSWORD = "a long test password"


@pytest.fixture
def pg_settings(tmp_path: Path, postgres_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=postgres_url,
        model_backend="ollama",
        chunk_size=200,  # a chunk per page of the handbook: several chunk rows per document
        chunk_overlap=0,
        lockout_attempts=2,
    )


@pytest.fixture
def pg_desk(pg_settings: Settings, embedder, model: ScriptedChatModel) -> Desk:
    desk = Desk(pg_settings, embedder=embedder, model=model)
    assert desk.engine.dialect.name == "postgresql"
    return desk


def ingest(desk: Desk, name: str, data: bytes, collection: str, **kwargs: object) -> str:
    [report] = desk.ingest([Upload(name, data)], collection, **kwargs)  # type: ignore[arg-type]
    assert report.status in ("added", "replaced"), report
    assert report.doc_id
    return report.doc_id


def ask(desk: Desk, question: str, **kwargs: object):  # type: ignore[no-untyped-def]
    stream = desk.ask(question, **kwargs)  # type: ignore[arg-type]
    text = "".join(stream)
    return text, stream.answer


# The server --------------------------------------------------------------------------------


def test_the_project_engine_reads_utc_whatever_the_server_time_zone(postgres_url: str):
    plain = create_engine(postgres_url)
    with plain.connect() as connection:
        assert connection.execute(text("SHOW TimeZone")).scalar() == SERVER_TIME_ZONE
        assert connection.execute(text("SHOW listen_addresses")).scalar() == "127.0.0.1"
    plain.dispose()
    engine = make_engine(postgres_url)
    with engine.connect() as connection:
        assert connection.execute(text("SHOW TimeZone")).scalar() == "UTC"
        now = connection.execute(text("SELECT now()")).scalar()
    assert isinstance(now, datetime) and now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=5)


# Knowledge: ingest, search, filters, replace, delete ---------------------------------------


def test_ingest_and_search_on_postgresql(pg_desk: Desk, pg_settings: Settings):
    [report] = pg_desk.ingest(
        [Upload("handbook.pdf", make_pdf(HANDBOOK, title="Handbook"))], "HR", tags=["Policy"]
    )
    assert (report.status, report.pages, report.tags) == ("added", 2, ("policy",))
    assert report.chunks >= 2
    assert not pg_settings.database_path.exists(), "nothing went to the SQLite file"
    [again] = pg_desk.ingest([Upload("handbook.pdf", make_pdf(HANDBOOK, title="Handbook"))], "HR")
    assert (again.status, again.doc_id) == ("unchanged", report.doc_id)

    [info] = pg_desk.store.documents()
    assert (info.file_name, info.title, info.pages, info.tags) == (
        "handbook.pdf", "Handbook", 2, ("policy",),
    )  # fmt: skip
    assert info.ingested_at.utcoffset() == timedelta(0)
    [collection] = pg_desk.store.collections()
    assert (collection.name, collection.documents, collection.chunks) == ("HR", 1, report.chunks)

    top = pg_desk.search(HOTEL, ["HR"])[0]
    assert (top.chunk.file_name, top.chunk.page_start) == ("handbook.pdf", 2)
    assert "140 euros" in top.chunk.text

    def found(where: SearchFilter) -> list[str]:
        return [r.chunk.file_name for r in pg_desk.search(VACATION, ["HR"], where=where)][:1]

    today = datetime.now(UTC).date()
    assert found(SearchFilter(tags=("policy",))) == ["handbook.pdf"]
    assert found(SearchFilter(tags=("pol",))) == [], "a tag matches whole, never a part"
    assert found(SearchFilter(documents=("handbook.pdf",))) == ["handbook.pdf"]
    assert found(SearchFilter(ingested_since=today, ingested_until=today)) == ["handbook.pdf"]
    assert found(SearchFilter(ingested_until=today - timedelta(days=1))) == []
    assert pg_desk.set_tags(report.doc_id or "", ["HR", "benefits"]).tags == ("hr", "benefits")
    assert found(SearchFilter(tags=("benefits",))) == ["handbook.pdf"]


def test_a_replaced_and_a_deleted_document_on_postgresql(pg_desk: Desk):
    doc_id = ingest(pg_desk, "handbook.pdf", make_pdf(HANDBOOK), "HR")
    changed = [HANDBOOK[0].replace("27 days", "31 days"), HANDBOOK[1]]
    assert ingest(pg_desk, "handbook.pdf", make_pdf(changed), "HR") == doc_id
    texts = " ".join(r.chunk.text for r in pg_desk.search(VACATION, ["HR"]))
    assert "31 days" in texts and "27 days" not in texts
    assert pg_desk.store.revision("HR") == 2
    pg_desk.store.delete_document(doc_id)
    assert pg_desk.store.documents() == [] and pg_desk.search(VACATION, ["HR"]) == []
    with pg_desk.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM chunks")).scalar() == 0


def test_columns_of_later_releases_are_added_in_place_on_postgresql(pg_desk: Desk, embedder):
    doc_id = ingest(pg_desk, "handbook.pdf", make_pdf(HANDBOOK), "HR")
    downgrade(pg_desk.engine, "2")  # the tables and columns of later revisions gone
    with pg_desk.engine.begin() as connection:  # the schema of a release before Alembic
        connection.execute(text("ALTER TABLE documents DROP COLUMN tags"))
        connection.execute(text("ALTER TABLE chunks DROP COLUMN page_break"))
        connection.execute(text("DROP TABLE alembic_version"))
    reopened = Desk(pg_desk.settings, embedder=embedder, model=ScriptedChatModel())
    assert reopened.store.document(doc_id).tags == (), "rows written before read as no tags"
    assert reopened.set_tags(doc_id, ["policy"]).tags == ("policy",)
    where = SearchFilter(tags=("policy",))
    assert {r.chunk.doc_id for r in reopened.search(VACATION, ["HR"], where=where)} == {doc_id}


# Answers, usage events, feedback, analytics -----------------------------------------------


def test_answers_feedback_and_the_dashboard_on_postgresql(pg_desk: Desk, model):
    ingest(pg_desk, "handbook.pdf", make_pdf(HANDBOOK, title="Handbook"), "HR")
    ingest(pg_desk, "unused.pdf", make_pdf(["Parking\nThe garage opens at 6 am."]), "HR")
    model.reply = "Every full-time employee receives 27 days of paid vacation [1]."
    answer_text, answered = ask(pg_desk, VACATION, collections=["HR"], requester=MANAGER)
    assert "27 days" in answer_text and answered.event_id
    _, abstained = ask(pg_desk, OFF_TOPIC, collections=["HR"])
    assert abstained.abstained and abstained.event_id

    event = pg_desk.usage.event(answered.event_id)
    assert (event["user"], event["role"], event["channel"]) == ("ann", "manager", "cli")
    assert event["question"] == VACATION and event["collections"] == '["HR"]'
    assert event["abstained"] is False and event["cited_documents"] == ["handbook.pdf"]
    assert event["total_ms"] == pytest.approx(answered.total_ms)
    created = event["created_at"]
    assert isinstance(created, datetime) and created.utcoffset() == timedelta(0)
    assert event["day"] == created.date()
    assert pg_desk.usage.event(abstained.event_id)["first_token_ms"] is None

    pg_desk.feedback(answered.event_id, "down", "  Wrong year  ")
    event = pg_desk.usage.event(answered.event_id)
    assert (event["feedback"], event["feedback_comment"]) == (-1, "Wrong year")
    with pytest.raises(KdeskError):
        pg_desk.feedback("no-such-event", "up")

    figures = summary(pg_desk.engine, UsageFilter())
    assert {k: figures[k] for k in ("questions", "answered", "abstained", "feedback_down")} == {
        "questions": 2, "answered": 1, "abstained": 1, "feedback_down": 1,
    }  # fmt: skip
    assert set(figures["by_role"]) == {"employee", "manager"}  # type: ignore[call-overload]
    assert figures["users"] == 2
    slowest = max(answered.total_ms, abstained.total_ms)
    assert figures["latency_ms"]["p95"] == pytest.approx(slowest, abs=0.05)  # type: ignore[index]

    board = build_dashboard(pg_desk.usage, UsageFilter())
    assert board.questions == 2
    assert board.most_cited[["document", "answers"]].values.tolist() == [["handbook.pdf", 1]]
    assert board.never_cited["document"].tolist() == ["unused.pdf"]
    assert sorted(board.top_questions["question"]) == sorted([VACATION, OFF_TOPIC])
    assert board.gaps["asked"].sum() == 2, "the abstention and the thumbs down"
    assert set(board.latency_per_day["stage"]) == {"retrieval", "first token", "total"}
    assert pg_desk.usage.date_range() == (created.date(), created.date())

    rows = list(csv.DictReader(io.StringIO(pg_desk.usage.export_csv_bytes(UsageFilter()).decode())))
    assert [(r["question"], r["cited_documents"], r["feedback"]) for r in rows] == [
        (VACATION, "handbook.pdf", "down"),
        (OFF_TOPIC, "", ""),
    ]
    assert rows[0]["created_at"].endswith("+00:00")


# Contracts ---------------------------------------------------------------------------------


def test_clause_records_and_reviews_on_postgresql(pg_desk: Desk, embedder):
    doc_id = ingest(pg_desk, "acme-supply.pdf", contract_pdf(), "Contracts")
    [contract] = pg_desk.contracts.contracts()
    assert (contract.doc_id, contract.detected_by, contract.pages) == (doc_id, "collection", 3)
    assert contract.clauses >= 5
    [law] = pg_desk.contracts.records(ClauseFilter(categories=["Governing Law"]))
    assert (law.value, law.page, law.status) == ("New York", GOVERNING_LAW_PAGE, "extracted")
    parties = pg_desk.contracts.records(ClauseFilter(categories=["Parties"]))
    pg_desk.contracts.review(law.id, "confirm", "dana")
    pg_desk.contracts.review(parties[0].id, "correct", "dana", value="Acme Robotics Inc.")

    reopened = Desk(pg_desk.settings, embedder=embedder, model=ScriptedChatModel())
    law = reopened.contracts.record(law.id)
    assert (law.status, law.reviewer) == ("confirmed", "dana")
    assert law.reviewed_at is not None and law.reviewed_at.utcoffset() == timedelta(0)
    assert abs(law.reviewed_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert reopened.contracts.record(parties[0].id).value == "Acme Robotics Inc."
    assert [e.action for e in reopened.contracts.history(law.id)] == ["confirm"]
    assert reopened.contracts.contracts()[0].reviewed == 2
    new_york = reopened.contracts.records(ClauseFilter(value_contains="new york"))
    assert [r.id for r in new_york] == [law.id]
    exported = export_csv(reopened.contracts.records()).decode("utf-8-sig")
    assert law.reviewed_at.strftime("%Y-%m-%d %H:%M:%S UTC") in exported

    reopened.store.delete_document(doc_id)  # the foreign keys cascade on PostgreSQL too
    assert reopened.contracts.contracts() == [] and reopened.contracts.records() == []
    assert reopened.contracts.history(law.id) == []


# Accounts, roles, rate limits, audit ------------------------------------------------------


def test_users_roles_rate_limits_and_audit_on_postgresql(pg_desk: Desk, model):
    one_time = pg_desk.accounts.bootstrap()
    assert one_time and pg_desk.accounts.bootstrap() is None
    admin = pg_desk.accounts.authenticate("admin", one_time)
    assert admin.must_change_password and admin.roles == ("admin",)
    pg_desk.accounts.change_password("admin", one_time, PASSWORD)

    ingest(pg_desk, "handbook.pdf", make_pdf(HANDBOOK), "HR")
    ingest(
        pg_desk, "memo.pdf", make_pdf(["Settlement\nThe Initech settlement is 4 million."]), "Legal"
    )
    root = pg_desk.for_user("admin", channel="chat")
    root.save_role(
        Role("hr", pages=("chat",), collections=("HR",), rate_limit=RateLimit(requests=2)),
    )
    first = root.add_user("Hanna", ["hr"])
    assert first is not None, "a one-time password, to be changed at the first sign-in"
    assert pg_desk.accounts.authenticate("hanna", first).must_change_password
    pg_desk.accounts.change_password("hanna", first, PASSWORD)

    hanna = pg_desk.for_user(pg_desk.accounts.authenticate("HANNA", PASSWORD).name)
    assert hanna.collections() == ["HR"] and hanna.access.role_names == ("hr",)
    hits = hanna.search("Initech settlement")
    assert hits and {r.chunk.collection for r in hits} == {"HR"}
    for _ in range(2):
        "".join(hanna.ask(VACATION))
    with pytest.raises(RateLimitedError) as refused:
        hanna.ask(VACATION)
    assert 0 < refused.value.retry_after_s <= 600
    use = pg_desk.limits.use("hanna", 600)
    assert use.requests == 2 and use.tokens > 0, "the answers' tokens were settled"

    for _ in range(2):
        with pytest.raises(SignInError):
            pg_desk.accounts.authenticate("hanna", "not the password")
    with pytest.raises(SignInError, match="locked"):
        pg_desk.accounts.authenticate("hanna", PASSWORD)
    locked = pg_desk.accounts.account("hanna")
    assert locked is not None and locked.locked(datetime.now(UTC))
    assert locked.locked_until is not None and locked.locked_until.utcoffset() == timedelta(0)
    root.unlock_user("hanna")
    assert pg_desk.accounts.authenticate("hanna", PASSWORD).name == "hanna"

    with pytest.raises(KdeskError, match="nobody could manage roles"):
        pg_desk.roles.assign("admin", ["hr"])
    hanna_events = pg_desk.audit.events(AuditQuery(actor="hanna"))
    assert [e.action for e in reversed(hanna_events)] == [
        "sign_in", "sign_in", "password_changed", "sign_in", "rate_limited", "sign_in_failed",
        "sign_in_failed", "account_locked", "sign_in_failed", "sign_in",
    ]  # fmt: skip
    assert hanna_events[0].at.utcoffset() == timedelta(0)
    today = datetime.now(UTC).date()
    by_admin = root.audit_events(AuditQuery(actor="admin", since=today, until=today))
    assert {"role_saved", "user_added", "user_unlocked", "password_changed"} <= {
        e.action for e in by_admin
    }
    assert pg_desk.audit.events(AuditQuery(until=today - timedelta(days=1))) == []
