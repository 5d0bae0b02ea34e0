"""Index freshness for `kdesk bench`: how fast a replica is ready at a cold start (indexes loaded
from the indexes directory vs built), and after an upload in another process (a worker) how
long until a replica with the refresher running serves the new document, and how slow its
queries are meanwhile."""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from knowledge.search.embeddings import Embedder
from knowledge.search.indexes import MemoryIndexes
from knowledge.search.retrieval import Retriever
from knowledge.search.store import KnowledgeStore

FRESH_QUESTION = "What is the quokka relocation stipend for staff moving abroad?"
FRESH_TEXT = (
    "Quokka relocation stipend: staff moving abroad receive a quokka relocation stipend of "
    "4,000 euros, paid with the first salary in the new country."
)
SERVE_DEADLINE_S = 180.0


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def bench_freshness(
    store: KnowledgeStore,
    embedder: Embedder,
    indexes_dir: Path,
    collection: str,
    *,
    title_weight: int = 2,
    candidates: int = 40,
    refresh_s: float = 2.0,
) -> dict[str, object]:
    """Cold start (built and saved, then loaded by a second instance) and an upload by another
    process while this one, refreshing in the background, keeps answering."""
    shutil.rmtree(indexes_dir, ignore_errors=True)
    started = time.perf_counter()
    MemoryIndexes(store, title_weight, indexes_dir).prepare(collection)
    built_ms = _ms(started)
    folders = list(indexes_dir.glob("*/rev-*"))
    disk_mb = sum(f.stat().st_size for d in folders for f in d.rglob("*") if f.is_file()) / 2**20

    replica = Retriever(
        store, embedder, candidates=candidates, title_weight=title_weight, indexes_dir=indexes_dir
    )
    started = time.perf_counter()
    replica.keywords.prepare(collection)
    loaded_ms = _ms(started)
    started = time.perf_counter()
    replica.search(FRESH_QUESTION, [collection], 5)
    first_search_ms = _ms(started)
    assert replica.keywords.made == {"loaded": 1}, replica.keywords.made
    held = replica.keywords._indexes[collection]
    figures: dict[str, object] = {
        "chunks_indexed": len(held.ids),
        "cold_start_built_ms": built_ms,
        "cold_start_loaded_ms": loaded_ms,
        "first_search_after_load_ms": first_search_ms,
        "saved_mb": round(disk_mb, 1),
    }
    try:
        figures["after_upload_elsewhere"] = _upload_elsewhere(
            store, embedder, replica, indexes_dir, collection, title_weight, refresh_s
        )
    finally:  # the collection as it was, for the next measurements
        if (fresh := store.find_document(collection, "fresh.pdf")) is not None:
            store.delete_document(fresh.doc_id)
    return figures


def _upload_elsewhere(
    store: KnowledgeStore,
    embedder: Embedder,
    replica: Retriever,
    indexes_dir: Path,
    collection: str,
    title_weight: int,
    refresh_s: float,
) -> dict[str, object]:
    vector = embedder.embed_query(FRESH_QUESTION)
    rng = np.random.default_rng(3)
    vectors = vector + rng.normal(0, 0.01, (3, len(vector)))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    events: queue.Queue[tuple[str, float]] = queue.Queue()
    seen: dict[str, float] = {}
    latencies: list[float] = []
    served_at = None
    with tempfile.TemporaryDirectory(prefix="kdesk-worker-") as tmp:
        np.save(Path(tmp) / "vectors.npy", vectors)
        worker = subprocess.Popen(  # another process, as `kdesk worker` is
            [
                sys.executable,
                "-m",
                "knowledge.evaluation.index_bench",
                store.engine.url.render_as_string(hide_password=False),
                str(store.files_dir),
                str(indexes_dir),
                str(title_weight),
                collection,
                str(Path(tmp) / "vectors.npy"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=_read_events, args=(worker, events), daemon=True).start()
        replica.keywords.start_refresh(refresh_s, warm=False)
        try:
            seen.update([events.get(timeout=SERVE_DEADLINE_S)])  # ("ready", time)
            while time.time() < seen["ready"] + SERVE_DEADLINE_S and worker.poll() in (None, 0):
                with contextlib.suppress(queue.Empty):
                    seen.update([events.get_nowait()])
                started = time.perf_counter()
                results = replica.search(FRESH_QUESTION, [collection], 5)
                latencies.append((time.perf_counter() - started) * 1000)
                if "committed" in seen and any(r.chunk.file_name == "fresh.pdf" for r in results):
                    served_at = time.time()
                    break
            worker.wait(SERVE_DEADLINE_S)
            while not events.empty():
                seen.update([events.get()])
        finally:
            replica.keywords.stop_refresh()
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    committed, saved = seen.get("committed"), seen.get("saved")
    during = np.asarray(latencies or [0.0])
    return {
        "worker_prepare_ms": round((saved - committed) * 1000, 1) if committed and saved else None,
        "commit_to_served_s": round(served_at - committed, 2) if served_at and committed else None,
        "saved_to_served_s": round(served_at - saved, 2) if served_at and saved else None,
        "replica_made": dict(replica.keywords.made),
        "queries_meanwhile": len(latencies),
        "query_ms_meanwhile": {
            "p50": round(float(np.percentile(during, 50)), 1),
            "p95": round(float(np.percentile(during, 95)), 1),
            "max": round(float(during.max()), 1),
        },
    }


def _read_events(worker: subprocess.Popen[str], events: queue.Queue[tuple[str, float]]) -> None:
    assert worker.stdout is not None
    for line in worker.stdout:
        if line.startswith("{"):
            message = json.loads(line)
            events.put((message["event"], message["at"]))


def _event(name: str) -> None:
    print(json.dumps({"event": name, "at": time.time()}), flush=True)


def upload_in_worker(
    database_url: str,
    files_dir: str,
    indexes_dir: str,
    title_weight: int,
    collection: str,
    vectors: np.ndarray,
) -> None:
    """Another process, like `kdesk worker`: holds the collection's indexes (loaded from disk),
    stores a document, then prepares and saves the new revision's indexes."""
    from ingest.chunking import ChunkDraft
    from ingest.document import Page, ParsedDocument
    from knowledge.core.db import make_engine
    from knowledge.search.vectors import ExactIndex

    # its own vector index: the new chunks' vectors; the others come mapped from disk
    store = KnowledgeStore(make_engine(database_url), ExactIndex(), Path(files_dir))
    keywords = MemoryIndexes(store, title_weight, Path(indexes_dir))
    keywords.prepare(collection)
    _event("ready")
    drafts = [
        ChunkDraft(FRESH_TEXT, 1, 1, (), i * 200, i * 200 + len(FRESH_TEXT), f"fresh-{i}")
        for i in range(len(vectors))
    ]
    parsed = ParsedDocument("Relocation", (Page(1, FRESH_TEXT),), "f" * 64)
    with keywords.changing(collection):
        store.put_document(collection, "fresh.pdf", parsed, drafts, vectors, b"%PDF-1.4")
        _event("committed")
        keywords.prepare(collection)
    _event("saved")


if __name__ == "__main__":
    url, files, indexes, weight, name, vectors_file = sys.argv[1:7]
    upload_in_worker(url, files, indexes, int(weight), name, np.load(vectors_file))
