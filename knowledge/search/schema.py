"""The knowledge store's tables (collections, documents, chunks with their sentence vectors) and
their conversion to our own types."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np
from sqlalchemy import (
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ingest.chunking import ChunkDraft
from ingest.document import PDF
from ingest.instructions import addresses_assistant
from knowledge.core.db import Base, UTCDateTime
from knowledge.core.text import sentence_spans
from knowledge.core.types import Chunk, DocumentInfo


class CollectionRow(Base):
    __tablename__ = "collections"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("collection", "file_name"),)
    doc_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    collection: Mapped[str] = mapped_column(ForeignKey("collections.name"), index=True)
    file_name: Mapped[str] = mapped_column(String(500))
    title: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    pipeline: Mapped[str | None] = mapped_column(String(100), nullable=True)
    pages: Mapped[int] = mapped_column(Integer)
    pages_without_text: Mapped[str] = mapped_column(Text, default="[]")
    chunks: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    pdf_path: Mapped[str] = mapped_column(String(1000))
    tags: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list; NULL: none
    # JSON list of the pages with text addressed to an AI assistant (flagged at ingest)
    instruction_pages: Mapped[str | None] = mapped_column(Text, nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(100), nullable=True)  # NULL: a PDF
    # JSON {page number: label} where a page is a slide, a block of a sheet's rows, a section
    page_labels: Mapped[str | None] = mapped_column(Text, nullable=True)
    # JSON {page number: mean OCR word confidence 0-100} of the pages read from their image
    ocr_pages: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the doc_id of the earlier version this document replaces as the current one
    supersedes: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)


class ChunkRow(Base):
    __tablename__ = "chunks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    doc_id: Mapped[str] = mapped_column(
        ForeignKey("documents.doc_id", ondelete="CASCADE"), index=True
    )
    collection: Mapped[str] = mapped_column(String(200), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    page_start: Mapped[int] = mapped_column(Integer)
    page_end: Mapped[int] = mapped_column(Integer)
    heading_path: Mapped[str] = mapped_column(Text, default="[]")
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    page_break: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the sentences of ``text`` as JSON [[start, end], ...] and their vectors (float16 rows,
    # pooled from the chunk's own forward pass); NULL for chunks stored before they existed
    sentence_spans: Mapped[str | None] = mapped_column(Text, nullable=True)
    sentence_vectors: Mapped[bytes | None] = mapped_column(
        LargeBinary, nullable=True, deferred=True
    )


class PendingWriteRow(Base):
    """A document write in flight: its vectors and PDF are written before the SQL swap that
    commits it, and the swap deletes this row in the same transaction. A row left behind is a
    write that never committed (its process died): ``KnowledgeStore.discard_pending`` removes
    what it wrote, so store, database and vector index agree again."""

    __tablename__ = "pending_writes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    writer: Mapped[str] = mapped_column(String(64), index=True)  # e.g. an ingestion job's id
    collection: Mapped[str] = mapped_column(String(200))
    chunk_ids: Mapped[str] = mapped_column(Text)  # JSON list
    pdf_path: Mapped[str] = mapped_column(String(1000))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())


def instruction_pages(drafts: Sequence[ChunkDraft]) -> list[int]:
    """The pages whose text addresses an AI assistant ("ignore all previous instructions")."""
    pages = set()
    for d in drafts:
        for a, b in sentence_spans(d.text):
            if addresses_assistant(d.text[a:b]):
                second = d.page_break is not None and a >= d.page_break
                pages.add(d.page_end if second else d.page_start)
    return sorted(pages)


SentenceVectors = tuple[Sequence[tuple[int, int]], np.ndarray]  # spans, one vector per span


def _sentence_columns(sentences: SentenceVectors | None) -> dict[str, object]:
    if sentences is None:
        return {}
    spans, vectors = sentences
    if not len(spans) or len(spans) != len(vectors):
        return {}
    return {
        "sentence_spans": json.dumps([list(span) for span in spans]),
        "sentence_vectors": np.asarray(vectors, dtype=np.float16).tobytes(),
    }


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _document_info(row: DocumentRow) -> DocumentInfo:
    return DocumentInfo(
        doc_id=row.doc_id,
        collection=row.collection,
        file_name=row.file_name,
        title=row.title,
        pages=row.pages,
        chunks=row.chunks,
        sha256=row.sha256,
        pipeline=row.pipeline or "",
        ingested_at=row.ingested_at,
        pdf_path=row.pdf_path,
        tags=tuple(json.loads(row.tags or "[]")),
        instruction_pages=tuple(json.loads(row.instruction_pages or "[]")),
        media_type=row.media_type or PDF,
        page_labels=_int_keys(row.page_labels),
        ocr_pages=_int_keys(row.ocr_pages),
        supersedes=row.supersedes,
    )


@functools.lru_cache(maxsize=256)
def _int_keys(mapping_json: str | None) -> dict[int, Any]:
    """A JSON object with page numbers as keys (JSON keys are strings); cached because every
    chunk of a document carries its document's labels."""
    return {int(k): v for k, v in json.loads(mapping_json or "{}").items()}


def _pages_of(mapping: dict[int, Any], first: int, last: int) -> dict[int, Any]:
    return {p: mapping[p] for p in range(first, last + 1) if p in mapping}


def _chunk(row: ChunkRow, doc: DocumentRow) -> Chunk:
    return Chunk(
        id=row.id,
        doc_id=row.doc_id,
        collection=row.collection,
        file_name=doc.file_name,
        title=doc.title,
        page_start=row.page_start,
        page_end=row.page_end,
        heading_path=tuple(json.loads(row.heading_path)),
        char_start=row.char_start,
        char_end=row.char_end,
        text=row.text,
        content_hash=row.content_hash,
        page_break=row.page_break,
        sentences=tuple((a, b) for a, b in json.loads(row.sentence_spans or "[]")),
        page_labels=_pages_of(_int_keys(doc.page_labels), row.page_start, row.page_end),
        ocr_pages=_pages_of(_int_keys(doc.ocr_pages), row.page_start, row.page_end),
        media_type=doc.media_type or PDF,
    )
