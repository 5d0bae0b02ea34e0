"""Prometheus metrics scraped over HTTP on 127.0.0.1, and the JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import socket
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from knowledge.core.jsonlog import LOGGER, JsonFormatter, configure_json_logging
from knowledge.core.metrics import MetricsServer, start_metrics_server, stop_metrics_server
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.knowledge.test_usage import HANDBOOK, OFF_TOPIC, VACATION
from tests.pages.support import free_port
from tests.pdfs import make_pdf

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    port = free_port()
    started = start_metrics_server(port)
    assert started is not None
    yield started
    stop_metrics_server(port)


def scrape(server: MetricsServer) -> Samples:
    with urllib.request.urlopen(server.url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode("utf-8")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def read(desk: Desk, question: str) -> str | None:
    stream = desk.ask(question)
    list(stream)
    return stream.answer.event_id


def test_exchanges_ingestion_and_feedback_are_counted_and_scraped(
    server: MetricsServer, desk: Desk
):
    assert server.host == "127.0.0.1"
    before = scrape(server)
    desk.ingest(
        [Upload("handbook.pdf", make_pdf(HANDBOOK)), Upload("broken.pdf", b"not a pdf")], "HR"
    )
    answered = read(desk, VACATION)
    read(desk, OFF_TOPIC)
    assert answered
    desk.feedback(answered, "down", "outdated")
    after = scrape(server)

    who = {"channel": "api", "role": "employee"}
    assert delta(before, after, "kdesk_questions_total", outcome="answered", **who) == 1
    assert delta(before, after, "kdesk_questions_total", outcome="abstained", **who) == 1
    assert delta(before, after, "kdesk_abstentions_total") == 1
    for stage, count in (("retrieval", 2), ("first_token", 1), ("total", 2)):
        assert delta(before, after, "kdesk_answer_stage_seconds_count", stage=stage) == count
    assert delta(before, after, "kdesk_answer_stage_seconds_sum", stage="total") > 0
    assert delta(before, after, "kdesk_model_tokens_total", direction="in") > 0
    assert delta(before, after, "kdesk_feedback_total", rating="down") == 1
    assert delta(before, after, "kdesk_ingested_files_total", status="added") == 1
    assert delta(before, after, "kdesk_ingested_files_total", status="failed") == 1
    assert delta(before, after, "kdesk_ingested_pages_total") == len(HANDBOOK)
    assert delta(before, after, "kdesk_ingested_chunks_total") >= 1
    assert delta(before, after, "kdesk_ingest_file_seconds_count") == 2


def test_model_errors_are_counted(server: MetricsServer, settings, embedder):
    from tests.conftest import ScriptedChatModel

    failing = ScriptedChatModel("Vacation is 27 days of paid vacation [1].", fail_after=1)
    desk = Desk(settings, embedder=embedder, model=failing)
    desk.ingest([Upload("handbook.pdf", make_pdf(HANDBOOK))], "HR")
    before = scrape(server)
    read(desk, VACATION)
    after = scrape(server)
    assert delta(before, after, "kdesk_model_errors_total", model="scripted · test") == 1
    who = {"channel": "api", "role": "employee"}
    assert delta(before, after, "kdesk_questions_total", outcome="error", **who) == 1


def test_the_server_starts_once_per_address_and_port_zero_is_off(server: MetricsServer):
    assert start_metrics_server(server.port) is server
    assert start_metrics_server(0) is None


def test_a_taken_port_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(logging.getLogger(LOGGER), "propagate", True)  # let caplog see it
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="kdesk.metrics"):
            assert start_metrics_server(port) is None
    assert "metrics endpoint not started" in caplog.text


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_exchanges_and_ingestion_are_logged_as_json_lines(desk: Desk, json_lines: io.StringIO):
    desk.ingest([Upload("handbook.pdf", make_pdf(HANDBOOK))], "HR")
    event_id = read(desk, VACATION)
    entries = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    ingest = next(e for e in entries if e["event"] == "ingest")
    assert (ingest["logger"], ingest["file_name"], ingest["status"]) == (
        "kdesk.ingest",
        "handbook.pdf",
        "added",
    )
    exchange = next(e for e in entries if e["event"] == "exchange")
    assert exchange["event_id"] == event_id and exchange["level"] == "info"
    assert exchange["user"] == "anonymous" and exchange["abstained"] is False
    assert {"retrieval_ms", "first_token_ms", "total_ms", "tokens_in", "model"} <= set(exchange)
    assert VACATION not in json_lines.getvalue(), "questions may be personal: never logged"


def test_configuring_json_logging_twice_adds_one_handler(monkeypatch: pytest.MonkeyPatch):
    logger = logging.getLogger(LOGGER)
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setattr(logger, "level", logger.level)
    before = list(logger.handlers)
    try:
        configure_json_logging("INFO", io.StringIO())
        configure_json_logging("WARNING", io.StringIO())
        added = [h for h in logger.handlers if h not in before]
        assert len([h for h in logger.handlers if isinstance(h.formatter, JsonFormatter)]) == 1
        assert logger.level == logging.WARNING
    finally:
        for handler in added:
            logger.removeHandler(handler)
