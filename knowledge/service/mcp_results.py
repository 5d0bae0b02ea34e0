"""What the MCP server's tools return: pydantic models of the JSON every API speaks
(knowledge/service/payloads.py), published as each tool's output schema, and the text an
assistant reads beside them (the same facts, with the [n] markers and places of citations)."""

from __future__ import annotations

from datetime import datetime

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field


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


class SearchResult(BaseModel):
    query: str
    passages: list[Passage]


class AskResult(BaseModel):
    answer: str = Field(description="The grounded answer, with [n] markers for its citations.")
    abstained: bool = Field(description="True when the documents do not answer the question.")
    evidence: str
    citations: list[Citation]
    model: str
    route: str
    cached: bool
    event_id: str | None
    error: str | None
    notes: list[str]
    compliance: str | None = Field(description="rephrased or refused: the role's rules applied")
    latency_ms: float


class Document(BaseModel):
    doc_id: str
    document: str = Field(description="The file name.")
    title: str
    collection: str
    pages: int
    tags: list[str]
    ingested_at: datetime
    link: str = Field(description="Its first page in the API.")


class DocumentList(BaseModel):
    documents: list[Document]


class PageText(BaseModel):
    """A whole page (slide, section) of a document, pieced together from its passages."""

    doc_id: str
    document: str
    title: str
    collection: str
    page: int
    location: str
    text: str
    chunk_ids: list[str] = Field(description="The passages the page is made of.")
    link: str


def result(model: BaseModel, text: str) -> CallToolResult:
    """A tool's answer: the text an assistant reads and the structured form of the same."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json"),
    )


def search_text(found: SearchResult) -> str:
    if not found.passages:
        return f"No passage you may read matches {found.query!r}."
    lines = []
    for n, p in enumerate(found.passages, start=1):
        lines.append(f"[{n}] {p.document}, {p.location} (chunk {p.chunk_id}, score {p.score})")
        lines.append(p.text.strip())
        lines.append(f"Link: {p.link}\n")
    return "\n".join(lines).rstrip()


def ask_text(answer: AskResult) -> str:
    lines = [answer.answer]
    if answer.error:
        lines.append(f"\nModel error: {answer.error}")
    lines += [f"\n{note}" for note in answer.notes]
    if answer.citations:
        lines.append("\nSources:")
        lines += [f"[{c.n}] {c.document}, {c.location}: {c.link}" for c in answer.citations]
    return "\n".join(lines)


def documents_text(listed: DocumentList) -> str:
    if not listed.documents:
        return "No documents you may read."
    return "\n".join(
        f"- {d.title or d.document} ({d.document}, {d.collection}, {d.pages} pages, "
        f"doc_id {d.doc_id})"
        for d in listed.documents
    )


def page_text(page: PageText) -> str:
    return f"{page.document}, {page.location} ({page.collection})\n\n{page.text}\n\n{page.link}"
