"""Long conversations: the prompt stays within the model's window, the newest turns verbatim and
the older ones replaced by a summary."""

from __future__ import annotations

from knowledge.assistant.answering import build_messages
from knowledge.assistant.chat import OllamaChatModel, OpenAIChatModel, build_chat_model
from knowledge.assistant.context import (
    VERBATIM_TURNS,
    context_window,
    estimate_tokens,
    fit_history,
)
from knowledge.assistant.personas import Persona, Turn
from knowledge.core.settings import Settings


def conversation(turns: int) -> list[Turn]:
    return [
        Turn(
            f"Question {i}: what does section {i} of the travel policy say about hotels?",
            f"Section {i} says hotels up to {100 + i} euros a night are reimbursed [1]. "
            + "Receipts are needed within thirty days of the trip, signed by the manager. " * 6,
        )
        for i in range(turns)
    ]


def prompt_tokens(messages) -> int:
    return sum(estimate_tokens(m["content"]) for m in messages)


PASSAGES = ["Hotels up to 130 euros a night are reimbursed. " * 8] * 4


def test_a_30_turn_prompt_stays_under_the_window_minus_the_answer_budget():
    persona = Persona("employee", max_tokens=400)
    for window in (1024, 2048, 4096, 8192):
        messages = build_messages(
            "And for Paris?", PASSAGES, persona, conversation(30), window=window
        )
        assert prompt_tokens(messages) <= window - 400, window
        assert messages[-1]["content"].endswith("Question: And for Paris?\nAnswer:")


def test_the_summary_replaces_old_turns_and_the_newest_stay_verbatim():
    history = conversation(30)
    messages = build_messages("And for Paris?", PASSAGES, Persona(), history, window=4096)
    users = [m["content"] for m in messages[1:-1] if m["role"] == "user"]
    assert users == [t.question for t in history[-len(users) :]]
    assert 1 <= len(users) <= VERBATIM_TURNS
    system = messages[0]["content"]
    assert "Earlier in this conversation:" in system
    assert "Question 0:" not in "".join(users) and "Question 25:" in system
    assert "[1]" not in system, "citation marks of old answers are not carried over"


def test_a_short_conversation_is_kept_whole_without_a_summary():
    history = conversation(2)
    fitted = fit_history(history, 3000)
    assert fitted.summary == "" and [t.question for t in fitted.recent] == [
        t.question for t in history
    ]
    tight = fit_history(conversation(30), 300)
    assert tight.tokens <= 300 and tight.summarised >= 28


def test_each_backend_says_its_window():
    s = Settings(ollama_context=8192, openai_context=32768, embedded_context=2048)
    ollama = build_chat_model(s, backend="ollama")
    assert isinstance(ollama, OllamaChatModel) and context_window(ollama) == 8192
    openai = build_chat_model(s, backend="openai")
    assert isinstance(openai, OpenAIChatModel) and context_window(openai) == 32768
    assert context_window(object()) == 4096
