"""What ingestion hands around: uploads, progress events, the documents under given paths, the
observed report of each file, and the embedding of a document's chunks and sentences."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ingest.chunking import ChunkDraft, chunk_pages
from ingest.document import PDF, DocumentError, ParsedDocument
from ingest.ocr import OcrOptions, ocr_options
from ingest.reader import SUPPORTED_SUFFIXES, read_document
from knowledge.core import metrics
from knowledge.core.text import sentence_spans
from knowledge.core.types import IngestReport
from knowledge.search.duplicates import find_duplicate
from knowledge.search.embeddings import Embedder
from knowledge.search.filters import normalise_tags
from knowledge.search.schema import SentenceVectors
from knowledge.search.texts import embedding_text

if TYPE_CHECKING:  # the desk builds the pipeline; the pipeline only uses its components
    from knowledge.desk.root import Desk

EMBED_BATCH = 64
OCR_STAGE = "reading text (OCR)"
OCR_SHARE = 0.6  # of a file's progress bar: OCR takes seconds a page, embedding far less
_OCR_READY: dict[tuple[str, int, str], OcrOptions] = {}
ingest_log = logging.getLogger("kdesk.ingest")


@dataclass(frozen=True)
class IngestProgress:
    file_index: int  # 0-based
    file_count: int
    file_name: str
    stage: str  # "reading", "embedding", "storing", "done"
    fraction: float  # of this file, 0..1
    pages: int | None = None  # the file's pages, once read
    pages_done: int | None = None  # the pages whose chunks are embedded so far


ProgressCallback = Callable[[IngestProgress], None]


@dataclass(frozen=True)
class Upload:
    file_name: str
    data: bytes
    tags: tuple[str, ...] | None = None  # None: those given to ingest(), else kept on replace
    supersedes: str | None = None  # the doc_id of the earlier version this file replaces


def documents_under(
    paths: Iterable[str | Path], suffixes: Sequence[str] = SUPPORTED_SUFFIXES
) -> list[Path]:
    """Files as given, folders expanded to the files of a supported type inside them
    (recursively, sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes))
        else:
            found.append(path)
    return found


def observed_ingest(report: IngestReport) -> IngestReport:
    """Count the ingested file in the metrics and log it as one JSON line."""
    metrics.observe_ingest(report)
    fields = {k: v for k, v in asdict(report).items() if k != "pages_without_text"}
    ingest_log.info("ingest", extra={"fields": fields})  # a failed file is a result, not a fault
    return report


def ocr_notes(parsed: ParsedDocument, ocr: OcrOptions) -> list[str]:
    """What the report says about pages read by OCR and pages left without text."""
    notes = []
    if parsed.ocr_pages:
        read = ", ".join(str(p) for p in list(parsed.ocr_pages)[:20])
        notes.append(
            f"OCR read {len(parsed.ocr_pages)} page(s): {read} "
            f"(mean confidence {mean_confidence(parsed):.0f}%)"
        )
    empty = parsed.pages_without_text
    if empty:
        missing = ", ".join(str(p) for p in empty[:20])
        if parsed.media_type != PDF:  # a section or slide without text; nothing to OCR
            notes.append(f"{len(empty)} page(s) without text: {missing}")
        elif ocr.reader is None:
            notes.append(
                f"needs OCR: {len(empty)} page(s) without a text layer ({missing}) are not "
                f"indexed; {ocr.unavailable}"
            )
        else:
            notes.append(f"{len(empty)} page(s) without text (blank?): {missing}")
    return notes


def mean_confidence(parsed: ParsedDocument) -> float | None:
    scores = list(parsed.ocr_pages.values())
    return round(sum(scores) / len(scores), 1) if scores else None


def embed_chunks(
    embedder: Embedder,
    title: str,
    drafts: Sequence[ChunkDraft],
    progress: Callable[[float, int], None],
) -> tuple[np.ndarray, list[SentenceVectors]]:
    """Each chunk's vector and its sentences' vectors, from one forward pass per chunk."""
    texts = [embedding_text(title, d.heading_path, d.text) for d in drafts]
    spans = [sentence_spans(d.text) for d in drafts]
    vectors: list[np.ndarray] = []
    sentences: list[SentenceVectors] = []
    for start in range(0, len(texts), EMBED_BATCH):
        batch = slice(start, start + EMBED_BATCH)
        shifted = [  # the embedded text starts with the title and headings
            [(a + len(t) - len(d.text), b + len(t) - len(d.text)) for a, b in s]
            for t, d, s in zip(texts[batch], drafts[batch], spans[batch], strict=True)
        ]
        matrix, pooled = embedder.embed_passages(texts[batch], shifted)
        vectors.append(matrix)
        sentences.extend(zip(spans[batch], pooled, strict=True))
        done = min(len(texts), start + EMBED_BATCH)
        progress(done / len(texts), drafts[done - 1].page_end)  # fraction, pages done
    if not vectors:
        return np.zeros((0, embedder.dimension), dtype=np.float32), []
    return np.concatenate(vectors), sentences


