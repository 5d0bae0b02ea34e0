"""Tools on the Chat page through AppTest (the real stack, a fake Ollama that calls tools when
the question names one, and the test-double tool box): the confirmation flow of a tool that
acts, and slash commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from knowledge.tools.chatting import use_toolboxes
from tests.fake_ollama import FakeOllama
from tests.pages.conftest import Configure, open_page
from tests.pages.support import MODEL
from tests.toolbox_double import DoubleToolBox


def answer_from_tools(messages: list[dict[str, Any]]) -> str:
    said = [str(m["content"]) for m in messages if m.get("role") == "tool"]
    return "Done: " + " | ".join(said) if said else "No tool needed."


@pytest.fixture
def box() -> Iterator[DoubleToolBox]:
    double = DoubleToolBox.standard()
    previous = use_toolboxes(lambda context: double)
    yield double
    use_toolboxes(previous)


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama(reply=answer_from_tools, models=[MODEL]) as server:
        yield server


@pytest.fixture(autouse=True)
def planning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDESK_TOOL_PLANNING", "true")  # the served model decides on tools


def chat(configure: Configure, tmp_path: Path, host: str) -> AppTest:
    configure(tmp_path / "data", host)
    at = open_page("pages/chat.py").run()
    assert not at.exception
    return at


def ask(at: AppTest, text: str) -> AppTest:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception
    return at


def asks_to_run(at: AppTest) -> list[str]:
    return [i.value for i in at.info if "wants to run" in i.value]


def test_confirm_runs_the_call_once_and_a_rerun_does_not_run_it_again(
    tmp_path: Path, ollama: FakeOllama, configure: Configure, box: DoubleToolBox
):
    at = ask(chat(configure, tmp_path, ollama.url), "send_email bob@example.com please")
    assert asks_to_run(at) == [
        'The assistant wants to run **send_email** with `{"to": "bob@example.com"}`'
    ]
    assert box.runs == []

    at.button(key="a0-confirm").click().run()
    assert not at.exception
    assert box.runs == [("send_email", {"to": "bob@example.com"}, True)]
    assert not asks_to_run(at) and not [b for b in at.button if b.key == "a0-confirm"]
    reply = at.chat_message[-1]
    assert reply.markdown[-1].value == "Done: Sent to bob@example.com."
    assert reply.caption[-1].value == f"Answered by `ollama · {MODEL}` with tools"
    [expander] = reply.expander
    assert expander.label == '🔧 send_email {"to": "bob@example.com"}'
    assert "Sent to bob@example.com." in [m.value for m in expander.markdown]

    at.run()
    at.run()
    assert not at.exception and len(box.runs) == 1


def test_cancel_does_not_run_the_call_and_says_so(
    tmp_path: Path, ollama: FakeOllama, configure: Configure, box: DoubleToolBox
):
    at = ask(chat(configure, tmp_path, ollama.url), "send_email bob@example.com please")
    at.button(key="a0-cancel").click().run()
    assert not at.exception
    assert box.runs == [] and not asks_to_run(at)
    reply = at.chat_message[-1]
    assert reply.expander[0].label.startswith("🚫 send_email")
    assert "cancelled the call of send_email" in reply.markdown[-1].value
    at.run()
    assert box.runs == []


def test_a_slash_command_shows_the_call_and_its_cited_result_without_the_model(
    tmp_path: Path, ollama: FakeOllama, configure: Configure, box: DoubleToolBox
):
    at = ask(chat(configure, tmp_path, ollama.url), "/summarise leave-policy.pdf")
    assert box.runs == [("summarise", {"document": "leave-policy.pdf"}, False)]
    assert ollama.chats == []  # typed, not decided by a model
    reply = at.chat_message[-1]
    [expander] = reply.expander
    assert expander.label == '🔧 summarise {"document": "leave-policy.pdf"}'
    assert [b.label for b in expander.button] == ["[1] Leave policy — page 2"]

    ask(at, "/tools")
    assert "/send_email <to>" in at.chat_message[-1].markdown[0].value
    ask(at, "/count n=lots what=x")
    assert "n must be a whole number" in at.chat_message[-1].error[0].value
    assert len(box.runs) == 1
