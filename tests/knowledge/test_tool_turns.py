"""Tool-call round trips against the Ollama-protocol and OpenAI-protocol test servers: the model
asks for a tool, the tool box (a test double) runs it, the result goes back as a tool message,
and the model answers; confirmation, cancelling, failures and the round limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from knowledge.assistant.chat import OllamaChatModel, OpenAIChatModel
from knowledge.tools.base import ToolCall
from knowledge.tools.native import OllamaToolCaller, OpenAIToolCaller, tool_caller
from knowledge.tools.turns import TurnRunner
from knowledge.usage.recording import MeteredModel
from tests.conftest import ScriptedChatModel
from tests.fake_ollama import FakeOllama, FakeServer
from tests.fake_openai import FakeOpenAI
from tests.toolbox_double import DoubleToolBox

SUMMARY = "Summary: 25 days of paid leave a year."


def answer_from_tools(messages: list[dict[str, Any]]) -> str:
    """The fake model's answer: what the tool messages said, or that it used none."""
    said = [str(m["content"]) for m in messages if m.get("role") == "tool"]
    return "From the tools: " + " | ".join(said) if said else "No tool needed."


@pytest.fixture(params=["ollama", "openai"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[FakeServer, Any]]:
    """A test server of either protocol, and the tool-calling model over it."""
    if request.param == "ollama":
        with FakeOllama(reply=answer_from_tools) as ollama:
            model = OllamaChatModel(ollama.url, "llama3.2:3b", timeout_s=5, connect_timeout_s=1)
            yield ollama, tool_caller(model)
    else:
        with FakeOpenAI(reply=answer_from_tools) as server:
            chat = OpenAIChatModel(
                server.url + "/v1", "qwen", api_key="", timeout_s=5, connect_timeout_s=1
            )
            yield server, tool_caller(chat)


def chats(server: FakeServer) -> list[dict[str, Any]]:
    return server.chats  # type: ignore[attr-defined,no-any-return]


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


def test_round_trip_the_model_calls_a_tool_and_answers_from_its_result(served):
    server, model = served
    box = DoubleToolBox.standard()
    turn = TurnRunner(box, model).start("Please summarise leave-policy.pdf for me")

    assert box.runs == [("summarise", {"document": "leave-policy.pdf"}, False)]
    assert turn.done and turn.called_tools and turn.rounds == 1
    assert turn.text == f"From the tools: {SUMMARY}"
    assert [s.outcome for s in turn.steps] == ["ok"]
    assert [c.file_name for c in turn.citations] == ["leave-policy.pdf"]
    first, second = chats(server)
    offered = {t["function"]["name"]: t for t in first["tools"]}
    assert offered["summarise"]["type"] == "function"
    assert offered["summarise"]["function"]["parameters"]["required"] == ["document"]
    [result] = tool_messages(second)
    assert result["content"] == SUMMARY
    asked = second["messages"][-2]
    assert asked["role"] == "assistant"
    [echoed] = asked["tool_calls"]
    arguments = echoed["function"]["arguments"]
    if isinstance(model, OpenAIToolCaller):  # the assembled call, echoed with its id
        assert echoed["id"] == result["tool_call_id"] == "call_0"
        assert json.loads(arguments) == {"document": "leave-policy.pdf"}
    else:
        assert result["tool_name"] == "summarise"
        assert arguments == {"document": "leave-policy.pdf"}


def test_a_question_that_needs_no_tool_calls_none(served):
    server, model = served
    box = DoubleToolBox.standard()
    turn = TurnRunner(box, model).start("How many days of leave do I get?")
    assert not turn.called_tools and turn.text == "No tool needed." and box.runs == []
    assert len(chats(server)) == 1


def test_a_tool_that_acts_waits_for_the_user_then_runs_once_when_confirmed(served):
    server, model = served
    box = DoubleToolBox.standard()
    runner = TurnRunner(box, model)
    turn = runner.start("send_email bob@example.com about the leave policy")

    assert turn.pending is not None and not turn.done
    assert turn.pending.name == "send_email"
    assert dict(turn.pending.arguments) == {"to": "bob@example.com"}
    assert box.runs == [] and turn.text == ""
    asked = len(chats(server))

    runner.confirm(turn)
    assert box.runs == [("send_email", {"to": "bob@example.com"}, True)]
    assert turn.done and turn.text == "From the tools: Sent to bob@example.com."
    assert len(chats(server)) == asked + 1
    with pytest.raises(ValueError, match="no call waiting"):
        runner.confirm(turn)  # a second confirm (a rerun) cannot run it again
    assert len(box.runs) == 1


def test_a_cancelled_call_does_not_run_and_the_model_is_told(served):
    server, model = served
    box = DoubleToolBox.standard()
    runner = TurnRunner(box, model)
    turn = runner.cancel(runner.start("send_email bob@example.com"))

    assert box.runs == []
    assert [s.outcome for s in turn.steps] == ["cancelled"]
    [told] = tool_messages(chats(server)[-1])
    assert told["content"] == "The user cancelled the call of send_email; it did not run."
    assert turn.text.startswith("From the tools: The user cancelled")


@pytest.mark.parametrize(
    ("question", "outcome", "told"),
    [
        ("look in the archive please", "failed", "the archive service answered 503"),
        ("this is slow work", "timeout", "slow took longer than 1 s."),
        ("summarise missing.pdf", "failed", "No document named 'missing.pdf' among yours."),
    ],
)
def test_failures_are_told_and_the_answer_goes_on(served, question, outcome, told):
    server, model = served
    box = DoubleToolBox.standard()
    turn = TurnRunner(box, model).start(question)
    [step] = turn.steps
    assert step.outcome == outcome and step.message == told
    assert turn.done and told in turn.text and "did not run" in turn.text
    assert turn.error is None


def test_the_round_limit_ends_with_an_answer_without_tools(served):
    server, model = served
    always = [{"name": "summarise", "arguments": {"document": "leave-policy.pdf"}}]
    server.tool_calls = lambda messages, tools: always  # type: ignore[attr-defined]
    box = DoubleToolBox.standard()
    turn = TurnRunner(box, model, max_rounds=2).start("loop forever")

    assert turn.rounds == 2 and len(box.runs) == 2
    *with_tools, last = chats(server)
    assert all(body.get("tools") for body in with_tools) and not last.get("tools")
    assert turn.text == f"From the tools: {SUMMARY} | {SUMMARY}"


def test_calls_after_a_pending_one_wait_for_it_then_run(served):
    server, model = served
    both = [
        {"name": "send_email", "arguments": {"to": "hr@example.com"}},
        {"name": "summarise", "arguments": {"document": "leave-policy.pdf"}},
    ]
    server.tool_calls = (  # type: ignore[attr-defined]
        lambda messages, tools: both if messages[-1]["role"] == "user" else []
    )
    box = DoubleToolBox.standard()
    runner = TurnRunner(box, model)
    turn = runner.start("mail HR and summarise")
    assert turn.pending is not None and [c.name for c in turn.queued] == ["summarise"]
    assert box.runs == []
    runner.confirm(turn)
    assert [r[0] for r in box.runs] == ["send_email", "summarise"]
    assert turn.text == f"From the tools: Sent to hr@example.com. | {SUMMARY}"


def test_a_model_that_fails_gives_a_clear_error(served):
    server, model = served
    server.mode = "error"
    turn = TurnRunner(DoubleToolBox.standard(), model).start("summarise leave-policy.pdf")
    assert turn.error and "failed to answer (HTTP 500)" in turn.error
    assert turn.text == ""


def test_slash_calls_run_without_a_model_and_confirm_the_same_way():
    box = DoubleToolBox.standard()
    runner = TurnRunner(box)
    turn = runner.run_call(
        "/summarise leave-policy.pdf", ToolCall("summarise", {"document": "leave-policy.pdf"})
    )
    assert turn.text == SUMMARY and turn.model == "" and turn.messages == []
    waiting = runner.run_call("/send_email a@b.c", ToolCall("send_email", {"to": "a@b.c"}))
    assert waiting.pending is not None and box.runs[-1][0] == "summarise"
    runner.confirm(waiting)
    assert waiting.text == "Sent to a@b.c." and box.runs[-1] == (
        "send_email",
        {"to": "a@b.c"},
        True,
    )


def test_only_served_backends_call_tools_natively():
    ollama = OllamaChatModel("http://127.0.0.1:9", "m", timeout_s=1, connect_timeout_s=1)
    assert isinstance(tool_caller(ollama), OllamaToolCaller)
    assert isinstance(tool_caller(MeteredModel(ollama)), OllamaToolCaller)
    assert tool_caller(ScriptedChatModel("hi")) is None  # like the embedded model
