"""The REST API's bodies as pydantic models, so the OpenAPI schema documents every field.
Answers, citations and passages are knowledge/service/payloads.py's models, shared with the
MCP server (tests/service/test_rest_properties.py checks they match the JSON built there)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from knowledge.search.filters import SearchFilter
from knowledge.service.errors import documented
from knowledge.service.payloads import Place


def _iso_day(value: object) -> object:
    """Only YYYY-MM-DD (pydantic alone would also read 0 or "0" as a Unix time)."""
    if isinstance(value, date) or (
        isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
    ):
        return value
    raise ValueError("a day is written YYYY-MM-DD")


Day = Annotated[date, BeforeValidator(_iso_day)]

# Requests --------------------------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored


class Filter(Strict):
    """Which documents to use; every field given must hold."""

    documents: list[str] = Field(default=[], description="file names or document ids, any")
    tags: list[str] = Field(default=[], description="documents with any of these tags")
    since: Day | None = Field(default=None, description="ingested on or after (UTC day)")
    until: Day | None = Field(default=None, description="ingested on or before (UTC day)")
    include_earlier: StrictBool = Field(default=False, description="also superseded versions")

    def search_filter(self) -> SearchFilter:
        return SearchFilter(
            tuple(self.documents), tuple(self.tags), self.since, self.until, self.include_earlier
        )


class SearchRequest(Strict):
    query: str = Field(min_length=1, max_length=4000)
    collections: list[str] | None = Field(
        default=None, description="some of your collections (default: all you may search)"
    )
    k: int | None = Field(default=None, ge=1, le=50, description="how many passages")
    filter: Filter | None = None


class HistoryTurn(Strict):
    question: str
    answer: str


class AskRequest(Strict):
    question: str = Field(min_length=1, max_length=4000)
    collections: list[str] | None = Field(
        default=None, description="some of your collections (default: all you may search)"
    )
    role: str | None = Field(default=None, description="one of your roles (default: the first)")
    history: list[HistoryTurn] = Field(default=[], max_length=50, description="earlier turns")
    filter: Filter | None = None
    fresh: StrictBool = Field(default=False, description="answer afresh, not from the answer cache")
    stream: StrictBool = Field(
        default=False,
        description="server-sent events: `delta` {text} ..., then `answer` (or `error`)",
    )


class FeedbackRequest(Strict):
    event_id: str = Field(min_length=1, description="the answer's event_id")
    rating: Literal["up", "down"] | None = Field(description="null takes a rating back")
    comment: str | None = Field(default=None, max_length=4000)


# Responses -------------------------------------------------------------------------------------


class Document(BaseModel):
    doc_id: str
    file_name: str
    title: str
    collection: str
    pages: int
    chunks: int
    tags: list[str]
    media_type: str
    ingested_at: datetime
    supersedes: str | None = Field(description="the doc_id of the earlier version it replaces")
    superseded: bool = Field(description="a newer version replaces it")
    original: str = Field(description="the original file (GET, same key)")


class Documents(BaseModel):
    documents: list[Document]


class PageView(BaseModel):
    doc_id: str
    page: int
    pages: int
    text: str = Field(description="the page's (slide's, section's) text")
    place: Place


class Report(BaseModel):
    status: str = Field(description="added, unchanged, replaced, duplicate or failed")
    doc_id: str | None
    pages: int
    chunks: int
    reason: str | None
    tags: list[str]
    supersedes: str | None
    proposed_supersedes: str | None


class Job(BaseModel):
    job_id: str
    collection: str
    file_name: str
    size_bytes: int
    state: str = Field(description="queued, running, done or failed")
    stage: str
    fraction: float
    pages: int | None
    pages_done: int | None
    attempts: int
    status: str = Field(description="one line for people: progress, or how it ended")
    error: str | None
    report: Report | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class Jobs(BaseModel):
    jobs: list[Job]


class Feedback(BaseModel):
    event_id: str
    rating: Literal["up", "down"] | None
    comment: str | None


class Collections(BaseModel):
    searchable: list[str]
    uploadable: list[str]


class UsageCounts(BaseModel):
    questions: int
    answered: int
    abstained: int
    model_errors: int
    feedback_up: int
    feedback_down: int
    tokens_in: int
    tokens_out: int
    latency_ms: dict[str, float | None] = Field(description="p50, p95")


class UsageSummary(UsageCounts):
    model_config = ConfigDict(extra="allow")  # figures added to analytics show up here too

    since: date | None
    until: date | None
    users: int
    by_role: dict[str, UsageCounts]
    models: dict[str, int]


def errors(*statuses: int) -> dict[int | str, dict[str, object]]:
    """The ``responses`` of a route: these error statuses (and those of every route: no key,
    a key without the scope, a bad request), each with the error body."""
    return documented(*sorted({401, 403, 422, *statuses}))
