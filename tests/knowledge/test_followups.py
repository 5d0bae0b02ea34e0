"""Follow-ups rewritten into standalone queries by a capable model, through the Ollama protocol
(the fake server), with the word heuristic as the fallback."""

from __future__ import annotations

from knowledge.assistant.answering import Assistant, standalone_query
from knowledge.assistant.chat import OllamaChatModel
from knowledge.assistant.followups import REWRITE_PROMPT, cleaned, model_rewrite
from knowledge.assistant.personas import Turn
from tests.fake_ollama import FakeOllama

HISTORY = [Turn("How many vacation days do employees get?", "Employees get 25 days [1].")]
FOLLOW_UP = "Who approves them?"
REWRITTEN = "Who approves employees' vacation days?"


def ollama(server: FakeOllama) -> OllamaChatModel:
    return OllamaChatModel(server.url, "m", timeout_s=5, connect_timeout_s=2)


class NoRetriever:  # the assistant's query is all these tests look at
    embedder = None


def test_the_model_rewrites_the_follow_up_from_the_conversation():
    with FakeOllama(reply=f"Standalone question: {REWRITTEN}\n") as server:
        assert model_rewrite(ollama(server), FOLLOW_UP, HISTORY) == REWRITTEN
        [chat] = server.chats
    system, user = chat["messages"]
    assert system == {"role": "system", "content": REWRITE_PROMPT}
    assert HISTORY[0].question in user["content"] and FOLLOW_UP in user["content"]
    assert "[1]" not in user["content"]
    assert chat["options"]["temperature"] == 0.0


def test_a_failed_empty_or_answer_like_reply_falls_back_to_the_heuristic():
    heuristic = standalone_query(FOLLOW_UP, HISTORY)
    for reply, mode in [
        ("", "ok"),
        ("The manager approves them [1]. They do so in writing.", "ok"),
        ("x" * 400, "ok"),
        (REWRITTEN, "error"),
    ]:
        with FakeOllama(reply=reply, mode=mode) as server:
            assistant = Assistant(NoRetriever(), ollama(server))  # type: ignore[arg-type]
            assert assistant.searchable(FOLLOW_UP, HISTORY) == heuristic, (reply, mode)


def test_the_assistant_searches_the_rewrite_only_for_a_follow_up_and_when_enabled():
    with FakeOllama(reply=REWRITTEN) as server:
        assistant = Assistant(NoRetriever(), ollama(server))  # type: ignore[arg-type]
        assert assistant.searchable(FOLLOW_UP, HISTORY) == REWRITTEN
        assert assistant.searchable(FOLLOW_UP, []) == FOLLOW_UP  # nothing to rewrite from
        assert len(server.chats) == 1
        off = Assistant(NoRetriever(), ollama(server), rewrite_followups=False)  # type: ignore[arg-type]
        assert off.searchable(FOLLOW_UP, HISTORY) == standalone_query(FOLLOW_UP, HISTORY)
        assert len(server.chats) == 1


def test_cleaning_keeps_one_question():
    assert cleaned('Query: "Who approves vacation days?"', "Who?") == "Who approves vacation days?"
    assert cleaned("\n\n", "Who?") is None
