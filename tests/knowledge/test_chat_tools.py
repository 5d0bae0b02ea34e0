"""What the Chat page calls with what was typed: slash commands with any backend, the model's own
tool calls with a served one, and the grounded answer path for everything else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.assistant.chat import OllamaChatModel
from knowledge.assistant.embedded import EmbeddedChatModel
from knowledge.assistant.personas import Turn
from knowledge.core.errors import SettingsError
from knowledge.core.settings import Settings
from knowledge.tools.chatting import ChatTools, NoTools, toolbox_for, use_toolboxes
from knowledge.tools.native import tool_caller
from tests.conftest import ScriptedChatModel
from tests.fake_ollama import FakeOllama
from tests.toolbox_double import DoubleToolBox


@pytest.fixture
def box() -> Iterator[DoubleToolBox]:
    double = DoubleToolBox.standard()
    previous = use_toolboxes(lambda context: double)
    yield double
    use_toolboxes(previous)


def embedded_tools(settings: Settings) -> ChatTools:
    return ChatTools.for_user(object(), ScriptedChatModel("hi"), settings)  # type: ignore[arg-type]


def test_without_a_wired_tool_box_nobody_has_tools(settings: Settings):
    assert isinstance(toolbox_for(object()), NoTools)  # type: ignore[arg-type]
    tools = embedded_tools(settings)
    assert tools.handle("What is the leave policy?") is None
    assert tools.handle("/tools").text == "No tools are available to you."  # type: ignore[union-attr]


def test_slash_commands_work_with_the_embedded_model(box: DoubleToolBox, settings: Settings):
    tools = embedded_tools(settings)
    assert not tools.native
    assert tools.handle("What is the leave policy?") is None  # answered the grounded way
    listed = tools.handle("/tools")
    assert listed is not None and "/summarise <document>" in listed.text
    turn = tools.handle("/summarise leave-policy.pdf")
    assert turn is not None and turn.text.startswith("Summary:")
    assert box.runs == [("summarise", {"document": "leave-policy.pdf"}, False)]
    wrong = tools.handle("/count n=many what=x")
    assert wrong is not None and wrong.error and "Usage: /count" in wrong.error
    assert not wrong.steps and len(box.runs) == 1


def test_a_slash_command_that_acts_waits_for_confirmation(box: DoubleToolBox, settings: Settings):
    tools = embedded_tools(settings)
    turn = tools.handle("/send_email bob@example.com")
    assert turn is not None and turn.pending is not None and box.runs == []
    tools.cancel(turn)
    assert box.runs == [] and turn.text.startswith("The user cancelled")


def test_a_served_model_decides_and_questions_without_tools_go_the_grounded_way(
    box: DoubleToolBox, settings: Settings
):
    with FakeOllama(reply="From the tool.") as ollama:
        model = OllamaChatModel(ollama.url, "m", timeout_s=5, connect_timeout_s=1)
        assert not ChatTools.for_user(object(), model, settings).native  # type: ignore[arg-type]
        planning = settings.model_copy(update={"tool_planning": True})
        tools = ChatTools.for_user(object(), model, planning)  # type: ignore[arg-type]
        assert tools.native and tools.runner.max_rounds == settings.tool_rounds
        assert tools.handle("How many days of leave do I get?") is None
        earlier = [Turn("What is the leave policy?", "25 days [1].")]
        turn = tools.handle("summarise leave-policy.pdf", earlier)
        assert turn is not None and turn.text == "From the tool." and len(box.runs) == 1
        sent = ollama.chats[-2]["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
        assert sent[1]["content"] == "What is the leave policy?"


def test_the_embedded_model_does_not_call_tools_natively(settings: Settings):
    embedded = EmbeddedChatModel(Path("x.gguf"), context=512, threads=1, timeout_s=1)
    assert tool_caller(embedded) is None


def test_a_model_that_cannot_be_built_leaves_slash_commands_working(
    box: DoubleToolBox, settings: Settings
):
    def missing() -> OllamaChatModel:
        raise SettingsError("The GGUF model x.gguf does not exist (KDESK_GGUF_PATH).")

    tools = ChatTools.for_user(object(), missing, settings)  # type: ignore[arg-type]
    assert not tools.native and tools.handle("What is the leave policy?") is None
    assert tools.handle("/summarise leave-policy.pdf").text.startswith("Summary:")  # type: ignore[union-attr]
