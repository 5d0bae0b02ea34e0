"""The knowledge store: documents and chunks in SQL, vectors in the index, original PDFs on disk.

SQL is the source of truth. A document's chunks are swapped in one transaction, so readers see
either the old version or the new one; vectors of a version that never committed (or was
replaced) are ignored at query time because their ids no longer resolve to chunk rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, delete, func, or_, select, update
from sqlalchemy.orm import Session

from ingest.chunking import ChunkDraft
from ingest.document import ParsedDocument
from ingest.reader import suffix_for
from knowledge.core.db import utc_now
from knowledge.core.errors import KdeskError, NotFoundError
from knowledge.core.types import Chunk, DocumentInfo, IngestStatus
from knowledge.search.filters import SearchFilter, normalise_tags
from knowledge.search.schema import (
    ChunkRow,
    CollectionRow,
    DocumentRow,
    PendingWriteRow,
    SentenceVectors,
    _chunk,
    _day_start,
    _document_info,
    _sentence_columns,
    instruction_pages,
)
from knowledge.search.vectors import VectorIndex


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    documents: int
    chunks: int


def validate_collection_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise KdeskError("A collection needs a name.")
    if len(cleaned) > 100:
        raise KdeskError("Collection names are limited to 100 characters.")
    return cleaned


class KnowledgeStore:
    def __init__(self, engine: Engine, index: VectorIndex, files_dir: Path) -> None:
        self.engine = engine
        self.index = index
        self.files_dir = files_dir

    # Collections ---------------------------------------------------------------------------

    def ensure_collection(self, name: str) -> str:
        name = validate_collection_name(name)
        with Session(self.engine) as session, session.begin():
            if session.get(CollectionRow, name) is None:
                session.add(CollectionRow(name=name, revision=0, created_at=utc_now()))
        return name

    def collections(self) -> list[CollectionInfo]:
        with Session(self.engine) as session:
            doc_counts = dict(
                session.execute(
                    select(DocumentRow.collection, func.count()).group_by(DocumentRow.collection)
                ).all()
            )
            chunk_counts = dict(
                session.execute(
                    select(DocumentRow.collection, func.sum(DocumentRow.chunks)).group_by(
                        DocumentRow.collection
                    )
                ).all()
            )
            names = session.scalars(select(CollectionRow.name).order_by(CollectionRow.name)).all()
        return [
            CollectionInfo(n, int(doc_counts.get(n, 0)), int(chunk_counts.get(n) or 0))
            for n in names
        ]

    def collection_names(self) -> list[str]:
        with Session(self.engine) as session:
            return list(session.scalars(select(CollectionRow.name).order_by(CollectionRow.name)))

    def revision(self, collection: str) -> int:
        with Session(self.engine) as session:
            row = session.get(CollectionRow, collection)
            return row.revision if row else -1

    def revisions(self) -> dict[str, int]:
        """Every collection's revision, in one query (what index refreshers poll)."""
        with Session(self.engine) as session:
            return dict(session.execute(select(CollectionRow.name, CollectionRow.revision)).all())

    def delete_collection(self, name: str) -> None:
        for doc in self.documents([name]):
            self.delete_document(doc.doc_id)
        with Session(self.engine) as session, session.begin():
            session.execute(delete(CollectionRow).where(CollectionRow.name == name))
        self.index.drop(name)

    # Documents -----------------------------------------------------------------------------

    def documents(self, collections: Sequence[str] | None = None) -> list[DocumentInfo]:
        query = select(DocumentRow).order_by(DocumentRow.collection, DocumentRow.file_name)
        if collections is not None:
            query = query.where(DocumentRow.collection.in_(list(collections)))
        with Session(self.engine) as session:
            return [_document_info(row) for row in session.scalars(query)]

    def document(self, doc_id: str) -> DocumentInfo:
        with Session(self.engine) as session:
            row = session.get(DocumentRow, doc_id)
            if row is None:
                raise NotFoundError(f"No document with id {doc_id}.")
            return _document_info(row)

    def set_tags(self, doc_id: str, tags: Sequence[str]) -> DocumentInfo:
        """Replace a document's tags (normalised); chunks and vectors stay as they are."""
        cleaned = normalise_tags(tags)
        with Session(self.engine) as session, session.begin():
            row = session.get(DocumentRow, doc_id)
            if row is None:
                raise NotFoundError(f"No document with id {doc_id}.")
            row.tags = json.dumps(list(cleaned))
            session.flush()
            return _document_info(row)

    def filtered_doc_ids(self, collections: Sequence[str], where: SearchFilter) -> list[str]:
        """The ids of the documents in ``collections`` that ``where`` lets through: the only
        documents a filtered search may draw from (never any outside ``collections``)."""
        if not collections:
            return []
        query = select(DocumentRow.doc_id).where(DocumentRow.collection.in_(list(collections)))
        if where.documents:
            names = list(where.documents)
            query = query.where(DocumentRow.file_name.in_(names) | DocumentRow.doc_id.in_(names))
        if where.tags:  # any of them; a tag is stored as a JSON string inside the list
            query = query.where(
                or_(
                    *(DocumentRow.tags.contains(json.dumps(t), autoescape=True) for t in where.tags)
                )
            )
        if where.ingested_since:
            query = query.where(DocumentRow.ingested_at >= _day_start(where.ingested_since))
        if where.ingested_until:
            next_day = where.ingested_until + timedelta(days=1)
            query = query.where(DocumentRow.ingested_at < _day_start(next_day))
        with Session(self.engine) as session:
            return list(session.scalars(query.order_by(DocumentRow.doc_id)))

    def find_document(self, collection: str, file_name: str) -> DocumentInfo | None:
        with Session(self.engine) as session:
            row = session.scalars(
                select(DocumentRow).where(
                    DocumentRow.collection == collection, DocumentRow.file_name == file_name
                )
            ).first()
            return _document_info(row) if row else None

    def put_document(
        self,
        collection: str,
        file_name: str,
        parsed: ParsedDocument,
        drafts: Sequence[ChunkDraft],
        vectors: np.ndarray,
        pdf_bytes: bytes,
        pipeline: str = "",
        tags: Sequence[str] | None = None,
        sentences: Sequence[SentenceVectors] | None = None,
        writer: str = "",
    ) -> tuple[IngestStatus, str]:
        """Add a new document or replace the one with the same file name, all or nothing.
        ``tags`` replace the document's tags; None keeps those of the version it replaces.
        ``sentences``: per chunk, its sentence spans and their vectors. ``writer`` names who
        writes (an ingestion job): if the process dies mid-write, ``discard_pending(writer)``
        removes the vectors and the PDF it left."""
        cleaned = None if tags is None else normalise_tags(tags)
        collection = self.ensure_collection(collection)
        existing = self.find_document(collection, file_name)
        doc_id = existing.doc_id if existing else uuid.uuid4().hex[:16]
        version = self._version(doc_id) + 1 if existing else 1
        ids = [f"{doc_id}-v{version}-{i}" for i in range(len(drafts))]
        # the original of any format (the column is still called pdf_path)
        path = self.files_dir / f"{doc_id}-v{version}{suffix_for(parsed.media_type)}"
        pending = self._begin_write(writer, collection, ids, path)
        pdf_path = self._save_pdf(path, pdf_bytes)
        self.index.add(collection, ids, vectors)
        try:
            old_ids = self._swap_in(
                collection,
                file_name,
                doc_id,
                version,
                parsed,
                drafts,
                ids,
                pdf_path,
                existing,
                pipeline,
                cleaned,
                sentences,
                pending,
            )
        except Exception:
            self.index.delete(collection, ids)
            pdf_path.unlink(missing_ok=True)
            self._end_write(pending)
            raise
        self.index.delete(collection, old_ids)
        if existing and existing.pdf_path != str(pdf_path):
            Path(existing.pdf_path).unlink(missing_ok=True)
        return ("replaced" if existing else "added"), doc_id

    def _version(self, doc_id: str) -> int:
        with Session(self.engine) as session:
            row = session.get(DocumentRow, doc_id)
            return row.version if row else 0

    def _save_pdf(self, path: Path, data: bytes) -> Path:
        self.files_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path

    def _swap_in(
        self,
        collection: str,
        file_name: str,
        doc_id: str,
        version: int,
        parsed: ParsedDocument,
        drafts: Sequence[ChunkDraft],
        ids: Sequence[str],
        pdf_path: Path,
        existing: DocumentInfo | None,
        pipeline: str = "",
        tags: Sequence[str] | None = None,
        sentences: Sequence[SentenceVectors] | None = None,
        pending: str = "",
    ) -> list[str]:
        with Session(self.engine) as session, session.begin():
            session.execute(delete(PendingWriteRow).where(PendingWriteRow.id == pending))
            old_ids = list(session.scalars(select(ChunkRow.id).where(ChunkRow.doc_id == doc_id)))
            session.execute(delete(ChunkRow).where(ChunkRow.doc_id == doc_id))
            values = dict(
                collection=collection,
                file_name=file_name,
                title=parsed.title,
                sha256=parsed.sha256,
                pages=parsed.page_count,
                pages_without_text=json.dumps(list(parsed.pages_without_text)),
                chunks=len(drafts),
                version=version,
                ingested_at=utc_now(),
                pdf_path=str(pdf_path),
                pipeline=pipeline,
                instruction_pages=json.dumps(instruction_pages(drafts)),
                media_type=parsed.media_type,
                page_labels=json.dumps(parsed.page_labels) if parsed.page_labels else None,
                ocr_pages=json.dumps(parsed.ocr_pages) if parsed.ocr_pages else None,
            )
            if tags is not None or not existing:  # a replaced version keeps its tags
                values["tags"] = json.dumps(list(tags or ()))
            if existing:
                session.execute(
                    update(DocumentRow).where(DocumentRow.doc_id == doc_id).values(**values)
                )
            else:
                session.add(DocumentRow(doc_id=doc_id, **values))
            session.flush()
            session.add_all(
                ChunkRow(
                    id=chunk_id,
                    doc_id=doc_id,
                    collection=collection,
                    ordinal=i,
                    page_start=d.page_start,
                    page_end=d.page_end,
                    heading_path=json.dumps(list(d.heading_path)),
                    char_start=d.char_start,
                    char_end=d.char_end,
                    text=d.text,
                    content_hash=d.content_hash,
                    page_break=d.page_break,
                    **_sentence_columns(sentences[i] if sentences else None),
                )
                for i, (chunk_id, d) in enumerate(zip(ids, drafts, strict=True))
            )
            self._bump(session, collection)
        return old_ids

    # Writes in flight ----------------------------------------------------------------------

    def _begin_write(self, writer: str, collection: str, ids: Sequence[str], pdf: Path) -> str:
        key = uuid.uuid4().hex
        with Session(self.engine) as session, session.begin():
            session.add(
                PendingWriteRow(
                    id=key,
                    writer=writer,
                    collection=collection,
                    chunk_ids=json.dumps(list(ids)),
                    pdf_path=str(pdf),
                    started_at=utc_now(),
                )
            )
        return key

    def _end_write(self, key: str) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(delete(PendingWriteRow).where(PendingWriteRow.id == key))

    def pending_writers(self) -> list[str]:
        """Who has a document write in flight (or left one behind)."""
        with Session(self.engine) as session:
            return sorted(set(session.scalars(select(PendingWriteRow.writer))))

    def discard_pending(self, writer: str) -> int:
        """Remove what ``writer``'s uncommitted writes left (vectors, PDF files); only call it
        when that writer is known to be dead or done. Returns how many writes were undone."""
        with Session(self.engine) as session:
            rows = list(
                session.scalars(select(PendingWriteRow).where(PendingWriteRow.writer == writer))
            )
            referenced = set(session.scalars(select(DocumentRow.pdf_path)))
        for row in rows:
            ids = json.loads(row.chunk_ids)
            with Session(self.engine) as session:  # ids a commit made live stay (none should)
                live = set(session.scalars(select(ChunkRow.id).where(ChunkRow.id.in_(ids))))
            self.index.delete(row.collection, [i for i in ids if i not in live])
            if row.pdf_path not in referenced:
                Path(row.pdf_path).unlink(missing_ok=True)
            self._end_write(row.id)
        return len(rows)

    def _bump(self, session: Session, collection: str) -> None:
        session.execute(
            update(CollectionRow)
            .where(CollectionRow.name == collection)
            .values(revision=CollectionRow.revision + 1)
        )

    def delete_document(self, doc_id: str) -> DocumentInfo:
        with Session(self.engine) as session, session.begin():
            row = session.get(DocumentRow, doc_id)
            if row is None:
                raise NotFoundError(f"No document with id {doc_id}.")
            info = _document_info(row)
            ids = list(session.scalars(select(ChunkRow.id).where(ChunkRow.doc_id == doc_id)))
            session.execute(delete(ChunkRow).where(ChunkRow.doc_id == doc_id))
            # a deleted middle version's newer version now supersedes its earlier one
            newer = update(DocumentRow).where(DocumentRow.supersedes == doc_id)
            session.execute(newer.values(supersedes=row.supersedes))
            session.delete(row)
            self._bump(session, info.collection)
        self.index.delete(info.collection, ids)
        Path(info.pdf_path).unlink(missing_ok=True)
        return info

    # Chunks --------------------------------------------------------------------------------

    def chunks(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """Chunks by id; ids of replaced or deleted versions are silently absent."""
        if not ids:
            return {}
        found: dict[str, Chunk] = {}
        with Session(self.engine) as session:
            for start in range(0, len(ids), 500):
                rows = session.execute(
                    select(ChunkRow, DocumentRow)
                    .join(DocumentRow, DocumentRow.doc_id == ChunkRow.doc_id)
                    .where(ChunkRow.id.in_(list(ids[start : start + 500])))
                ).all()
                for chunk_row, doc_row in rows:
                    found[chunk_row.id] = _chunk(chunk_row, doc_row)
        return found

    def sentence_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The sentence vectors of these chunks (rows in the order of ``Chunk.sentences``);
        chunks stored without them are absent."""
        found: dict[str, np.ndarray] = {}
        with Session(self.engine) as session:
            for start in range(0, len(ids), 500):
                rows = session.execute(
                    select(ChunkRow.id, ChunkRow.sentence_spans, ChunkRow.sentence_vectors).where(
                        ChunkRow.id.in_(list(ids[start : start + 500])),
                        ChunkRow.sentence_vectors.is_not(None),
                    )
                )
                for chunk_id, spans, blob in rows:
                    count = len(json.loads(spans or "[]"))
                    if count and blob:
                        matrix = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
                        found[chunk_id] = matrix.reshape(count, -1)
        return found

    def chunk_ids(self, collection: str, doc_ids: Sequence[str]) -> list[str]:
        docs = list(dict.fromkeys(doc_ids))
        found: list[str] = []
        with Session(self.engine) as session:
            for start in range(0, len(docs), 500):
                found.extend(
                    session.scalars(
                        select(ChunkRow.id)
                        .where(
                            ChunkRow.collection == collection,
                            ChunkRow.doc_id.in_(docs[start : start + 500]),
                        )
                        .order_by(ChunkRow.doc_id, ChunkRow.ordinal)
                    )
                )
        return found

    def chunk_refs(self, collection: str) -> list[tuple[str, str]]:
        """(chunk id, doc id) in ``collection_chunks``' order, without the texts."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(ChunkRow.id, ChunkRow.doc_id)
                .where(ChunkRow.collection == collection)
                .order_by(ChunkRow.doc_id, ChunkRow.ordinal)
            )
            return [(chunk_id, doc_id) for chunk_id, doc_id in rows]

    def collection_chunks(self, collection: str) -> list[Chunk]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(ChunkRow, DocumentRow)
                .join(DocumentRow, DocumentRow.doc_id == ChunkRow.doc_id)
                .where(ChunkRow.collection == collection)
                .order_by(ChunkRow.doc_id, ChunkRow.ordinal)
            ).all()
            return [_chunk(c, d) for c, d in rows]