class IngestionPipeline:
    """Files in, searchable documents out: read and check each file, skip it when unchanged,
    chunk it, skip it when a document of another name holds the same content (a duplicate),
    embed its chunks and their sentences, swap it into the store all or nothing, extract a
    contract's clauses, and report what happened to each file."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def ingest(
        self,
        uploads: Sequence[Upload | IngestReport],
        collection: str | None = None,
        progress: ProgressCallback | None = None,
        *,
        contracts: bool = False,
        tags: Sequence[str] | None = None,
        prepare_search: bool = False,
        writer: str = "",
    ) -> list[IngestReport]:
        """Ingest files one by one; a bad file gets a failed report and changes nothing stored.

        ``writer`` names who writes (an ingestion job's id), so that what a dead process left
        half written can be found and removed (``KnowledgeStore.discard_pending``).

        ``prepare_search``: make the collection's search indexes before returning (and save
        them for the other processes, which wait for them meanwhile), so the uploader waits
        for them (with progress) rather than the next person who asks.

        ``tags`` (or an upload's own) are set on each document, also on an unchanged one; with
        none given, a replaced document keeps its tags. Bad tags stop before anything is read.
        Contracts (``contracts=True``, a collection named like "Contracts", or a file that reads
        like one) also get their key clauses extracted into reviewable records."""
        given = None if tags is None else normalise_tags(tags)
        wanted_tags = [
            normalise_tags(item.tags)
            if isinstance(item, Upload) and item.tags is not None
            else given
            for item in uploads
        ]
        target = self.desk.store.ensure_collection(
            collection or self.desk.settings.default_collection
        )
        if not prepare_search:
            return self._ingest_all(uploads, target, progress, contracts, wanted_tags, writer)
        with self.desk.retriever.keywords.changing(target):
            reports = self._ingest_all(uploads, target, progress, contracts, wanted_tags, writer)
            if any(r.status in ("added", "replaced") for r in reports):
                if progress:
                    progress(
                        IngestProgress(
                            len(uploads) - 1, len(uploads), target, "preparing search", 1.0
                        )
                    )
                self.desk.retriever.keywords.prepare(target)
        return reports

    def _ingest_all(
        self,
        uploads: Sequence[Upload | IngestReport],
        target: str,
        progress: ProgressCallback | None,
        contracts: bool,
        wanted_tags: list[tuple[str, ...] | None],
        writer: str = "",
    ) -> list[IngestReport]:
        reports: list[IngestReport] = []
        for i, item in enumerate(uploads):
            if isinstance(item, IngestReport):
                reports.append(observed_ingest(item))
                continue

            def report(
                stage: str,
                fraction: float,
                pages: int | None = None,
                pages_done: int | None = None,
                name: str = item.file_name,
                position: int = i,
            ) -> None:
                if progress:
                    event = IngestProgress(
                        position, len(uploads), name, stage, fraction, pages, pages_done
                    )
                    progress(event)

            ingested = self._ingest_one(item, target, report, contracts, wanted_tags[i], writer)
            reports.append(observed_ingest(ingested))
            report("done", 1.0)
        return reports

    def _ingest_one(
        self,
        upload: Upload,
        collection: str,
        report: Callable[..., None],
        contracts: bool = False,
        tags: tuple[str, ...] | None = None,
        writer: str = "",
    ) -> IngestReport:
        started = time.perf_counter()
        name = upload.file_name
        s = self.desk.settings

        def failed(reason: str) -> IngestReport:
            return IngestReport(
                name, collection, "failed", reason=reason, seconds=time.perf_counter() - started
            )

        report("reading", 0.0)
        existing = self.desk.store.find_document(collection, name)
        pipeline = self.desk.pipeline_fingerprint()
        # the same bytes already stored with their scanned pages read: no OCR again
        already_read = bool(
            existing
            and existing.ocr_pages
            and existing.pipeline == pipeline
            and existing.sha256 == hashlib.sha256(upload.data).hexdigest()
        )
        ocr = OcrOptions(None) if already_read else self._ocr()
        try:
            parsed = read_document(
                upload.data,
                name,
                pdf_engine=s.pdf_engine,
                max_bytes=s.max_upload_mb * 1024 * 1024,
                max_pages=s.max_pages,
                block_chars=s.chunk_size,
                ocr=ocr,
                ocr_progress=lambda step: report(
                    OCR_STAGE, OCR_SHARE * step.done / step.to_read, step.page_count, step.page
                ),
                require_text=not already_read,
            )
        except DocumentError as exc:
            return failed(str(exc))
        if (
            existing
            and existing.sha256 == parsed.sha256
            and existing.pipeline == pipeline
            and set(parsed.ocr_pages) <= set(existing.ocr_pages)  # OCR now: read them
        ):
            self._extract_clauses(existing.doc_id, collection, parsed, contracts, refresh=False)
            if tags is not None and tags != existing.tags:  # new tags need no re-embedding
                existing = self.desk.store.set_tags(existing.doc_id, tags)
            link = self.desk.versions.settle(existing.doc_id, upload.supersedes, propose=False)
            return IngestReport(
                name,
                collection,
                "unchanged",
                pages=existing.pages,
                chunks=existing.chunks,
                seconds=time.perf_counter() - started,
                doc_id=existing.doc_id,
                tags=existing.tags,
                reason="; ".join(link.notes) or None,
                supersedes=link.supersedes,
                proposed_supersedes=link.proposed,
            )
        drafts = chunk_pages(parsed.pages, size=s.chunk_size, overlap=s.chunk_overlap)
        # a file of the same name is replaced as before; under a new name, a copy of a stored
        # document is reported and not indexed twice
        copy = (
            None
            if existing
            else find_duplicate(self.desk.store, collection, name, parsed.sha256, drafts)
        )
        if copy is not None:  # "these are contracts" applies to the stored copy, as when unchanged
            self._extract_clauses(
                copy.document.doc_id, collection, parsed, contracts, refresh=False
            )
            return IngestReport(
                name,
                collection,
                "duplicate",
                pages=parsed.page_count,
                seconds=time.perf_counter() - started,
                reason=copy.reason(),
                doc_id=copy.document.doc_id,
                tags=copy.document.tags,
            )
        start = OCR_SHARE if parsed.ocr_pages else 0.1
        report("embedding", start, parsed.page_count)
        matrix, sentences = embed_chunks(
            self.desk.embedder,
            parsed.title,
            drafts,
            lambda done, pages_done: report(
                "embedding", start + (0.95 - start) * done, parsed.page_count, pages_done
            ),
        )
        report("storing", 0.95)
        try:
            status, doc_id = self.desk.store.put_document(
                collection,
                name,
                parsed,
                drafts,
                matrix,
                upload.data,
                pipeline,
                tags,
                sentences,
                writer=writer,
            )
        except Exception as exc:  # noqa: BLE001 - the store rolled back; report and go on
            return failed(f"could not be stored: {exc}")
        self._extract_clauses(doc_id, collection, parsed, contracts)
        link = self.desk.versions.settle(doc_id, upload.supersedes, propose=existing is None)
        warnings = [*link.notes, *ocr_notes(parsed, ocr)]
        flagged = self.desk.store.document(doc_id).instruction_pages
        if flagged:
            pages = ", ".join(str(p) for p in flagged[:20])
            warnings.append(
                f"text addressed to an AI assistant on page(s) {pages}: never obeyed or quoted"
            )
            ingest_log.warning(
                "instructions in a document", extra={"fields": {"doc_id": doc_id, "pages": flagged}}
            )
        return IngestReport(
            name,
            collection,
            status,
            pages=parsed.page_count,
            pages_without_text=parsed.pages_without_text,
            chunks=len(drafts),
            seconds=time.perf_counter() - started,
            reason="; ".join(warnings) or None,
            doc_id=doc_id,
            tags=tags if tags is not None else existing.tags if existing else (),
            instruction_pages=flagged,
            supersedes=link.supersedes,
            proposed_supersedes=link.proposed,
            ocr_pages=tuple(parsed.ocr_pages),
            ocr_confidence=mean_confidence(parsed),
        )

    def _ocr(self) -> OcrOptions:
        s = self.desk.settings
        if s.ocr == "off":
            return ocr_options(False, s.ocr_languages, s.ocr_dpi)
        key = (s.ocr_languages, s.ocr_dpi, s.ocr_tessdata)
        if key not in _OCR_READY:  # found once per process; a missing engine is looked for again
            options = ocr_options(True, *key)
            if options.reader is None:
                return options
            _OCR_READY[key] = options
        return _OCR_READY[key]

    def _extract_clauses(
        self,
        doc_id: str,
        collection: str,
        parsed: ParsedDocument,
        requested: bool,
        *,
        refresh: bool = True,
    ) -> None:
        """Clause records for a contract; a failure here never fails the ingestion."""
        detect = self.desk.settings.contract_detection
        reason = self.desk.contracts.reason(doc_id, collection, parsed.pages, requested, detect)
        if reason is None or (not refresh and self.desk.contracts.is_contract(doc_id)):
            return
        try:
            self.desk.contracts.extract(doc_id, parsed.pages, reason)
        except Exception:  # noqa: BLE001 - the document is stored and searchable regardless
            ingest_log.exception("clause extraction failed", extra={"fields": {"doc_id": doc_id}})
