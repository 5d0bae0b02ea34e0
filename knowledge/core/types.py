"""Our own types: framework objects are converted to these at the edge."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypedDict


class Message(TypedDict):
    """One chat message, as every chat model backend takes them."""

    role: Literal["system", "user", "assistant"]
    content: str


class Usage(TypedDict, total=False):
    """What a chat model backend reports about one request (token counts, timings)."""

    prompt_tokens: int
    completion_tokens: int
    prompt_ms: float
    completion_ms: float


@dataclass(frozen=True)
class Chunk:
    id: str
    doc_id: str
    collection: str
    file_name: str
    title: str
    page_start: int
    page_end: int
    heading_path: tuple[str, ...]
    char_start: int
    char_end: int
    text: str
    content_hash: str
    page_break: int | None = None  # offset in ``text`` where page_end begins
    sentences: tuple[tuple[int, int], ...] = ()  # (start, end) in ``text`` of each sentence
    # of its document's page labels and OCR'd pages (ParsedDocument), those of its own pages
    page_labels: Mapping[int, str] = field(default_factory=dict, hash=False, compare=False)
    ocr_pages: Mapping[int, float] = field(default_factory=dict, hash=False, compare=False)
    media_type: str = "application/pdf"

    def page_at(self, offset: int) -> int:
        if self.page_break is not None and offset >= self.page_break:
            return self.page_end
        return self.page_start

    def location(self, page: int | None = None, page_word: str = "p.") -> str:
        """Where ``page`` (default: the first) is, as a citation says it: "p. 3" (or "page 3"
        with ``page_word``), "slide 3", "Rates, rows 2-41", or the page's heading."""
        page = self.page_start if page is None else page
        return self.page_labels.get(page) or f"{page_word} {page}"

    def cited_as(self, page: int | None = None, page_word: str = "p.") -> str:
        """``location``, saying "(OCR)" where the page's text was read from its image."""
        page = self.page_start if page is None else page
        return self.location(page, page_word) + (" (OCR)" if page in self.ocr_pages else "")


@dataclass(frozen=True)
class ScoredChunk:
    chunk: Chunk
    score: float  # higher is better; 0..1 relevance for the final ranking
    # the question's cosine to each of ``chunk.sentences`` (empty where the chunk has none)
    sentence_scores: tuple[float, ...] = ()

    @property
    def best_sentence(self) -> float:
        return max(self.sentence_scores, default=self.score)


@dataclass(frozen=True)
class Citation:
    n: int  # the number shown in the answer, [n]
    chunk: Chunk
    score: float
    quote: str  # the passage shown under the answer
    page: int  # the page the supporting text is on (a chunk may span two)


Evidence = Literal["strong", "weak", "none"]


@dataclass
class Answer:
    question: str
    text: str
    abstained: bool
    model: str
    citations: list[Citation] = field(default_factory=list)
    sources: list[ScoredChunk] = field(default_factory=list)  # everything retrieved
    evidence: Evidence = "strong"
    error: str | None = None  # set when the model failed; sources are still shown
    quoted: bool = False  # the model's text could not be verified: the sources are quoted instead
    dropped: int = 0  # sentences of the model's text that no source supports, left out
    confidence: float | None = None  # the evidence model's probability that the sources answer
    signals: dict[str, float] = field(default_factory=dict)  # what that judgement read
    verdict: str | None = None  # "model": the chat model said the sources do not answer
    retrieval_ms: float = 0.0
    first_token_ms: float | None = None
    total_ms: float = 0.0
    standalone_query: str = ""
    event_id: str | None = None  # the usage event recorded for it: feedback refers to this id
    compliance: str | None = None  # "rephrased" or "refused" when the persona's rules applied
    # which model answered and why (knowledge.assistant.routing): fast, strong, single, persona;
    # "none" when no model was asked (no evidence, quotes only), "cache" for a stored answer
    route: str = "none"
    route_reason: str = ""
    notes: list[str] = field(default_factory=list)  # shown with the answer ("answered by ...")
    cached: bool = False  # a stored answer to the same question (knowledge.desk.answer_cache)


@dataclass(frozen=True)
class Requester:
    """Who asks, and through which channel: the signed-in user and the role (persona) they
    ask in. ``knowledge.desk.facade.UserDesk`` fills it from the user's account, never from
    input."""

    user: str = "anonymous"
    role: str = "employee"
    channel: str = "api"  # "chat", "cli", "api"


# duplicate: the content is stored under another file name (doc_id: that document), not indexed
IngestStatus = Literal["added", "unchanged", "replaced", "duplicate", "failed"]


@dataclass(frozen=True)
class IngestReport:
    file_name: str
    collection: str
    status: IngestStatus
    pages: int = 0
    pages_without_text: tuple[int, ...] = ()
    chunks: int = 0
    seconds: float = 0.0
    reason: str | None = None  # why it failed or is a duplicate, or a warning (pages without text)
    doc_id: str | None = None
    tags: tuple[str, ...] = ()  # the document's tags after this ingestion
    instruction_pages: tuple[int, ...] = ()  # pages with text addressed to an AI assistant
    supersedes: str | None = None  # the doc_id of the earlier version it now replaces
    proposed_supersedes: str | None = None  # the doc_id it looks like a new version of
    ocr_pages: tuple[int, ...] = ()  # pages whose text was read from their image
    ocr_confidence: float | None = None  # those pages' mean word confidence, 0-100


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    collection: str
    file_name: str
    title: str
    pages: int
    chunks: int
    sha256: str
    ingested_at: datetime
    pdf_path: str
    pipeline: str = ""  # how it was chunked and embedded; a change means re-ingest
    tags: tuple[str, ...] = ()  # normalised (knowledge.search.filters.normalise_tags)
    instruction_pages: tuple[int, ...] = ()  # text addressed to an AI assistant: never obeyed
    media_type: str = "application/pdf"
    page_labels: Mapping[int, str] = field(default_factory=dict, hash=False, compare=False)
    ocr_pages: Mapping[int, float] = field(default_factory=dict, hash=False, compare=False)
    supersedes: str | None = None  # the doc_id of the earlier version this one replaces


class AnswerStream:
    """Iterate for the streamed text; `answer` holds the verified result once iteration ends."""

    def __init__(self, deltas: Iterator[str], finish: Answer) -> None:
        self._deltas = deltas
        self.answer = finish

    def __iter__(self) -> Iterator[str]:
        yield from self._deltas
