"""A user's tool box: roles decide which tools, arguments are checked, tools that act wait for
the user's yes, slow and failing tools give a clear message, and every call is audited,
recorded (arguments kept like questions) and counted."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import REGISTRY

from knowledge.access.audit import AuditQuery
from knowledge.desk.root import Desk
from knowledge.tools.base import FunctionTool, ToolCall, ToolError, ToolResult, ToolSpec
from knowledge.tools.registry import StaticTools

released = threading.Event()


def _slow(context, arguments) -> ToolResult:
    released.wait(10)
    return ToolResult("late")


def _broken(context, arguments) -> ToolResult:
    raise RuntimeError("the tracker answered 503")


def _refusing(context, arguments) -> ToolResult:
    raise ToolError("That ticket is closed.")


def _send(context, arguments) -> ToolResult:
    return ToolResult(f"sent to {arguments['to']} as {context.requester.user}")


EXTRA = StaticTools(
    "test",
    [
        FunctionTool(ToolSpec("slow", "Waits.", source="test"), _slow),
        FunctionTool(ToolSpec("broken", "Fails.", source="test"), _broken),
        FunctionTool(ToolSpec("refusing", "Refuses.", source="test"), _refusing),
        FunctionTool(
            ToolSpec(
                "send_mail",
                "Sends a mail.",
                {"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]},
                acts=True,
                source="test",
            ),
            _send,
        ),
    ],
)


@pytest.fixture
def desk(office: Desk) -> Desk:
    office.settings = office.settings.model_copy(update={"tool_timeout_s": 0.3})
    office.tool_registry.sources.append(EXTRA)
    office.tool_registry.refresh()
    return office


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_roles_decide_which_tools_a_user_has(desk: Desk):
    assert {s.name for s in desk.for_user("hanna").tools().available()} == {
        "summarise_document",
        "list_documents",
        "clause_records",
    }
    assert desk.for_user("leo").tools().available() == []
    root = {s.name for s in desk.for_user("root").tools().available()}
    assert {"send_mail", "slow", "list_documents"} <= root


def test_a_tool_the_role_does_not_give_is_denied_and_audited(desk: Desk):
    outcome = desk.for_user("leo").tools().call(ToolCall("list_documents"))
    assert outcome.outcome == "denied" and outcome.result is None
    assert outcome.message == "No tool 'list_documents' is available to you."
    [event] = desk.audit.events(AuditQuery(actor="leo", actions=("tool_call",)))
    assert event.outcome == "denied" and event.target == "list_documents"


def test_a_tool_that_acts_runs_only_once_confirmed(desk: Desk):
    box = desk.for_user("root").tools()
    asked = box.call(ToolCall("send_mail", {"to": "ops@example.com"}))
    assert asked.outcome == "needs_confirmation" and asked.result is None
    assert "send_mail acts outside the desk" in asked.message and "ops@example.com" in asked.message
    done = box.call(ToolCall("send_mail", {"to": "ops@example.com"}), confirmed=True)
    assert done.outcome == "ok" and done.result.text == "sent to ops@example.com as root"


def test_arguments_are_checked_against_the_schema_before_anything_runs(desk: Desk):
    box = desk.for_user("root").tools()
    missing = box.call(ToolCall("send_mail", {}), confirmed=True)
    assert missing.outcome == "failed"
    assert missing.message == "send_mail: 'to' is a required property"
    wrong = box.call(ToolCall("list_documents", {"limit": "many"}))
    assert wrong.outcome == "failed" and "argument limit" in wrong.message


def test_a_slow_tool_times_out_with_a_clear_message(desk: Desk):
    released.clear()
    started = time.perf_counter()
    outcome = desk.for_user("root").tools().call(ToolCall("slow"))
    released.set()
    assert outcome.outcome == "timeout" and time.perf_counter() - started < 5
    assert outcome.message == "slow did not finish within 0.3 s; going on without it."


def test_failures_become_messages(desk: Desk):
    box = desk.for_user("root").tools()
    broken = box.call(ToolCall("broken"))
    assert broken.outcome == "failed"
    assert broken.message == "broken failed: the tracker answered 503"
    refused = box.call(ToolCall("refusing"))
    assert refused.outcome == "failed" and refused.message == "That ticket is closed."


def test_every_call_is_audited_recorded_and_counted(desk: Desk):
    before = sample("kdesk_tool_calls_total", tool="list_documents", outcome="ok")
    timed = sample("kdesk_tool_call_seconds_count", tool="list_documents")
    desk.for_user("hanna").tools().call(ToolCall("list_documents", {"title": "leave"}))
    desk.for_user("root").tools().call(ToolCall("send_mail", {"to": "x@example.com"}))
    assert sample("kdesk_tool_calls_total", tool="list_documents", outcome="ok") == before + 1
    assert sample("kdesk_tool_call_seconds_count", tool="list_documents") == timed + 1
    events = desk.audit.events(AuditQuery(actions=("tool_call",)))
    assert [(e.actor, e.target, e.detail["tool_outcome"]) for e in events] == [
        ("root", "send_mail", "needs_confirmation"),
        ("hanna", "list_documents", "ok"),
    ]
    assert "x@example.com" not in str(events[0].detail)  # no arguments in the audit log
    calls = desk.tool_calls.recent()
    assert [(c.user, c.tool, c.outcome, c.role) for c in calls] == [
        ("root", "send_mail", "needs_confirmation", "admin"),
        ("hanna", "list_documents", "ok", "hr"),
    ]
    assert calls[1].arguments == '{"title": "leave"}' and calls[1].duration_ms > 0
    assert sample("kdesk_tool_calls_total", tool="unknown", outcome="denied") >= 0


def test_arguments_are_redacted_like_questions(desk: Desk):
    desk.tool_calls.storage = "redacted"
    desk.for_user("root").tools().call(ToolCall("send_mail", {"to": "anna@example.com"}))
    assert desk.tool_calls.recent()[0].arguments == '{"to": "[email]"}'
    desk.tool_calls.storage = "off"
    desk.for_user("root").tools().call(ToolCall("send_mail", {"to": "anna@example.com"}))
    assert desk.tool_calls.recent()[0].arguments is None


def test_shipped_roles_get_the_read_tools_and_stored_roles_keep_their_tools(desk: Desk):
    from knowledge.access.roles import READ_TOOLS, Role, role_config, role_from_config, templates

    shipped = {role.name: role.tools for role in templates()}
    assert shipped["employee"] == READ_TOOLS and shipped["admin"] == ("*",)
    assert desk.roles.role("employee").tools == READ_TOOLS
    saved = desk.roles.save(Role("ops", tools=(" list_* ", "word_count", "word_count")), "test")
    assert saved.tools == ("list_*", "word_count")
    assert desk.roles.role("ops").tools == ("list_*", "word_count")
    older = {k: v for k, v in role_config(saved).items() if k != "tools"}  # stored before tools
    assert role_from_config(older).tools == ()
