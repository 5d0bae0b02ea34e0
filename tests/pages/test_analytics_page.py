"""Usage analytics through AppTest: real chat exchanges record events and take feedback; the
Analytics page shows them (filters, charts, gaps, tables, export); the app serves /metrics."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from knowledge.core.db import sqlite_url
from knowledge.core.metrics import stop_metrics_server
from knowledge.usage.events import CitedDocument, UsageEvent, UsageLog
from tests.db import migrated_engine
from tests.fake_ollama import FakeOllama
from tests.pages.conftest import TESTER, Configure, ingest_handbook, open_page, sign_in
from tests.pages.support import (
    FILE_NAME,
    OFF_TOPIC_QUESTION,
    VACATION_QUESTION,
    free_port,
)


def usage_log(data_dir: Path) -> UsageLog:
    data_dir.mkdir(parents=True, exist_ok=True)
    return UsageLog(migrated_engine(sqlite_url(data_dir / "kdesk.sqlite3")))


def all_events(data_dir: Path) -> list[dict]:
    log = usage_log(data_dir)
    with log.engine.connect() as connection:
        ids = connection.exec_driver_sql("select id from usage_events order by created_at")
        return [log.event(event_id) for (event_id,) in ids]


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception
    return at


@pytest.fixture
def handbook(tmp_path: Path) -> Path:
    """A data dir of its own: these tests write usage events."""
    data_dir = tmp_path / "data"
    ingest_handbook(data_dir)
    return data_dir


def test_chat_exchanges_are_recorded_and_take_feedback(
    handbook: Path, ollama: FakeOllama, configure: Configure
):
    configure(handbook, ollama.url)
    at = open_page("pages/chat.py").run()
    ask(ask(at, VACATION_QUESTION), OFF_TOPIC_QUESTION)
    answered, abstained = all_events(handbook)
    assert (answered["user"], answered["role"], answered["channel"]) == (TESTER, "admin", "chat")
    assert answered["question"] == VACATION_QUESTION and not answered["abstained"]
    assert answered["cited_documents"] == [FILE_NAME] and answered["tokens_in"] > 0
    assert abstained["question"] == OFF_TOPIC_QUESTION and abstained["abstained"]
    assert [a.event_id for a in at.session_state["history"]] == [answered["id"], abstained["id"]]

    assert len(at.feedback) == 2, "a thumbs widget under every answer"
    comments = lambda: [t for t in at.text_input if t.label != "Title"]  # noqa: E731 - not the conversation's
    assert not comments(), "the comment box opens once an answer is rated"
    at.feedback[0].set_value(0).run()
    assert all_events(handbook)[0]["feedback"] == -1
    comments()[0].set_value("It should say 2027 too").run()
    at.feedback[1].set_value(1).run()
    assert not at.exception
    answered, abstained = all_events(handbook)
    assert (answered["feedback"], answered["feedback_comment"]) == (-1, "It should say 2027 too")
    assert abstained["feedback"] == 1


def test_the_session_user_and_role_are_recorded(
    handbook: Path, ollama: FakeOllama, configure: Configure
):
    configure(handbook, ollama.url)
    at = open_page("pages/chat.py", user="ann", roles=["manager"])
    ask(at.run(), VACATION_QUESTION)
    [event] = all_events(handbook)
    assert (event["user"], event["role"], event["channel"]) == ("ann", "manager", "chat")


def test_feedback_survives_a_page_switch(handbook: Path, ollama: FakeOllama, configure: Configure):
    configure(handbook, ollama.url)
    at = open_page("app.py").run()
    ask(at, VACATION_QUESTION)
    at.feedback[0].set_value(1).run()
    at.switch_page("pages/library.py").run()
    at.switch_page("pages/chat.py").run()
    assert not at.exception
    assert at.feedback[0].value == 1
    assert all_events(handbook)[0]["feedback"] == 1


def test_analytics_after_chatting_shows_the_gap_and_the_cited_document(
    handbook: Path, ollama: FakeOllama, configure: Configure
):
    configure(handbook, ollama.url)
    chat = open_page("pages/chat.py").run()
    ask(ask(chat, VACATION_QUESTION), OFF_TOPIC_QUESTION)

    at = open_page("pages/analytics.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Questions"] == "2"
    assert metrics["Abstained"] == "50%"
    tables = {subheader.value for subheader in at.subheader}
    assert {"Knowledge gaps", "Top questions", "Most cited documents"} <= tables
    gaps, top, by_role, cited, routes = frames(at, "topic", "question", "role", "document", "route")
    assert gaps["topic"].tolist() == [OFF_TOPIC_QUESTION]
    assert sorted(top["question"]) == sorted([VACATION_QUESTION, OFF_TOPIC_QUESTION])
    assert by_role["role"].tolist() == ["admin"]
    assert cited["document"].tolist() == [FILE_NAME]
    assert routes["answers"].sum() == 2 and set(routes["route"]) <= {"single", "none"}
    assert any("Every document was cited" in c.value for c in at.caption)
    assert at.get("download_button")


def frames(at: AppTest, *first_columns: str) -> list:
    """The page's tables, picked by a column only they have."""
    values = [d.value for d in at.dataframe]
    return [next(v for v in values if column in v.columns) for column in first_columns]


