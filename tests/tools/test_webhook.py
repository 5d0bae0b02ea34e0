"""The webhook tool against a loopback HTTP server."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from knowledge.tools.base import ToolError, ToolTimeout
from knowledge.tools.config import WebhookConfig
from knowledge.tools.webhook import WebhookTool, fill_json, fill_url

SECRET = "s3cr3t-token-value"


class Service:
    """What the loopback service received, and how it answers."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 201
        self.reply: bytes = b'{"id": 42}'
        self.delay_s = 0.0


@pytest.fixture
def service() -> Iterator[tuple[Service, str]]:
    state = Service()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": json.loads(body) if body else None,
                }
            )
            time.sleep(state.delay_s)
            with contextlib.suppress(ConnectionError):  # a client that timed out has gone
                self.send_response(state.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(state.reply)))
                self.end_headers()
                self.wfile.write(state.reply)

        do_POST = do_GET = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def ticket_hook(base: str, **fields: Any) -> WebhookConfig:
    values: dict[str, Any] = {
        "name": "create_ticket",
        "description": "Create a ticket in the service desk",
        "parameters": {
            "type": "object",
            "properties": {"title": {"type": "string"}, "priority": {"type": "integer"}},
            "required": ["title"],
        },
        "url": f"{base}/queues/{{{{queue}}}}/tickets",
        "body": {"summary": "{{title}}", "priority": "{{priority}}", "note": "From {{title}}!"},
        "headers": {"Authorization": "Bearer ${DESK_TOKEN}"},
        "timeout_s": 2,
    }
    return WebhookConfig.model_validate(values | fields)


@pytest.fixture(autouse=True)
def token(monkeypatch) -> None:
    monkeypatch.setenv("DESK_TOKEN", SECRET)


def test_arguments_are_templated_and_the_secret_header_is_sent(service) -> None:
    state, base = service
    tool = WebhookTool(ticket_hook(base), ["127.0.0.1"])
    title = 'Printer "3" on fire\n", "admin": true, "x": "'

    result = tool.run(None, {"title": title, "priority": 2, "queue": "it/../admin"})  # type: ignore[arg-type]

    sent = state.requests[0]
    assert sent["method"] == "POST" and sent["path"] == "/queues/it%2F..%2Fadmin/tickets"
    assert sent["body"] == {"summary": title, "priority": 2, "note": f"From {title}!"}
    assert sent["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert result.text == 'HTTP 201 Created: {"id": 42}'
    assert result.data == {"status": 201, "body": {"id": 42}}
    assert tool.spec.acts and tool.spec.source == "webhook"


def test_a_host_outside_the_allow_list_is_refused_at_call(service) -> None:
    state, base = service
    hook = ticket_hook(base, url="http://{{host}}/tickets", body=None)
    tool = WebhookTool(hook, ["127.0.0.1"])

    for host in ("evil.example", "127.0.0.1@evil.example", "evil.example#"):
        with pytest.raises(ToolError, match="not an allowed host"):
            tool.run(None, {"host": host, "title": "x"})  # type: ignore[arg-type]
    assert state.requests == []


def test_a_slow_service_times_out(service) -> None:
    state, base = service
    state.delay_s = 3
    tool = WebhookTool(ticket_hook(base, timeout_s=0.5), ["127.0.0.1"])

    with pytest.raises(ToolTimeout, match="did not answer within 0.5 s"):
        tool.run(None, {"title": "t", "priority": 1, "queue": "it"})  # type: ignore[arg-type]


def test_non_2xx_is_a_clear_error_and_the_secret_is_never_in_logs_or_errors(
    service, caplog
) -> None:
    state, base = service
    state.status = 403
    state.reply = json.dumps({"error": f"bad token {SECRET}"}).encode()
    tool = WebhookTool(ticket_hook(base), ["127.0.0.1"])

    with caplog.at_level(logging.DEBUG), pytest.raises(ToolError) as failure:
        tool.run(None, {"title": "t", "priority": 1, "queue": "it"})  # type: ignore[arg-type]

    message = str(failure.value)
    assert message.startswith("Webhook create_ticket: the service answered HTTP 403 Forbidden")
    assert "bad token [secret]" in message
    assert SECRET not in message and SECRET not in caplog.text
    assert "create_ticket answered HTTP 403" in caplog.text
    assert state.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"


def test_an_unreachable_service_names_the_problem_without_the_secret(caplog) -> None:
    tool = WebhookTool(ticket_hook("http://127.0.0.1:9"), ["127.0.0.1"])

    with caplog.at_level(logging.DEBUG), pytest.raises(ToolError, match="could not be reached"):
        tool.run(None, {"title": "t", "priority": 1, "queue": "it"})  # type: ignore[arg-type]
    assert SECRET not in caplog.text


def test_a_missing_argument_is_refused_before_any_request(service) -> None:
    state, base = service
    tool = WebhookTool(ticket_hook(base), ["127.0.0.1"])

    with pytest.raises(ToolError, match="'queue' is missing"):
        tool.run(None, {"title": "t", "priority": 1})  # type: ignore[arg-type]
    with pytest.raises(ToolError, match="create_ticket needs 'title'"):  # the schema's required
        tool.run(None, {"priority": 1, "queue": "it"})  # type: ignore[arg-type]
    assert state.requests == []


def test_templating_keeps_values_as_json_values() -> None:
    body = fill_json({"a": ["{{n}}", "n={{n}}"], "b": 3}, {"n": [1, "two"]})
    assert body == {"a": [[1, "two"], 'n=[1, "two"]'], "b": 3}
    assert fill_url("http://h/x?q={{q}}", {"q": "a b&c=d"}) == "http://h/x?q=a%20b%26c%3Dd"
