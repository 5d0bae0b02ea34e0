"""The chat API's bodies read as clients send them, and what a stream still owes at its end."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from knowledge.assistant.personas import Turn
from knowledge.core.types import Answer
from knowledge.service.chat_completions import ChatCompletionRequest, ChatMessage, conversation
from knowledge.service.errors import ApiError
from knowledge.service.openai_api import ending


def messages(*said: tuple[str, object]) -> list[ChatMessage]:
    return [ChatMessage.model_validate({"role": role, "content": text}) for role, text in said]


def test_the_last_user_message_is_the_question_and_earlier_turns_the_history():
    question, history = conversation(
        messages(
            ("system", "Be a pirate."),
            ("user", "First?"),
            ("assistant", "One [1]."),
            ("user", "Asked, never answered"),
            ("user", "Second?"),
            ("assistant", "Two [2]."),
            ("tool", "ignored"),
            ("user", [{"type": "text", "text": "Third"}, {"type": "image_url"}, {"text": "?"}]),
        )
    )
    assert question == "Third\n?"
    assert history == [Turn("First?", "One [1]."), Turn("Second?", "Two [2].")]


@pytest.mark.parametrize(
    "said",
    [
        (("assistant", "Hello."),),
        (("user", "Question?"), ("assistant", "Answer.")),
        (("user", "   "),),
        (("user", [{"type": "image_url", "image_url": {"url": "x"}}]),),
        (("system", "Only a system prompt."),),
    ],
)
def test_without_a_users_question_there_is_nothing_to_answer(said):
    with pytest.raises(ApiError, match="last message must be a user message") as caught:
        conversation(messages(*said))
    assert caught.value.status == 400


def test_what_clients_send_is_accepted_and_only_one_choice_offered():
    body = {
        "model": "kdesk:engineer",
        "messages": [{"role": "user", "content": "Q?", "name": "ada", "refusal": None}],
        "stream": True,
        "stream_options": {"include_usage": True, "include_obfuscation": False},
        "temperature": 1,
        "top_p": 1,
        "presence_penalty": 0,
        "user": "LibreChat_User_ID",
        "n": None,
        "tools": [],
    }
    request = ChatCompletionRequest.model_validate(body)
    assert request.include_usage and request.model == "kdesk:engineer"
    with pytest.raises(ValidationError, match="only n=1"):
        ChatCompletionRequest.model_validate({**body, "n": 2})
    with pytest.raises(ValidationError):
        ChatCompletionRequest.model_validate({**body, "messages": []})
    for wrong in ({"stream": "yes"}, {"max_tokens": "100"}, {"temperature": "0.2"}):
        with pytest.raises(ValidationError):  # a client's bug told, not guessed at
            ChatCompletionRequest.model_validate({**body, **wrong})


def answer(text: str, error: str | None = None) -> Answer:
    return Answer("Q?", text, abstained=False, model="m", error=error)


def test_a_stream_owes_nothing_when_the_verified_answer_is_what_was_sent():
    assert ending("Every 400 hours [1]. ", answer("Every 400 hours [1].")) == ""


def test_a_stream_owes_the_rest_of_the_verified_answer():
    assert ending("Every 400", answer("Every 400 hours [1].")) == " hours [1]."


def test_a_stream_ends_with_the_verified_answer_when_it_differs():
    owed = ending("Every 400 hours [1]. Invented [2].", answer("Every 400 hours [1]."))
    assert owed.endswith("\n\nEvery 400 hours [1].") and "Checked against the sources" in owed
    broke = ending("Every 4", answer("The turbine is inspected [1].", error="the model failed"))
    assert "The model stopped (the model failed)" in broke
    assert broke.endswith("The turbine is inspected [1].")