def seed(data_dir: Path) -> None:
    now = datetime.now(UTC)
    doc = CitedDocument("d1", "policy.pdf", "HR")

    def event(question: str, role: str, hours_ago: int, **changes: object) -> UsageEvent:
        values: dict[str, object] = {
            "question": question, "user": f"{role}-1", "role": role, "channel": "chat",
            "model": "ollama · test", "abstained": False, "total_ms": 2000.0 + hours_ago,
            "retrieval_ms": 40.0, "first_token_ms": 800.0, "cited": (doc,),
            "created_at": now - timedelta(hours=hours_ago),
        }  # fmt: skip
        return UsageEvent(**(values | changes))  # type: ignore[arg-type]

    usage_log(data_dir).record_many(
        [
            event("How much vacation do I get?", "employee", 1, feedback="up"),
            event("How much vacation do I get?", "employee", 30),
            event("Where can I park?", "manager", 2, abstained=True, cited=(), first_token_ms=None),
            event("Where can I park?", "employee", 50, abstained=True, cited=()),
            event("Hotel limit?", "admin", 3, feedback="down", feedback_comment="outdated"),
        ]
    )


def test_analytics_filters_by_role_and_period(tmp_path: Path, configure: Configure):
    data_dir = tmp_path / "data"
    seed(data_dir)
    configure(data_dir, f"http://127.0.0.1:{free_port()}")
    at = open_page("pages/analytics.py").run()
    assert not at.exception
    assert [t.value for t in at.title] == ["📊 Usage analytics"]
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Questions"], metrics["Abstained"], metrics["Thumbs up"]) == ("5", "40%", "50%")
    assert len(at.get("vega_lite_chart")) == 5, "five charts"
    [gaps] = frames(at, "topic")
    assert gaps["topic"].tolist() == ["Where can I park?", "Hotel limit?"]  # most asked first

    at.multiselect(key="roles").set_value(["manager"]).run()
    assert {m.label: m.value for m in at.metric}["Questions"] == "1"
    at.multiselect(key="roles").set_value([]).run()

    long_ago = datetime.now(UTC).date() - timedelta(days=400)
    at.date_input(key="period").set_value((long_ago, long_ago + timedelta(days=7))).run()
    assert not at.exception
    assert "No questions in this period" in at.info[0].value


def test_analytics_before_anything_was_asked(tmp_path: Path, configure: Configure):
    configure(tmp_path / "data", f"http://127.0.0.1:{free_port()}")
    at = open_page("pages/analytics.py").run()
    assert not at.exception
    assert "No questions have been asked yet" in at.info[0].value


def test_analytics_are_for_managers_and_admins(tmp_path: Path, configure: Configure):
    data_dir = tmp_path / "data"
    seed(data_dir)
    configure(data_dir, f"http://127.0.0.1:{free_port()}")
    at = open_page("pages/analytics.py", user="emp", roles=["employee"])
    at.run()
    assert "do not give access to this page" in at.error[0].value
    assert not at.metric
    sign_in(at, "boss", ["manager"])
    at.run()
    assert not at.error and at.metric


def test_app_lists_analytics_and_serves_metrics_once(
    handbook: Path, ollama: FakeOllama, configure: Configure, monkeypatch: pytest.MonkeyPatch
):
    port = free_port()
    monkeypatch.setenv("KDESK_METRICS_PORT", str(port))
    configure(handbook, ollama.url)
    try:
        at = open_page("app.py").run()
        ask(at, VACATION_QUESTION)
        at.switch_page("pages/analytics.py").run()
        assert not at.exception
        assert [t.value for t in at.title] == ["📊 Usage analytics"]
        at.run()  # a rerun (and below, a rebuilt desk) finds the server already running
        from pages.shared import get_desk

        get_desk.clear()
        at.run()
        assert not at.exception
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        assert 'kdesk_questions_total{channel="chat",outcome="answered",role="admin"}' in text
    finally:
        stop_metrics_server(port)
