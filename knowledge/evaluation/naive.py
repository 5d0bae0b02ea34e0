"""The tutorial pipeline, kept as a yardstick for `kdesk eval --pipeline naive`:
pypdf page text (one document per page), recursive character splitter 1000/200, the same
embedding model, vector-only top-k by exact cosine search."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from knowledge.core.errors import KdeskError
from knowledge.evaluation.retrieval import Hit
from knowledge.search.embeddings import Embedder


def _fingerprint(files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for f in files:
        stat = f.stat()
        digest.update(f"{f.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def _page_texts(path: Path) -> list[str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    if reader.is_encrypted:
        reader.decrypt("")
    return [page.extract_text() or "" for page in reader.pages]


class NaivePipeline:
    def __init__(self, embedder: Embedder, cache_dir: Path) -> None:
        self.embedder = embedder
        self.cache_dir = cache_dir
        self.meta: list[tuple[str, int, int]] = []  # (doc, page, chars)
        self.vectors = np.zeros((0, 384), dtype=np.float32)
        self.ingest_seconds: dict[str, float] = {}  # filled when built, not when reused

    def ingest(self, docs_dir: Path) -> None:
        """Build (or reuse, when the files are unchanged) the naive index of a folder."""
        import time

        try:
            from langchain_text_splitters import RecursiveCharacterTextSplitter
        except ImportError:
            raise KdeskError(
                "The naive baseline needs LangChain's splitter: pip install 'knowledge-desk[eval]'"
            ) from None

        files = sorted(docs_dir.glob("*.pdf"))
        key = self.cache_dir / f"{docs_dir.resolve().parent.name}-{_fingerprint(files)}"
        if (key / "vectors.npy").exists():
            self.vectors = np.load(key / "vectors.npy")
            self.meta = [tuple(m) for m in json.loads((key / "meta.json").read_text())]  # type: ignore[misc]
            return
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
        texts: list[str] = []
        started = time.perf_counter()
        for f in files:
            try:
                pages = _page_texts(f)
            except Exception:  # noqa: BLE001 - the baseline simply skips unreadable files
                continue
            for number, text in enumerate(pages, start=1):
                for piece in splitter.split_text(text):
                    texts.append(piece)
                    self.meta.append((f.name, number, len(piece)))
        parsed = time.perf_counter()
        self.vectors = self.embedder.embed_documents(texts)
        total = time.perf_counter() - started
        page_count = len({(doc, page) for doc, page, _ in self.meta})
        self.ingest_seconds = {
            "pages": page_count,
            "extract_s": round(parsed - started, 1),
            "embed_s": round(total - (parsed - started), 1),
            "pages_per_s": round(page_count / total, 2),
        }
        key.mkdir(parents=True, exist_ok=True)
        np.save(key / "vectors.npy", self.vectors)
        (key / "meta.json").write_text(json.dumps(self.meta))

    def search(self, query: str, k: int = 10) -> list[Hit]:
        if not len(self.vectors):
            return []
        scores = self.vectors @ self.embedder.embed_query(query)
        top = np.argsort(-scores)[:k]
        return [
            Hit(
                self.meta[i][0],
                self.meta[i][1],
                self.meta[i][1],
                self.meta[i][2],
                round(float(scores[i]), 4),
            )
            for i in top
        ]
