"""The desk's objects as the JSON every API speaks (OpenAI extension field, REST, MCP), and the
pydantic models that document it (the REST responses, the MCP tools' output schemas): one
place, so a citation looks the same wherever it is read. Each place has three links: the
API's own view of the page (``GET /api/documents/{doc_id}/pages/{page}``) and the original
file opened at that page, both for programs with the key, and the page in the web app's viewer
for a person clicking a citation (they sign in there, with their own permissions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from pydantic import BaseModel, Field

from knowledge.core import types

if TYPE_CHECKING:
    from knowledge.core.settings import Settings


@dataclass(frozen=True)
class Links:
    api: str  # where clients reach the API (KDESK_API_PUBLIC_URL or http://HOST:PORT)
    app: str  # where people reach the web app (KDESK_APP_URL)

    @classmethod
    def of(cls, settings: Settings) -> Links:
        return cls(settings.api_url, settings.app_url.rstrip("/"))

    def page(self, doc_id: str, page: int) -> str:
        return f"{self.api}/api/documents/{quote(doc_id)}/pages/{page}"

    def original(self, doc_id: str, page: int | None = None, media_type: str = "") -> str:
        fragment = f"#page={page}" if page and media_type == "application/pdf" else ""
        return f"{self.api}/api/documents/{quote(doc_id)}/original{fragment}"

    def web(self, doc_id: str, page: int) -> str:
        """The chat page opening the document's viewer at ``page`` (pages/chat.py)."""
        return f"{self.app}/?{urlencode({'source': doc_id, 'page': page})}"


def place(chunk: types.Chunk, page: int, links: Links) -> dict[str, Any]:
    """Where a passage is: its document, page and the links that open them."""
    return {
        "document": chunk.file_name,
        "doc_id": chunk.doc_id,
        "collection": chunk.collection,
        "title": chunk.title,
        "page": page,
        "location": chunk.cited_as(page),
        "ocr": page in chunk.ocr_pages,
        "link": links.page(chunk.doc_id, page),
        "original": links.original(chunk.doc_id, page, chunk.media_type),
        "web_link": links.web(chunk.doc_id, page),
    }


def citation_json(citation: types.Citation, links: Links) -> dict[str, Any]:
    return {
        "n": citation.n,
        **place(citation.chunk, citation.page, links),
        "passage": citation.quote,
        "score": round(citation.score, 4),
    }


def passage_json(found: types.ScoredChunk, links: Links) -> dict[str, Any]:
    """A search result: the whole passage (chunk) with its place and score."""
    chunk = found.chunk
    return {
        "chunk_id": chunk.id,
        **place(chunk, chunk.page_start, links),
        "page_end": chunk.page_end,
        "headings": list(chunk.heading_path),
        "text": chunk.text,
        "score": round(found.score, 4),
    }


def answer_json(answer: types.Answer, links: Links) -> dict[str, Any]:
    """Everything a client needs to show an answer: its text with [n] markers, whether the
    desk abstained, the citations, and how it was made."""
    return {
        "answer": answer.text,
        "abstained": answer.abstained,
        "evidence": answer.evidence,
        "citations": [citation_json(c, links) for c in answer.citations],
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
    web_link: str = Field(
        description="The page in the web app's viewer, for a person (who signs in there)."
    )


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
