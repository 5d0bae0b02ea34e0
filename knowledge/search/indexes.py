"""Search indexes per collection: BM25 over the chunks, BM25 over the documents' profiles, and
the chunk vectors for exact search. Made ready when a collection's revision moves: loaded from
the indexes directory where another process saved that revision, else built (and saved)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from knowledge.core import metrics
from knowledge.core.text import light_stem
from knowledge.core.types import Chunk
from knowledge.search import bm25_build, index_files
from knowledge.search.index_files import CollectionIndex, IndexFileError
from knowledge.search.store import KnowledgeStore
from knowledge.search.texts import keyword_text, profile_text

# Up to this many chunks a collection's vectors are also held in memory and searched exactly:
# as fast as the HNSW graph here (the query embedding dominates) and never misses a neighbour
EXACT_SEARCH_MAX = 300_000
WAIT_STEP_S = 0.2  # how often a background refresh looks for another process's saved indexes

log = logging.getLogger("kdesk.indexes")


class MemoryIndexes:
    """Search indexes per collection, made ready when the collection's revision moves: BM25
    over the chunks, BM25 over the documents' profiles, and the chunk vectors for exact
    search. With a ``directory`` (settings.indexes_dir) they are saved there once built and
    loaded (memory-mapped) by every other process instead of built again.

    With the refresher running (``start_refresh``, the app's replicas) a request never waits
    for a rebuild while an older index is held: it is served the held one, and the new revision
    is loaded or built in the background. Without it (the CLI, tests) a request after a change
    makes the new revision ready first, as a one-shot process needs."""

    def __init__(
        self, store: KnowledgeStore, title_weight: int = 2, directory: Path | None = None
    ) -> None:
        self._store = store
        self._title_weight = title_weight
        self.directory = directory
        self._indexes: dict[str, CollectionIndex] = {}
        self._ready: dict[str, int] = {}  # the revision last made ready (also when empty)
        self._guard = threading.Lock()  # guards the dicts of locks and threads
        self._locks: dict[str, threading.Lock] = {}  # per collection: one load or build
        self._refreshing: dict[str, threading.Thread] = {}  # per collection: single flight
        self._refresher: threading.Thread | None = None
        self._stop = threading.Event()
        self.serve_stale = False  # set by start_refresh: requests never wait for a rebuild
        self.made: Counter[str] = Counter()  # "loaded" / "built": indexes made ready here

    def prepare(self, collection: str) -> None:
        """Make the collection's indexes current now: loaded if saved, else built and saved."""
        self._current(collection)

    @contextlib.contextmanager
    def changing(self, collection: str) -> Iterator[None]:
        """Around a change after which this process prepares the collection's indexes: other
        processes refreshing in the background wait for them instead of building their own."""
        if self.directory is None:
            yield
            return
        with index_files.building(self.directory, collection):
            yield

    def _index(self, collection: str) -> CollectionIndex | None:
        revision = self._store.revision(collection)
        held = self._indexes.get(collection)
        if held is not None and held.revision == revision:
            return held
        if held is not None and self.serve_stale:
            self._refresh_later(collection)
            return held
        return self._current(collection, stale_ok=self.serve_stale)

    def _lock_for(self, collection: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(collection, threading.Lock())

    def _current(self, collection: str, *, stale_ok: bool = False) -> CollectionIndex | None:
        """The index of the collection's current revision: loaded from disk where saved, else
        built from the store and saved. ``stale_ok`` (a cold process refreshing in the
        background): an older saved revision is served while the new one is made."""
        with self._lock_for(collection):
            revision = self._store.revision(collection)  # read under the lock: the newest
            held = self._indexes.get(collection)
            if held is not None and held.revision == revision:
                return held
            if held is None and self._ready.get(collection) == revision:
                return None  # empty at this revision
            started = time.perf_counter()
            saved = self._saved(collection)
            if revision in saved and (loaded := self._load(collection, revision)) is not None:
                return self._publish(collection, loaded, "loaded", started)
            base = held
            older = [r for r in saved if r < revision]
            if base is None and older:  # its vectors and profiles need not be computed again
                base = self._load(collection, older[0])
                if base is not None and stale_ok:
                    self._publish(collection, base, "loaded", started)
                    self._refresh_later(collection)
                    return base
            with self.changing(collection):
                built = self._build(collection, revision, base)
                if built is not None:
                    self._save(collection, built)
            if built is None:
                self._indexes.pop(collection, None)
                self._ready[collection] = revision
                return None
            return self._publish(collection, built, "built", started)

    def _publish(
        self, collection: str, index: CollectionIndex, how: str, started: float
    ) -> CollectionIndex:
        self._indexes[collection] = index
        self._ready[collection] = index.revision
        self.made[how] += 1
        metrics.INDEX_LOADS.labels(how).inc()
        metrics.INDEX_LOAD_SECONDS.labels(how).observe(time.perf_counter() - started)
        return index

    def _saved(self, collection: str) -> list[int]:
        if self.directory is None:
            return []
        return index_files.revisions(index_files.collection_folder(self.directory, collection))

    def _load(self, collection: str, revision: int) -> CollectionIndex | None:
        assert self.directory is not None
        try:
            return index_files.load(self.directory, collection, revision, self._title_weight)
        except IndexFileError as exc:  # rebuilt, and the folder replaced by a good one
            log.warning("saved search index not usable: %s", exc)
            index_files.discard(self.directory, collection, revision)
            return None

    def _save(self, collection: str, index: CollectionIndex) -> None:
        if self.directory is None:
            return
        try:
            index_files.save(self.directory, collection, index, self._title_weight)
            index_files.prune(self.directory, collection, self._store.revision(collection))
        except OSError:  # a full or read-only disk: this process still has the index
            log.exception("search index of %s not saved", collection)

    def _build(
        self, collection: str, revision: int, base: CollectionIndex | None
    ) -> CollectionIndex | None:
        """The index of the store's chunks (read after ``revision``: at least that new). With
        a ``base`` holding its chunks' token ids only the new chunks are read and tokenized;
        the BM25 matrix is made again from the token ids (the same as a build from scratch)."""
        if base is not None and base.tokens is not None:
            refs = self._store.chunk_refs(collection)
            if not refs:
                return None
            ids = [chunk_id for chunk_id, _ in refs]
            old_rows = np.asarray([base.rows.get(i, -1) for i in ids], dtype=np.int64)
            new_ids = [ids[int(r)] for r in np.flatnonzero(old_rows < 0)]
            new_chunks = self._store.chunks(new_ids)
            if len(new_chunks) == len(new_ids):  # else changed meanwhile: built from scratch
                tokenizer = bm25_build.copy_tokenizer(base.tokenizer)
                texts = [keyword_text(new_chunks[i], self._title_weight) for i in new_ids]
                new = bm25_build.tokenize(tokenizer, texts)
                tokens = bm25_build.assemble(base.tokens, old_rows, new)
                return self._assemble(
                    collection, revision, base, refs, tokenizer, tokens, new_chunks
                )
        chunks = self._store.collection_chunks(collection)
        if not chunks:
            return None
        tokenizer = bm25_build.new_tokenizer()
        tokens = bm25_build.tokenize(
            tokenizer, [keyword_text(c, self._title_weight) for c in chunks]
        )
        refs = [(c.id, c.doc_id) for c in chunks]
        by_id = {c.id: c for c in chunks}
        return self._assemble(collection, revision, base, refs, tokenizer, tokens, by_id)

    def _assemble(
        self,
        collection: str,
        revision: int,
        base: CollectionIndex | None,
        refs: list[tuple[str, str]],
        tokenizer: object,
        tokens: bm25_build.TokenCache,
        read: dict[str, Chunk],
    ) -> CollectionIndex:
        """The index of the chunks ``refs`` (id, doc id) with their token ids; ``read``: the
        chunks read from the store (all, or those new since ``base``)."""
        import bm25s

        vocabulary = tokenizer.get_vocab_dict()  # type: ignore[attr-defined]
        bm25 = bm25_build.build(tokens, len(vocabulary))
        ids = [chunk_id for chunk_id, _ in refs]
        doc_ids = np.asarray([doc_id for _, doc_id in refs])
        by_doc: dict[str, list[str]] = {}
        for chunk_id, doc_id in refs:  # in document order: the first chunks open the document
            by_doc.setdefault(doc_id, []).append(chunk_id)
        known = base.profiles if base is not None else {}
        profiles = {}  # an upload profiles only the new documents
        for members in by_doc.values():
            profile = known.get(members[0])
            if profile is None:
                missing = [i for i in members if i not in read]
                found = {**read, **self._store.chunks(missing)} if missing else read
                chunks = [found[i] for i in members if i in found]
                profile = profile_text(chunks, self._title_weight)
            profiles[members[0]] = profile
        profile_tokenizer = bm25_build.new_tokenizer()
        profile_tokens = profile_tokenizer.tokenize(
            list(profiles.values()), return_as="ids", show_progress=False
        )
        profile_bm25 = bm25s.BM25()
        profile_bm25.index(profile_tokens, show_progress=False)
        vectors = has_vector = None
        if len(ids) <= EXACT_SEARCH_MAX:
            vectors, has_vector = self._vectors(collection, ids, base)
        return CollectionIndex(
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
            profiles,
            tokens=tokens,
        )

    # Refreshing in the background ----------------------------------------------------------

    def _refresh_later(self, collection: str) -> None:
        """Make the collection's current revision ready in a background thread (one at a time
        per collection; a request meanwhile is served the index held)."""
        with self._guard:
            running = self._refreshing.get(collection)
            if running is not None and running.is_alive():
                return
            thread = threading.Thread(
                target=self._refresh, args=(collection,), name="kdesk-index-refresh", daemon=True
            )
            self._refreshing[collection] = thread
        thread.start()

    def _refresh(self, collection: str) -> None:
        try:
            # a process that changed the collection saves its indexes: wait for them rather
            # than build the same thing here (the held index serves meanwhile)
            deadline = time.monotonic() + index_files.MARKER_MAX_AGE_S
            while self.directory is not None and time.monotonic() < deadline:
                revision = self._store.revision(collection)
                if revision in self._saved(collection):
                    break
                if not index_files.someone_building(self.directory, collection):
                    break
                if self._stop.wait(WAIT_STEP_S):
                    return
            self._current(collection, stale_ok=True)
        except Exception:  # noqa: BLE001 - a failed refresh leaves the held index serving
            log.exception("search index of %s not refreshed", collection)
        finally:
            with self._guard:
                if self._refreshing.get(collection) is threading.current_thread():
                    del self._refreshing[collection]

    def refresh_once(self, warm: bool = True) -> None:
        """One look at every collection's revision (one SQL query): those held (with ``warm``:
        all) whose revision moved are refreshed in the background."""
        current = self._store.revisions()
        names = set(self._indexes) | (set(current) if warm else set())
        for name in sorted(names):
            if self._ready.get(name, -2) != current.get(name, -1):
                self._refresh_later(name)

    def start_refresh(self, interval_s: float, *, warm: bool = True) -> None:
        """Poll the collections' revisions every ``interval_s`` in a daemon thread and refresh
        the indexes that moved in the background; requests meanwhile are served the indexes
        held. ``warm``: also load every collection's indexes at start (a cold replica)."""
        with self._guard:
            self.serve_stale = True
            if self._refresher is not None and self._refresher.is_alive():
                return
            self._stop.clear()
            self._refresher = threading.Thread(
                target=self._poll, args=(interval_s, warm), name="kdesk-index-poll", daemon=True
            )
            self._refresher.start()

    def stop_refresh(self, timeout: float = 30.0) -> None:
        """Stop the refresher and wait for refreshes under way (requests then make changed
        indexes ready themselves again)."""
        self._stop.set()
        with self._guard:
            threads = [self._refresher, *self._refreshing.values()]
            self._refresher = None
            self.serve_stale = False
        for thread in threads:
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)

    def _poll(self, interval_s: float, warm: bool) -> None:
        while not self._stop.is_set():
            try:
                self.refresh_once(warm)
            except Exception:  # noqa: BLE001 - the database away for a moment: try again
                log.exception("search index refresh failed")
            self._stop.wait(interval_s)

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
        self, collection: str, ids: list[str], previous: CollectionIndex | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of ``ids`` in their order; those already held (in memory or mapped
        from disk) are kept, only the new ones are read from the vector index (an upload does
        not reload a large collection)."""
        old_rows = np.full(len(ids), -1, dtype=np.int64)
        dimension = 0
        if previous is not None and previous.vectors is not None:
            assert previous.has_vector is not None
            old_rows = np.asarray([previous.rows.get(i, -1) for i in ids], dtype=np.int64)
            kept = old_rows >= 0
            kept[kept] = np.asarray(previous.has_vector)[old_rows[kept]]
            old_rows[~kept] = -1
            dimension = int(previous.vectors.shape[1]) if kept.any() else 0
        kept = old_rows >= 0
        fetched = self._store.index.get_vectors(
            collection, [ids[int(r)] for r in np.flatnonzero(~kept)]
        )
        if not dimension and fetched:
            dimension = len(next(iter(fetched.values())))
        vectors = np.zeros((len(ids), dimension), dtype=np.float32)
        has_vector = kept.copy()
        if kept.any():
            vectors[kept] = np.asarray(previous.vectors)[old_rows[kept]]  # type: ignore[union-attr]
        for row in np.flatnonzero(~kept):
            found = fetched.get(ids[int(row)])
            if found is not None:
                vectors[row] = found
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
            frequencies = {  # a word of removed chunks only is still in the vocabulary: 0
                word: int(counts[i])
                for word, i in vocabulary.items()
                if i < len(counts) and counts[i]
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
