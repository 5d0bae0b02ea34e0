"""Hybrid retrieval: vector + BM25 per collection, fused by reciprocal rank.

The chat, the CLI and `kdesk eval` all call `Retriever.search`: one code path.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from knowledge.embeddings import Embedder
from knowledge.store import KnowledgeStore
from knowledge.types import Chunk, ScoredChunk

RRF_K = 60


def embedding_text(title: str, heading_path: Sequence[str], text: str) -> str:
    """What is embedded for a chunk: its document title and headings give it context."""
    header = " > ".join([title, *heading_path]) if title else " > ".join(heading_path)
    return f"{header}\n{text}" if header else text


def keyword_text(chunk: Chunk) -> str:
    return f"{chunk.title} {chunk.title} {' '.join(chunk.heading_path)}\n{chunk.text}"


@dataclass
class _KeywordIndex:
    revision: int
    ids: list[str]
    tokenizer: object
    bm25: object


class KeywordIndexes:
    """One in-memory BM25 index per collection, rebuilt when the collection's revision moves."""

    def __init__(self, store: KnowledgeStore) -> None:
        self._store = store
        self._indexes: dict[str, _KeywordIndex] = {}
        self._lock = threading.Lock()

    def _index(self, collection: str) -> _KeywordIndex | None:
        revision = self._store.revision(collection)
        cached = self._indexes.get(collection)
        if cached and cached.revision == revision:
            return cached
        with self._lock:
            cached = self._indexes.get(collection)
            if cached and cached.revision == revision:
                return cached
            chunks = self._store.collection_chunks(collection)
            if not chunks:
                self._indexes.pop(collection, None)
                return None
            import bm25s
            from bm25s.tokenization import Tokenizer

            tokenizer = Tokenizer(stopwords="en")
            tokens = tokenizer.tokenize(
                [keyword_text(c) for c in chunks], return_as="ids", show_progress=False
            )
            bm25 = bm25s.BM25()
            bm25.index(tokens, show_progress=False)
            built = _KeywordIndex(revision, [c.id for c in chunks], tokenizer, bm25)
            self._indexes[collection] = built
            return built

    def query(self, collection: str, text: str, k: int) -> list[tuple[str, float]]:
        index = self._index(collection)
        if index is None:
            return []
        tokens = index.tokenizer.tokenize(  # type: ignore[attr-defined]
            [text], update_vocab=False, return_as="ids", show_progress=False
        )
        k = min(k, len(index.ids))
        positions, scores = index.bm25.retrieve(tokens, k=k, show_progress=False)  # type: ignore[attr-defined]
        return [
            (index.ids[int(p)], float(s))
            for p, s in zip(positions[0], scores[0], strict=True)
            if s > 0
        ]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank + 1)
    return fused


class Retriever:
    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        *,
        candidates: int = 40,
        hybrid: bool = True,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.hybrid = hybrid
        self.keywords = KeywordIndexes(store)

    def search(
        self,
        query: str,
        collections: Sequence[str],
        k: int = 5,
        *,
        doc_ids: Sequence[str] | None = None,
    ) -> list[ScoredChunk]:
        """Top-k chunks from the given collections only (the caller's permission filter)."""
        query = query.strip()
        if not query or not collections:
            return []
        vector = self.embedder.embed_query(query)
        fused: dict[str, float] = {}
        similarity: dict[str, float] = {}
        wanted = self.candidates if doc_ids is None else self.candidates * 4
        for collection in collections:
            vector_hits = self.store.index.query(collection, vector, wanted)
            similarity.update(vector_hits)
            rankings = [[i for i, _ in vector_hits]]
            if self.hybrid:
                rankings.append([i for i, _ in self.keywords.query(collection, query, wanted)])
            for chunk_id, score in reciprocal_rank_fusion(rankings).items():
                fused[chunk_id] = fused.get(chunk_id, 0.0) + score
        ranked = sorted(fused, key=fused.__getitem__, reverse=True)
        chunks = self.store.chunks(ranked)
        allowed = set(collections)
        results = [
            chunks[i]
            for i in ranked
            if i in chunks
            and chunks[i].collection in allowed
            and (doc_ids is None or chunks[i].doc_id in doc_ids)
        ][:k]
        self._fill_similarity(results, vector, similarity)
        return [ScoredChunk(c, round(similarity[c.id], 4)) for c in results]

    def _fill_similarity(
        self, results: list[Chunk], vector: np.ndarray, similarity: dict[str, float]
    ) -> None:
        """Keyword-only hits have no vector score yet: fetch their vectors and compute it."""
        missing: dict[str, list[str]] = {}
        for chunk in results:
            if chunk.id not in similarity:
                missing.setdefault(chunk.collection, []).append(chunk.id)
        for collection, ids in missing.items():
            for chunk_id, stored in self.store.index.get_vectors(collection, ids).items():
                similarity[chunk_id] = float(stored @ vector)
        for chunk in results:
            similarity.setdefault(chunk.id, 0.0)
