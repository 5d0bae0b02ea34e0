"""The REST API under ``/api``: search, ask (JSON or server-sent events), feedback, the usage
summary and the caller's collections; documents and jobs in rest_documents.py and
rest_jobs.py. Every route acts through the key's ``UserDesk`` (knowledge/service/auth.py),
never the raw desk, so the user's permissions hold here as on the pages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from knowledge.assistant.personas import Turn
from knowledge.core.types import AnswerStream
from knowledge.service import rest_documents, rest_jobs
from knowledge.service.auth import Reader, desk_of
from knowledge.service.errors import error_response
from knowledge.service.payloads import AnswerBody, Links, SearchResults, answer_json, passage_json
from knowledge.service.rest_models import (
    AskRequest,
    Collections,
    Day,
    Feedback,
    FeedbackRequest,
    SearchRequest,
    UsageSummary,
    errors,
)
from knowledge.usage.events import UsageFilter

router = APIRouter(prefix="/api", tags=["Knowledge Desk"])
router.include_router(rest_documents.router)
router.include_router(rest_jobs.router)


def event_schema(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """One kind of server-sent event (OpenAPI 3.2's ``itemSchema``: each event's fields)."""
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": event},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
        },
    }


DELTA = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
STREAMED = {
    "description": "With `stream: true`: server-sent events, `event: delta` with data "
    '`{"text": ...}` for each piece of the answer, then `event: answer` with the whole '
    "answer (the JSON above), or `event: error` with an error body.",
    "content": {
        "text/event-stream": {
            "itemSchema": {
                "oneOf": [
                    event_schema("delta", DELTA),
                    event_schema("answer", {"$ref": "#/components/schemas/AnswerBody"}),
                    event_schema("error", {"$ref": "#/components/schemas/ErrorBody"}),
                ]
            }
        }
    },
}


@router.post(
    "/search",
    summary="The passages of your collections that best match a query",
    response_model=SearchResults,
    responses=errors(400, 403),
)
def search(body: SearchRequest, caller: Reader, request: Request) -> dict[str, Any]:
    where = body.filter.search_filter() if body.filter else None
    found = caller.asking().search(body.query, body.collections, body.k, where=where)
    links = Links.of(desk_of(request).settings)
    return {"query": body.query, "passages": [passage_json(f, links) for f in found]}


@router.post(
    "/ask",
    summary="A grounded, cited answer from your collections",
    response_model=AnswerBody,
    responses={200: STREAMED, **errors(400, 403, 429, 503)},
)
def ask(body: AskRequest, caller: Reader, request: Request) -> Any:
    me = caller.asking(body.role)
    stream = me.ask(  # the rate limit is checked here, before any response starts
        body.question,
        body.collections,
        history=[Turn(t.question, t.answer) for t in body.history],
        where=body.filter.search_filter() if body.filter else None,
        fresh=body.fresh,
    )
    links = Links.of(desk_of(request).settings)
    if body.stream:
        return StreamingResponse(answer_events(stream, links), media_type="text/event-stream")
    for _ in stream:
        pass
    return answer_json(stream.answer, links)


def answer_events(stream: AnswerStream, links: Links) -> Iterator[bytes]:
    """The answer as server-sent events; an error once streaming began is an ``error`` event
    (the status line has been sent by then)."""
    try:
        for delta in stream:
            yield sse("delta", {"text": delta})
    except Exception as exc:  # noqa: BLE001 - told to the client, unexpected ones logged
        yield sse("error", json.loads(bytes(error_response(exc).body)))
        return
    yield sse("answer", answer_json(stream.answer, links))


def sse(event: str, data: object) -> bytes:
    """One server-sent event (``json.dumps`` writes no newline, so one ``data`` line)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@router.post(
    "/feedback",
    summary="Rate one of your own answers (up, down, or null to take it back)",
    response_model=Feedback,
    responses=errors(403, 404),
)
def feedback(body: FeedbackRequest, caller: Reader) -> dict[str, Any]:
    caller.me.feedback(body.event_id, body.rating, body.comment)
    return body.model_dump()


@router.get(
    "/usage/summary",
    summary="Usage figures of your collections (needs the analytics page)",
    response_model=UsageSummary,
    responses=errors(400, 403),
)
def usage_summary(
    caller: Reader,
    since: Annotated[Day | None, Query(description="first UTC day")] = None,
    until: Annotated[Day | None, Query(description="last UTC day")] = None,
    role: Annotated[list[str] | None, Query(description="only these roles")] = None,
) -> dict[str, Any]:
    figures = caller.me.usage_summary(UsageFilter(since, until, tuple(role or ())))
    return {"since": since, "until": until} | figures


@router.get(
    "/collections",
    summary="The collections you may search and those you may upload to",
    response_model=Collections,
    responses=errors(),
)
def collections(caller: Reader) -> dict[str, list[str]]:
    return {"searchable": caller.me.collections(), "uploadable": caller.me.upload_collections()}
