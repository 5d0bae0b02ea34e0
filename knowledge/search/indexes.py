"""In-memory search indexes per collection: BM25 over the chunks, BM25 over the documents'
profiles, and the chunk vectors for exact search; rebuilt when a collection's revision moves."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from knowledge.core.text import light_stem
from knowledge.core.types import Chunk
from knowledge.search.ranking import (
    name_words,
)
from knowledge.search.store import KnowledgeStore

# A document's profile, for questions that name their document: its title, file name and the
# opening of its text (a cover page names the parties of a contract, the issuer of a filing).
PROFILE_CHARS = 2000


PROFILE_NAMES = 30


# Up to this many chunks a collection's vectors are also held in memory and searched exactly:
# as fast as the HNSW graph here (the query embedding dominates) and never misses a neighbour
EXACT_SEARCH_MAX = 300_000


def embedding_text(title: str, heading_path: Sequence[str], text: str) -> str:
    """What is embedded for a chunk: its document title and headings give it context."""
    header = " > ".join([title, *heading_path]) if title else " > ".join(heading_path)
    return f"{header}\n{text}" if header else text


def keyword_text(chunk: Chunk, title_weight: int = 2) -> str:
    """What BM25 indexes: the title (repeated, as questions often name their document), the
    headings and the text."""
    title = " ".join([chunk.title] * title_weight)
    return f"{title} {' '.join(chunk.heading_path)}\n{chunk.text}"


def profile_text(chunks: Sequence[Chunk], title_weight: int = 2) -> str:
    """What a document is known by: the title, the words of its file name, its opening and
    the names it uses most (where a table of contents fills the opening, the parties of a
    contract or the issuer of a filing are still among them)."""
    first = chunks[0]
    file_words = re.sub(r"[_\W]+", " ", first.file_name.rsplit(".", 1)[0])
    opening = ""
    for chunk in chunks:
        if len(opening) >= PROFILE_CHARS:
            break
        opening += " " + chunk.text
    counts = Counter(
        w.lower() for c in chunks for w in name_words(c.text).split() if not w.isdigit()
    )
    names = " ".join(w for w, n in counts.most_common(PROFILE_NAMES) if n > 1)
    title = " ".join([first.title] * title_weight)
    return f"{title} {file_words} {opening[:PROFILE_CHARS]} {names}"


@dataclass
class _CollectionIndex:
    revision: int
    ids: list[str]
    doc_ids: np.ndarray
    tokenizer: object
    bm25: object
    profile_docs: list[str]  # one BM25 row per document: its profile
    profile_tokenizer: object
    profile_bm25: object
    vectors: np.ndarray | None  # row i: the vector of ids[i] (zeros if missing); None: too many
    has_vector: np.ndarray | None
    rows: dict[str, int] = field(init=False)  # chunk id -> its row
    frequencies: dict[str, int] | None = None  # word -> chunks using it, built on first use

    def __post_init__(self) -> None:
        self.rows = {chunk_id: row for row, chunk_id in enumerate(self.ids)}


class MemoryIndexes:
    """In-memory indexes per collection, rebuilt when the collection's revision moves: BM25
    over the chunks, BM25 over the documents' profiles, and the chunk vectors for exact
    search."""

    def __init__(self, store: KnowledgeStore, title_weight: int = 2) -> None:
        self._store = store
        self._title_weight = title_weight
        self._indexes: dict[str, _CollectionIndex] = {}
        # per collection, profile text by a document's first chunk id (which names its
        # version): a rebuild after an upload profiles only the new documents
        self._profiles: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def prepare(self, collection: str) -> None:
        """Build the collection's indexes now, if it changed since they were built."""
        self._index(collection)

    def _index(self, collection: str) -> _CollectionIndex | None:
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
                [keyword_text(c, self._title_weight) for c in chunks],
                return_as="ids",
                show_progress=False,
            )
            bm25 = bm25s.BM25()
            bm25.index(tokens, show_progress=False)
            doc_ids = np.asarray([c.doc_id for c in chunks])
            by_doc: dict[str, list[Chunk]] = {}
            for c in chunks:  # in document order: the first chunks open the document
                by_doc.setdefault(c.doc_id, []).append(c)
            profile_tokenizer = Tokenizer(stopwords="en")
            known = self._profiles.get(collection, {})
            current = {
                members[0].id: known.get(members[0].id) or profile_text(members, self._title_weight)
                for members in by_doc.values()
            }
            self._profiles[collection] = current
            profiles = profile_tokenizer.tokenize(
                list(current.values()),
                return_as="ids",
                show_progress=False,
            )
            profile_bm25 = bm25s.BM25()
            profile_bm25.index(profiles, show_progress=False)
            ids = [c.id for c in chunks]
            vectors = has_vector = None
            if len(ids) <= EXACT_SEARCH_MAX:
                vectors, has_vector = self._vectors(collection, ids, cached)
            built = _CollectionIndex(
                revision,
                ids,
                doc_ids,
                tokenizer,
                bm25,
                list(by_doc),
                profile_tokenizer,
                profile_bm25,
                vectors,
                has_vector,
            )
            self._indexes[collection] = built
            return built

    def query(
        self, collection: str, text: str, k: int, doc_ids: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """Best chunks by BM25, optionally only those of the given documents."""
        index = self._index(collection)
        if index is None:
            return []
        tokens = index.tokenizer.tokenize(  # type: ignore[attr-defined]
            [text], update_vocab=False, return_as="ids", show_progress=False
        )
        mask = None
        if doc_ids is not None:
            mask = np.isin(index.doc_ids, list(doc_ids)).astype(np.float32)
            if not mask.any():
                return []
        k = min(k, len(index.ids))
        positions, scores = index.bm25.retrieve(  # type: ignore[attr-defined]
            tokens, k=k, show_progress=False, weight_mask=mask
        )
        return [
            (index.ids[int(p)], float(s))
            for p, s in zip(positions[0], scores[0], strict=True)
            if s > 0
        ]

    def _vectors(
        self, collection: str, ids: list[str], previous: _CollectionIndex | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of ``ids`` in their order; those already held are kept, only the new
        ones are read from the vector index (an upload does not reload a large collection)."""
        held: dict[str, np.ndarray] = {}
        if previous is not None and previous.vectors is not None:
            assert previous.has_vector is not None
            held = {
                chunk_id: previous.vectors[row]
                for chunk_id, row in previous.rows.items()
                if previous.has_vector[row]
            }
        held.update(self._store.index.get_vectors(collection, [i for i in ids if i not in held]))
        dimension = len(next(iter(held.values()))) if held else 0
        vectors = np.zeros((len(ids), dimension), dtype=np.float32)
        has_vector = np.zeros(len(ids), dtype=bool)
        for row, chunk_id in enumerate(ids):
            if chunk_id in held:
                vectors[row] = held[chunk_id]
                has_vector[row] = True
        return vectors, has_vector

    def vectors_of(self, collection: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors of these chunks: from memory where held, else from the vector index."""
        index = self._index(collection)
        if index is None or index.vectors is None or index.has_vector is None:
            return self._store.index.get_vectors(collection, ids)
        rows = index.rows
        return {i: index.vectors[rows[i]] for i in ids if i in rows and index.has_vector[rows[i]]}

    def vector_query(
        self, collection: str, vector: np.ndarray, k: int, doc_ids: Sequence[str] | None = None
    ) -> list[tuple[str, float]] | None:
        """Nearest chunks by exact cosine search (optionally of the given documents only);
        None where the collection is too large to hold in memory (use the vector index)."""
        index = self._index(collection)
        if index is None:
            return []
        if index.vectors is None or index.has_vector is None:
            return None
        keep = index.has_vector
        if doc_ids is not None:
            keep = keep & np.isin(index.doc_ids, list(doc_ids))
        kept = int(keep.sum())
        if not kept or not index.vectors.shape[1]:
            return []
        # the whole matrix at once, then the mask: selecting rows first would copy it
        scores = index.vectors @ vector.astype(np.float32)
        scores[~keep] = -np.inf
        k = min(k, kept)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(index.ids[int(j)], float(scores[j])) for j in top]

    def term_frequency(self, collection: str) -> tuple[dict[str, int], int]:
        """How many chunks of the collection use each word (BM25's vocabulary) and, under
        "~STEM", the most used word of each stem ("limit" finds "limited"); and how many
        chunks there are."""
        index = self._index(collection)
        if index is None:
            return {}, 0
        if index.frequencies is None:
            counts = np.diff(index.bm25.scores["indptr"])  # type: ignore[attr-defined]
            vocabulary = index.tokenizer.get_vocab_dict()  # type: ignore[attr-defined]
            frequencies = {
                word: int(counts[i]) for word, i in vocabulary.items() if i < len(counts)
            }
            for word, count in list(frequencies.items()):
                stem = "~" + light_stem(word)
                frequencies[stem] = max(frequencies.get(stem, 0), count)
            index.frequencies = frequencies
        return index.frequencies, len(index.ids)

    def document_scores(self, collection: str, text: str) -> dict[str, float]:
        """BM25 of the text against every document's profile (doc id -> score)."""
        index = self._index(collection)
        if index is None:
            return {}
        tokens = index.profile_tokenizer.tokenize(  # type: ignore[attr-defined]
            [text], update_vocab=False, return_as="ids", show_progress=False
        )
        positions, scores = index.profile_bm25.retrieve(  # type: ignore[attr-defined]
            tokens, k=len(index.profile_docs), show_progress=False
        )
        return {
            index.profile_docs[int(p)]: float(s)
            for p, s in zip(positions[0], scores[0], strict=True)
        }
