"""The bodies of the OpenAI-compatible chat API: what clients send (as they really send it:
string or content-part content, fields we do not use ignored) and the ``chat.completion`` /
``chat.completion.chunk`` objects we answer with, carrying the desk's citations and
judgement as extension fields (``citations``, ``kdesk``) that OpenAI clients keep."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
)

from knowledge.assistant.personas import Turn
from knowledge.core.types import Answer
from knowledge.service.errors import ApiError
from knowledge.service.payloads import Links, citation_json

MODEL = "kdesk"  # the user's first role; "kdesk:<role>" one of their roles
Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ContentPart(BaseModel):
    """One part of a message's content; only text parts are read (images are not)."""

    model_config = ConfigDict(extra="allow")
    type: str = "text"
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return "\n".join(p.text for p in parts if p.text and p.type in ("text", "input_text"))


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: StrictBool = False


class ChatCompletionRequest(BaseModel):
    """A chat completion request. ``model`` picks the persona; the persona's own settings
    govern the answer, so ``temperature``, ``max_tokens`` and system messages are accepted
    and not used (the answer must stay grounded in the documents)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "model": "kdesk",
                    "messages": [{"role": "user", "content": "How often is it inspected?"}],
                }
            ]
        },
    )
    model: str = Field(MODEL, description='"kdesk" or "kdesk:<role>" (GET /v1/models)')
    messages: list[ChatMessage] = Field(min_length=1)
    # numbers and flags as JSON types (a string "1" is a client's bug worth telling)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    temperature: StrictFloat | None = None
    top_p: StrictFloat | None = None
    max_tokens: StrictInt | None = None
    max_completion_tokens: StrictInt | None = None
    n: StrictInt | None = Field(None, description="Only 1 is supported.")
    user: str | None = Field(None, description="Ignored: the API key's user asks.")

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int | None) -> int | None:
        if n not in (None, 1):
            raise ValueError("only n=1 is supported")
        return n

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def conversation(messages: Sequence[ChatMessage]) -> tuple[str, list[Turn]]:
    """The question (the last user message) and the earlier user/assistant exchanges as
    history. System, developer and tool messages are left out: the persona's prompt governs."""
    said = [(m.role, m.text()) for m in messages if m.role in ("user", "assistant")]
    if not said or said[-1][0] != "user" or not said[-1][1].strip():
        raise ApiError(400, "The last message must be a user message with the question's text.")
    turns: list[Turn] = []
    asked: str | None = None
    for role, text in said[:-1]:
        if role == "user":
            asked = text  # a question left unanswered (a retried turn) gives way to the next
        elif asked is not None:
            turns.append(Turn(asked, text))
            asked = None
    return said[-1][1].strip(), turns


# Responses -------------------------------------------------------------------------------


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class KdeskInfo(BaseModel):
    """How the desk made the answer (an extension of the OpenAI object)."""

    abstained: bool = Field(description="The documents do not answer: an ordinary answer saying so")
    evidence: str = Field(description="strong, weak or none")
    event_id: str | None = Field(description="The usage event: POST feedback with this id")
    route: str
    cached: bool
    notes: list[str]
    model: str = Field(description="The chat model that answered")
    error: str | None = Field(description="Why the model failed, when it did (sources are quoted)")
    compliance: str | None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[dict[str, Any]] = Field(
        description="The verified citations of the [n] markers: document, page, link, passage"
    )
    kdesk: KdeskInfo


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "kdesk"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def kdesk_info(answer: Answer) -> KdeskInfo:
    return KdeskInfo(
        abstained=answer.abstained,
        evidence=answer.evidence,
        event_id=answer.event_id,
        route=answer.route,
        cached=answer.cached,
        notes=list(answer.notes),
        model=answer.model,
        error=answer.error,
        compliance=answer.compliance,
    )


def citations(answer: Answer, links: Links) -> list[dict[str, Any]]:
    return [citation_json(c, links) for c in answer.citations]


def completion(
    answer: Answer, model: str, usage: Usage, links: Links, *, created: int | None = None
) -> ChatCompletion:
    return ChatCompletion(
        id=completion_id(),
        created=created or now(),
        model=model,
        choices=[Choice(message=AssistantMessage(content=answer.text))],
        usage=usage,
        citations=citations(answer, links),
        kdesk=kdesk_info(answer),
    )
