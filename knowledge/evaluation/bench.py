"""`kdesk bench`: speed figures, each beside the limit this machine sets for it."""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from ingest.document import Page, ParsedDocument
from knowledge.core.settings import Settings
from knowledge.core.text import sentence_spans
from knowledge.core.types import Usage
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.evaluation.index_bench import bench_freshness
from knowledge.evaluation.usage_bench import bench_usage
from knowledge.search.embeddings import Embedder
from knowledge.search.ranking import focus_query
from knowledge.search.retrieval import Retriever
from knowledge.search.store import KnowledgeStore
from knowledge.search.texts import embedding_text

TOPICS = (
    "annual leave",
    "sick leave",
    "expense claims",
    "hotel allowance",
    "password rules",
    "laptop encryption",
    "data retention",
    "incident reporting",
    "parental leave",
    "overtime",
    "remote work",
    "travel booking",
    "procurement approval",
    "gifts and hospitality",
    "conflicts of interest",
    "whistleblowing",
    "training budget",
    "performance reviews",
)
VERBS = ("must", "may", "should", "shall not", "is required to", "is entitled to")
OBJECTS = (
    "submit the request in the HR portal",
    "obtain written approval from a director",
    "keep itemised receipts for seven years",
    "report the matter within one hour",
    "complete the annual training module",
    "use multi-factor authentication",
    "notify the line manager two weeks in advance",
    "store the records in the archive",
)


def synthetic_page(rng: random.Random, heading: str) -> str:
    paragraphs = [heading]
    for _ in range(4):
        sentences = [
            f"Every employee {rng.choice(VERBS)} {rng.choice(OBJECTS)} for {rng.choice(TOPICS)}"
            f" within {rng.randint(2, 90)} days."
            for _ in range(rng.randint(3, 6))
        ]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


def synthetic_pdfs(count: int, pages: int, seed: int = 7) -> list[Upload]:
    from knowledge.desk.demo import write_pdf

    rng = random.Random(seed)
    uploads = []
    for d in range(count):
        texts = [
            synthetic_page(rng, f"{p + 1}. {rng.choice(TOPICS).title()}") for p in range(pages)
        ]
        uploads.append(Upload(f"policy-{d:03}.pdf", write_pdf(f"Policy {d}", texts)))
    return uploads


def percentiles(values: Sequence[float]) -> dict[str, float]:
    data = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(data, 50)), 1),
        "p95": round(float(np.percentile(data, 95)), 1),
    }


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def bench_ingest(desk: Desk, uploads: Sequence[Upload]) -> dict[str, object]:
    desk.embedder.embed_query("warm-up")  # loading the model is not ingestion
    started = time.perf_counter()
    reports = desk.ingest(uploads, "bench")
    seconds = time.perf_counter() - started
    pages = sum(r.pages for r in reports)
    chunks = desk.store.collection_chunks("bench")
    texts = [embedding_text(c.title, c.heading_path, c.text) for c in chunks]
    embed_started = time.perf_counter()
    desk.embedder.embed_documents(texts)
    embed_seconds = time.perf_counter() - embed_started
    tokens = desk.embedder.count_tokens(texts) if hasattr(desk.embedder, "count_tokens") else 0
    return {
        "files": len(reports),
        "pages": pages,
        "chunks": len(chunks),
        "seconds": round(seconds, 2),
        "pages_per_s": round(pages / seconds, 2),
        "chunks_per_s": round(len(chunks) / seconds, 2),
        "limit": {
            "what": "embedding the same chunks alone (raw model throughput)",
            "chunks_per_s": round(len(chunks) / embed_seconds, 2),
            "tokens_per_s": round(tokens / embed_seconds, 1),
            "pages_per_s": round(pages / embed_seconds, 2),
        },
        "share_of_limit": round(embed_seconds / seconds, 3),
    }


