"""The OpenAI-compatible API: ``POST /v1/chat/completions`` (streamed and not) and
``GET /v1/models``; ``model`` picks the persona (``kdesk``, ``kdesk:<role>``).

Answers are the desk's grounded answers, asked as the key's user (``UserDesk``: their
collections, persona, rate limit, audit, usage events on the channel "api"). A stream sends the
model's text as it comes; the desk then checks it against the sources, and when the checked
text differs (a claim no source supports, a model that broke off) the stream ends with it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from knowledge.core.errors import NotFoundError
from knowledge.core.types import Answer, AnswerStream
from knowledge.desk.facade import UserDesk
from knowledge.service.auth import Caller, Reader
from knowledge.service.chat_completions import (
    MODEL,
    ChatCompletion,
    ChatCompletionRequest,
    ModelCard,
    ModelList,
    Usage,
    citations,
    completion,
    completion_id,
    conversation,
    kdesk_info,
    now,
)
from knowledge.service.errors import ApiError, documented, error_body
from knowledge.service.payloads import Links

log = logging.getLogger("kdesk.service")
router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
STARTED = int(time.time())  # the models' "created": they exist as long as the service runs
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


KEY_ERRORS = documented(
    (401, "No API key, or a wrong, revoked or expired one"),
    (403, "The key does not have the read scope"),
)
NOT_FOUND = documented((404, "Not one of the personas this key's user may use (model_not_found)"))
CHAT_ERRORS = documented(
    (400, "No user message with the question's text last"),
    (422, "A body that is not a chat completion request (which field, and why)"),
    (429, "The user's rate limit is used up: try again after Retry-After seconds"),
    (503, "No chat model is available"),
)


def model_ids(me: UserDesk) -> list[str]:
    """The personas the user may ask in: none unless their roles give the chat page."""
    if not me.may_open("chat"):
        return []
    return [MODEL] + [f"{MODEL}:{role.name}" for role in me.access.roles]


def persona_desk(caller: Caller, model: str) -> UserDesk:
    """The user asking in the persona ``model`` names; a role that is not theirs is "not
    found", like a model that does not exist (which roles exist is not told)."""
    if model == MODEL:
        return caller.asking()
    role = model.removeprefix(f"{MODEL}:") if model.startswith(f"{MODEL}:") else None
    if role is None or caller.me.access.role(role) is None:
        raise ApiError(
            404,
            f"The model {model!r} does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        )
    return caller.asking(role)


@router.get("/models", summary="The personas this key may ask in", responses=KEY_ERRORS)
def list_models(caller: Reader) -> ModelList:
    return ModelList(data=[ModelCard(id=i, created=STARTED) for i in model_ids(caller.me)])


@router.get("/models/{model_id}", summary="One persona", responses=KEY_ERRORS | NOT_FOUND)
def get_model(model_id: str, caller: Reader) -> ModelCard:
    persona_desk(caller, model_id)
    return ModelCard(id=model_id, created=STARTED)


@router.post(
    "/chat/completions",
    summary="A grounded, cited answer (OpenAI's chat completions; stream: server-sent events)",
    response_model=ChatCompletion,
    responses={
        200: {"content": {"text/event-stream": {"description": "chat.completion.chunk events"}}},
        **KEY_ERRORS,
        **NOT_FOUND,
        **CHAT_ERRORS,
    },
)
def chat_completions(body: ChatCompletionRequest, caller: Reader) -> Any:
    me = persona_desk(caller, body.model)
    question, history = conversation(body.messages)
    stream = me.ask(question, history=history)  # RateLimitedError: 429 before any output
    if not body.stream:
        for _ in stream:
            pass
        answer = stream.answer
        return completion(answer, body.model, usage_of(me, answer), links_of(me))
    deltas = iter(stream)
    first = next(deltas, None)  # retrieval runs here: its errors are still a JSON status
    events = sse(me, stream, _prepend(first, deltas), body.model, body.include_usage)
    return StreamingResponse(events, media_type="text/event-stream", headers=STREAM_HEADERS)


def _prepend(first: str | None, rest: Iterator[str]) -> Iterator[str]:
    if first is not None:
        yield first
        yield from rest


def links_of(me: UserDesk) -> Links:
    return Links.of(me.desk.settings)


def usage_of(me: UserDesk, answer: Answer) -> Usage:
    """The tokens the desk counted for the answer (none for a cached one or no event)."""
    if not answer.event_id:
        return Usage()
    try:
        event = me.desk.usage.event(answer.event_id)
    except NotFoundError:
        return Usage()
    prompt, completed = int(str(event["tokens_in"] or 0)), int(str(event["tokens_out"] or 0))
    return Usage(prompt_tokens=prompt, completion_tokens=completed, total_tokens=prompt + completed)


def ending(streamed: str, answer: Answer) -> str:
    """What the stream still owes after the model's text: the rest of the checked answer, or
    the checked answer itself when it differs from what was sent."""
    checked = answer.text
    if checked.strip() == streamed.strip():
        return ""
    if checked.startswith(streamed):
        return checked[len(streamed) :]
    why = f"The model stopped ({answer.error})" if answer.error else "Checked against the sources"
    return f"\n\n---\n{why}; the verified answer:\n\n{checked}"


def sse(
    me: UserDesk, stream: AnswerStream, deltas: Iterator[str], model: str, include_usage: bool
) -> Iterator[str]:
    """The answer as ``chat.completion.chunk`` events: the role, the text as it comes, the
    finish with the citations, the usage when asked for, then ``[DONE]``."""
    head: dict[str, Any] = {
        "id": completion_id(),
        "object": "chat.completion.chunk",
        "created": now(),
        "model": model,
    }
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return event({**head, "choices": [choice], **extra, **more})

    yield chunk({"role": "assistant", "content": ""})
    try:
        sent: list[str] = []
        for delta in deltas:
            if delta:
                sent.append(delta)
                yield chunk({"content": delta})
        answer = stream.answer
        if rest := ending("".join(sent), answer):
            yield chunk({"content": rest})
        info = kdesk_info(answer).model_dump() | {"answer": answer.text}
        yield chunk({}, "stop", citations=citations(answer, links_of(me)), kdesk=info)
        if include_usage:
            yield event({**head, "choices": [], "usage": usage_of(me, answer).model_dump()})
    except Exception:  # after the headers: end the stream with an error event, never a 500
        log.exception("an answer stream failed")
        yield event(error_body("The answer could not be completed.", "server_error"))
    yield "data: [DONE]\n\n"


def event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
