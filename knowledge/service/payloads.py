"""The desk's objects as the JSON every API speaks (OpenAI extension field, REST, MCP), and the
pydantic models that document it (the REST responses, the MCP tools' output schemas): one
place, so a citation looks the same wherever it is read. Links point at the API's own page
view of the cited page (``GET /api/documents/{doc_id}/pages/{page}``) and the original file
opened at that page; both need the same key."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field

from knowledge.core import types


def page_link(api_url: str, doc_id: str, page: int) -> str:
    return f"{api_url}/api/documents/{quote(doc_id)}/pages/{page}"


def original_link(api_url: str, chunk: types.Chunk, page: int) -> str:
    fragment = f"#page={page}" if chunk.media_type == "application/pdf" else ""
    return f"{api_url}/api/documents/{quote(chunk.doc_id)}/original{fragment}"


def place(chunk: types.Chunk, page: int, api_url: str) -> dict[str, Any]:
    """Where a passage is: its document, page and the links that open them."""
    return {
        "document": chunk.file_name,
        "doc_id": chunk.doc_id,
        "collection": chunk.collection,
        "title": chunk.title,
        "page": page,
        "location": chunk.cited_as(page),
        "ocr": page in chunk.ocr_pages,
        "link": page_link(api_url, chunk.doc_id, page),
        "original": original_link(api_url, chunk, page),
    }


def citation_json(citation: types.Citation, api_url: str) -> dict[str, Any]:
    return {
        "n": citation.n,
        **place(citation.chunk, citation.page, api_url),
        "passage": citation.quote,
        "score": round(citation.score, 4),
    }


def passage_json(found: types.ScoredChunk, api_url: str) -> dict[str, Any]:
    """A search result: the whole passage (chunk) with its place and score."""
    chunk = found.chunk
    return {
        "chunk_id": chunk.id,
        **place(chunk, chunk.page_start, api_url),
        "page_end": chunk.page_end,
        "headings": list(chunk.heading_path),
        "text": chunk.text,
        "score": round(found.score, 4),
    }


def answer_json(answer: types.Answer, api_url: str) -> dict[str, Any]:
    """Everything a client needs to show an answer: its text with [n] markers, whether the
    desk abstained, the citations, and how it was made."""
    return {
        "answer": answer.text,
        "abstained": answer.abstained,
        "evidence": answer.evidence,
        "citations": [citation_json(c, api_url) for c in answer.citations],
        "model": answer.model,
        "route": answer.route,
        "cached": answer.cached,
        "event_id": answer.event_id,
        "error": answer.error,
        "notes": list(answer.notes),
        "compliance": answer.compliance,
        "latency_ms": round(answer.total_ms, 1),
    }


# The models of that JSON ------------------------------------------------------------------


class Place(BaseModel):
    """Where a passage is: its document, page, and the API links that open them."""

    document: str = Field(description="The document's file name.")
    doc_id: str
    collection: str
    title: str
    page: int = Field(description="The page (slide, section) number, 1-based.")
    location: str = Field(description='How a citation names the page: "p. 3", "slide 2", ...')
    ocr: bool = Field(description="Whether the page's text was read from its image.")
    link: str = Field(description="The page in the API (the same key opens it).")
    original: str = Field(description="The original file in the API, opened at the page.")


class Passage(Place):
    chunk_id: str = Field(description="Give it to get_passage for the passage's whole page.")
    page_end: int
    headings: list[str]
    text: str
    score: float = Field(description="Relevance, higher is better.")


class Citation(Place):
    n: int = Field(description="The [n] marker in the answer that cites this.")
    passage: str = Field(description="The cited words.")
    score: float


class SearchResults(BaseModel):
    query: str
    passages: list[Passage]


class AnswerBody(BaseModel):
    answer: str = Field(description="The grounded answer, with [n] markers for its citations.")
    abstained: bool = Field(description="True when the documents do not answer the question.")
    evidence: str
    citations: list[Citation]
    model: str
    route: str
    cached: bool
    event_id: str | None = Field(description="Its usage event: give it to POST /api/feedback.")
    error: str | None
    notes: list[str]
    compliance: str | None = Field(description="rephrased or refused: the role's rules applied")
    latency_ms: float
