"""What the MCP server's tools return: pydantic models of the JSON every API speaks
(knowledge/service/payloads.py), published as each tool's output schema, and the text an
assistant reads beside them (the same facts, with the [n] markers and places of citations)."""

from __future__ import annotations

from datetime import datetime

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from knowledge.service.payloads import AnswerBody, SearchResults


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


def search_text(found: SearchResults) -> str:
    if not found.passages:
        return f"No passage you may read matches {found.query!r}."
    lines = []
    for n, p in enumerate(found.passages, start=1):
        lines.append(f"[{n}] {p.document}, {p.location} (chunk {p.chunk_id}, score {p.score})")
        lines.append(p.text.strip())
        lines.append(f"Link: {p.link}\n")
    return "\n".join(lines).rstrip()


def ask_text(answer: AnswerBody) -> str:
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
