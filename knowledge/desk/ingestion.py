"""What ingestion hands around: uploads, progress events, the PDFs under given paths, the
observed report of each file, and the embedding of a document's chunks and sentences."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ingest.chunking import ChunkDraft
from knowledge.core import metrics
from knowledge.core.text import sentence_spans
from knowledge.core.types import IngestReport
from knowledge.search.embeddings import Embedder
from knowledge.search.indexes import embedding_text
from knowledge.search.schema import SentenceVectors

EMBED_BATCH = 64
ingest_log = logging.getLogger("kdesk.ingest")


@dataclass(frozen=True)
class IngestProgress:
    file_index: int  # 0-based
    file_count: int
    file_name: str
    stage: str  # "reading", "embedding", "storing", "done"
    fraction: float  # of this file, 0..1


ProgressCallback = Callable[[IngestProgress], None]


@dataclass(frozen=True)
class Upload:
    file_name: str
    data: bytes
    tags: tuple[str, ...] | None = None  # None: those given to ingest(), else kept on replace


def pdfs_under(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders expanded to the PDFs inside them (recursively, sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() == ".pdf"))
        else:
            found.append(path)
    return found


def observed_ingest(report: IngestReport) -> IngestReport:
    """Count the ingested file in the metrics and log it as one JSON line."""
    metrics.observe_ingest(report)
    fields = {k: v for k, v in asdict(report).items() if k != "pages_without_text"}
    ingest_log.info("ingest", extra={"fields": fields})  # a failed file is a result, not a fault
    return report


def embed_chunks(
    embedder: Embedder,
    title: str,
    drafts: Sequence[ChunkDraft],
    progress: Callable[[float], None],
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
        progress(min(1.0, (start + EMBED_BATCH) / len(texts)))
    if not vectors:
        return np.zeros((0, embedder.dimension), dtype=np.float32), []
    return np.concatenate(vectors), sentences