def _fill_store(
    store: KnowledgeStore,
    base_vectors: np.ndarray,
    base_texts: Sequence[str],
    total: int,
    filled: int = 0,
) -> np.ndarray:
    """`total` more chunks (after the ``filled`` already stored) whose vectors are noisy copies
    of real ones (so neighbourhoods look real)."""
    from ingest.chunking import ChunkDraft

    per_doc = 200
    # new documents (not replacing the first ones: file names go on from those stored)
    rng = np.random.default_rng(11 + filled)
    all_vectors = []
    words = " ".join(base_texts).split()
    for d in range(filled // per_doc, (filled + total) // per_doc):
        picks = rng.integers(0, len(base_vectors), per_doc)
        noise = rng.normal(
            0, 0.35 / np.sqrt(base_vectors.shape[1]), (per_doc, base_vectors.shape[1])
        )
        vectors = (
            base_vectors[picks] + noise.astype(np.float32) * np.sqrt(base_vectors.shape[1]) / 4
        )
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        drafts = []
        sentences = []
        for i, p in enumerate(picks):
            extra = " ".join(words[j] for j in rng.integers(0, len(words), 20))
            text = f"{base_texts[int(p)][:600]} {extra}"
            drafts.append(ChunkDraft(text, 1, 1, (), i * 10, i * 10 + len(text), f"{d}-{i}"))
            spans = sentence_spans(text)  # and sentence vectors near the chunk's, as ingest stores
            near = vectors[i] + rng.normal(0, 0.05, (len(spans), vectors.shape[1]))
            sentences.append((spans, near / np.linalg.norm(near, axis=1, keepdims=True)))
        parsed = ParsedDocument(f"Synthetic {d}", (Page(1, ""),), f"{d:064x}")
        store.put_document(
            "scale",
            f"synthetic-{d:05}.pdf",
            parsed,
            drafts,
            vectors,
            b"%PDF-1.4",
            sentences=sentences,
        )
        all_vectors.append(vectors.astype(np.float32))
    return np.concatenate(all_vectors)


def bench_queries(
    settings: Settings, embedder: Embedder, base_texts: Sequence[str], sizes: Sequence[int]
) -> dict[str, object]:
    """Retrieval latency (no generation) at each corpus size, per pipeline: vector only, hybrid
    without the focus re-ranking stage, and the default pipeline on multi-part questions (the
    ones the focus stage re-ranks); beside the limit, and the recall of the vector search
    that retrieval runs and of the HNSW graph alone."""
    base_vectors = embedder.embed_documents(base_texts)
    rng = random.Random(5)
    plain = [
        f"What {rng.choice(VERBS)} an employee do about {rng.choice(TOPICS)}?" for _ in range(40)
    ]
    multi_part = [
        f"In the {rng.choice(TOPICS)} policy: What {rng.choice(VERBS)} an employee do?"
        for _ in range(40)
    ]
    assert all(focus_query(q) != q for q in multi_part)  # the focus stage runs for each
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="kdesk-bench-") as tmp:
        desk = Desk(
            settings.model_copy(update={"data_dir": Path(tmp)}), embedder=embedder, index=None
        )

        def retriever(hybrid: bool = True, focus: bool = True) -> Retriever:
            return Retriever(
                desk.store,
                embedder,
                candidates=settings.candidates,
                title_weight=settings.title_weight,
                hybrid=hybrid,
                focus=focus,
            )

        filled = 0
        vectors_parts = []
        for size in sizes:
            vectors_parts.append(
                _fill_store(desk.store, base_vectors, base_texts, size - filled, filled)
            )
            filled = size
            matrix = np.concatenate(vectors_parts)
            default = retriever()
            built = _first_search_ms(default, plain[0])  # builds the in-memory indexes
            vector_only, hybrid = retriever(hybrid=False, focus=False), retriever(focus=False)
            vector_only.keywords = hybrid.keywords = default.keywords  # built once, as in the app
            results[str(size)] = {
                "chunks": int(matrix.shape[0]),
                "vector_only_ms": _search_ms(vector_only, plain),
                "hybrid_ms": _search_ms(hybrid, plain),
                "default_multi_part_ms": _search_ms(default, multi_part),
                "first_search_after_a_change_ms": built,
                "limit_ms": percentiles([_exact_top10_ms(embedder, matrix, q) for q in plain]),
                "limit": "query embedding + exact brute-force search over the same vectors",
                # what retrieval's vector stage finds (exact search in memory up to
                # EXACT_SEARCH_MAX chunks), and what the HNSW graph alone would
                "recall_at_10": _recall(_vector_stage(default), matrix, embedder, plain),
                "hnsw_recall_at_10": _recall(_hnsw(desk.store), matrix, embedder, plain),
                # a replica's cold start and an upload in another process (index_bench.py)
                "index_freshness": bench_freshness(
                    desk.store,
                    embedder,
                    Path(tmp) / "indexes",
                    "scale",
                    title_weight=settings.title_weight,
                    candidates=settings.candidates,
                    refresh_s=settings.index_refresh_s,
                ),
            }
    return results


def _first_search_ms(retriever: Retriever, query: str) -> float:
    return round(timed(partial(retriever.search, query, ["scale"], 5)), 1)


def _search_ms(retriever: Retriever, queries: Sequence[str]) -> dict[str, float]:
    return percentiles([timed(partial(retriever.search, q, ["scale"], 5)) for q in queries])


def _exact_top10_ms(embedder: Embedder, matrix: np.ndarray, query: str) -> float:
    return timed(partial(_exact_top10, embedder, matrix, query))


def _exact_top10(embedder: Embedder, matrix: np.ndarray, query: str) -> np.ndarray:
    scores = matrix @ embedder.embed_query(query)
    return np.argpartition(-scores, 10)[:10]


def _vector_stage(retriever: Retriever) -> Callable[[str, np.ndarray], list[float]]:
    """Retrieval's vector search: exact in memory up to EXACT_SEARCH_MAX chunks, else HNSW."""

    def found(_query: str, vector: np.ndarray) -> list[float]:
        hits = retriever.keywords.vector_query("scale", vector, 10)
        if hits is None:
            hits = retriever.store.index.query("scale", vector, 10)
        return [score for _, score in hits]

    return found


