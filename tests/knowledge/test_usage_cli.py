"""`kdesk ask` records usage events like the chat does; `kdesk feedback` rates them; `kdesk usage`
summarises them (the --json contract scripts rely on)."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from knowledge.access.audit import AuditQuery
from knowledge.cli import common
from knowledge.cli import main as cli
from knowledge.core.settings import load_settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.fake_ollama import FakeOllama
from tests.pages.support import (
    FILE_NAME,
    MODEL,
    OFF_TOPIC_QUESTION,
    VACATION_QUESTION,
    grounded_reply,
    handbook_pdf,
)


@pytest.fixture
def kdesk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder, capsys: pytest.CaptureFixture
) -> Iterator:
    """Run `kdesk ARGS...` over a handbook data dir, answering through a fake Ollama;
    returns (exit code, stdout, stderr)."""
    with FakeOllama(reply=grounded_reply, models=[MODEL]) as ollama:
        monkeypatch.setenv("KDESK_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("KDESK_MODEL_BACKEND", "ollama")
        monkeypatch.setenv("KDESK_OLLAMA_HOST", ollama.url)
        monkeypatch.setenv("KDESK_OLLAMA_MODEL", MODEL)
        monkeypatch.setattr(common, "open_desk", lambda: Desk(load_settings(), embedder=embedder))
        common.open_desk().ingest([Upload(FILE_NAME, handbook_pdf())], "HR")

        def run(*args: str) -> tuple[int, str, str]:
            capsys.readouterr()
            code = cli.main(list(args))
            captured = capsys.readouterr()
            return code, captured.out, captured.err

        yield run


def test_ask_records_usage_and_usage_json_summarises_it(kdesk):
    assert kdesk("users", "add", "ann", "--role", "manager")[0] == 0  # --user: a real account
    code, out, _ = kdesk("ask", VACATION_QUESTION, "--json", "--user", "ann", "--role", "manager")
    assert code == 0
    answered = json.loads(out)
    assert answered["event_id"] and not answered["abstained"]

    code, out, _ = kdesk("ask", OFF_TOPIC_QUESTION)
    assert code == 0
    [hint] = [line for line in out.splitlines() if line.startswith("Rate it: kdesk feedback ")]
    abstained_id = hint.split()[4]

    code, _, err = kdesk("feedback", answered["event_id"], "down")  # as the OS user: not theirs
    assert code == 2 and "only rate your own answers" in err
    [refused] = common.open_desk().audit.events(AuditQuery(actions=("permission_denied",)))
    assert (refused.target, refused.channel) == (f"feedback:{answered['event_id']}", "cli")
    rate_ann = ("--user", "ann", "--comment", "too vague")
    assert kdesk("feedback", answered["event_id"], "down", *rate_ann)[0] == 0
    assert kdesk("feedback", abstained_id, "up")[0] == 0  # the OS user's own
    code, _, err = kdesk("feedback", abstained_id, "down", "--user", "ann")
    assert code == 2 and "only rate your own answers" in err

    code, out, _ = kdesk("usage", "--json")
    assert code == 0
    figures = json.loads(out)
    assert {k: figures[k] for k in ("questions", "abstained", "feedback_up", "feedback_down")} == {
        "questions": 2,
        "abstained": 1,
        "feedback_up": 1,
        "feedback_down": 1,
    }
    assert set(figures["latency_ms"]) == {"p50", "p95"}
    assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["p95"]
    assert set(figures["by_role"]) == {"manager", "employee"}
    manager = figures["by_role"]["manager"]
    assert (manager["questions"], manager["abstained"], manager["feedback_down"]) == (1, 0, 1)
    assert figures["models"] == {f"ollama · {MODEL}": 2}


def test_ask_records_who_asked_through_the_command_line(kdesk):
    _, out, _ = kdesk("ask", VACATION_QUESTION, "--json")
    desk = common.open_desk()
    event = desk.usage.event(json.loads(out)["event_id"])
    assert (event["user"], event["role"], event["channel"]) == (
        getpass.getuser(),
        "employee",
        "cli",
    )
    assert event["question"] == VACATION_QUESTION and event["cited_documents"] == [FILE_NAME]
    assert event["model"] == f"ollama · {MODEL}"
    assert event["tokens_in"] > 0 and event["tokens_estimated"] is False  # Ollama counts them


def test_usage_filters_by_date_and_role(kdesk):
    kdesk("ask", VACATION_QUESTION, "--role", "manager")
    kdesk("ask", VACATION_QUESTION)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    _, out, _ = kdesk("usage", "--json", "--since", tomorrow)
    later = json.loads(out)
    assert later["questions"] == 0 and later["since"] == tomorrow
    assert later["latency_ms"] == {"p50": None, "p95": None} and later["by_role"] == {}
    _, out, _ = kdesk("usage", "--json", "--role", "manager")
    assert json.loads(out)["questions"] == 1
    code, out, _ = kdesk("usage")
    assert code == 0 and "2 questions" in out and "manager: 1 questions" in out


def test_ask_as_a_user_says_how_they_rate_it(kdesk):
    assert kdesk("users", "add", "ann", "--role", "employee")[0] == 0
    _, out, _ = kdesk("ask", VACATION_QUESTION, "--user", "ann")
    [hint] = [line for line in out.splitlines() if line.startswith("Rate it: kdesk feedback ")]
    assert hint.endswith("up|down --user ann [--comment TEXT]")


def test_feedback_on_an_unknown_event_fails_with_a_message(kdesk):
    code, _, err = kdesk("feedback", "no-such-event", "up")
    assert code == 2
    assert "No usage event with id no-such-event" in err