def _hnsw(store: KnowledgeStore) -> Callable[[str, np.ndarray], list[float]]:
    return lambda _query, vector: [score for _, score in store.index.query("scale", vector, 10)]


def _recall(
    found: Callable[[str, np.ndarray], Sequence[float]],
    matrix: np.ndarray,
    embedder: Embedder,
    queries: Sequence[str],
) -> float:
    """Share of the exact top-10 that a vector search returns (matched by similarity value:
    the index keeps its own ids, and ties between distinct vectors are vanishingly rare)."""
    hits = total = 0
    for q in queries:
        vector = embedder.embed_query(q)
        exact = np.sort(matrix @ vector)[::-1][:10]
        approx = np.asarray(found(q, vector))
        hits += sum(bool(np.any(np.abs(approx - e) < 1e-4)) for e in exact)
        total += len(exact)
    return round(hits / total, 4) if total else 0.0


def bench_first_token(desk: Desk) -> dict[str, object]:
    """Time to first token for a real question, beside the model's own prompt-reading speed."""
    try:
        model = desk.model
        probe = "word " * 400
        started = time.perf_counter()
        usage: Usage = {}  # filled when the stream finishes: read it to the end
        for _ in model.stream(
            [{"role": "user", "content": probe}], temperature=0, max_tokens=1, usage=usage
        ):
            pass
        probe_s = time.perf_counter() - started
        prompt_tokens = int(usage.get("prompt_tokens") or 400)
        stream = desk.ask("Within how many days must an employee submit expense claims?", ["bench"])
        for _ in stream:
            pass
        answer = stream.answer
        return {
            "model": model.name,
            "first_token_ms": round(answer.first_token_ms or 0.0, 1),
            "retrieval_ms": round(answer.retrieval_ms, 1),
            "total_ms": round(answer.total_ms, 1),
            "limit": {
                "what": "the model's own prompt speed on a ~400-token prompt",
                "prompt_tokens_per_s": round(prompt_tokens / probe_s, 1),
            },
        }
    except Exception as exc:  # noqa: BLE001 - a missing model must not hide the other figures
        return {"error": str(exc)}


def run_bench(settings: Settings, quick: bool = False) -> dict[str, object]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    docs, pages = (3, 4) if quick else (30, 10)
    sizes = (2_000,) if quick else (10_000, 100_000)
    with tempfile.TemporaryDirectory(prefix="kdesk-bench-") as tmp:
        desk = Desk(settings.model_copy(update={"data_dir": Path(tmp)}))
        ingest = bench_ingest(desk, synthetic_pdfs(docs, pages))
        base_texts = [c.text for c in desk.store.collection_chunks("bench")]
        queries = bench_queries(settings, desk.embedder, base_texts, sizes)
        first_token = bench_first_token(desk) if not quick else {"skipped": "quick run"}
        usage = bench_usage(desk.embedder.embed_documents, 5_000 if quick else 100_000)
    return {
        "machine": {
            "cores": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "ingest": ingest,
        "query": queries,
        "first_token": first_token,
        "usage_analytics": usage,
        "clauses": _bench_clauses(quick),
        "ocr": _bench_ocr(quick, settings.ocr_languages),
        "formats": _bench_formats(quick),
        "tools": _bench_tools(quick),
        "answer_cache": _bench_cache(settings) if not quick else {"skipped": "quick run"},
        "api": _bench_api(settings, desk.embedder, quick),
    }


def _bench_api(settings: Settings, embedder: Embedder, quick: bool) -> dict[str, object]:
    from knowledge.evaluation.api_bench import bench_api

    try:
        return bench_api(settings, embedder, quick=quick)
    except Exception as exc:  # noqa: BLE001 - a busy port must not hide the other figures
        return {"error": str(exc)}


def _bench_formats(quick: bool) -> list[dict[str, object]]:
    from knowledge.evaluation.formats_bench import bench_formats

    return bench_formats(quick)


def _bench_tools(quick: bool) -> dict[str, object]:
    from knowledge.evaluation.tool_bench import bench_tools

    return dict(bench_tools(quick))


def _bench_cache(settings: Settings) -> dict[str, object]:
    from knowledge.evaluation.cache_bench import bench_cache

    try:
        return bench_cache(settings)
    except Exception as exc:  # noqa: BLE001 - a missing model must not hide the other figures
        return {"error": str(exc)}


def _bench_ocr(quick: bool, languages: str) -> dict[str, object]:
    from knowledge.evaluation.ocr_bench import bench_ocr

    return bench_ocr(ocr_pages(1 if quick else 6), languages)


def ocr_pages(count: int, seed: int = 5) -> list[str]:
    """Policy pages that fit on A4, each under its own heading (not a running header)."""
    rng = random.Random(seed)
    return [synthetic_page(rng, f"Rules on {TOPICS[n % len(TOPICS)]}") for n in range(count)]


def _bench_clauses(quick: bool) -> dict[str, object]:
    from knowledge.evaluation.contract_bench import bench_clauses

    try:
        return bench_clauses(quick)
    except Exception as exc:  # noqa: BLE001 - a missing clause model must not hide the rest
        return {"error": str(exc)}
