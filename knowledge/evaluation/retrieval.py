"""`kdesk eval`: retrieval quality on a dataset of PDFs with questions and gold evidence."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.core.errors import KdeskError
from knowledge.core.types import ScoredChunk

KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class Evidence:
    doc: str
    page: int | None


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    evidence: tuple[Evidence, ...]
    answer: str | None = None  # the reference answer, where the set gives one


@dataclass(frozen=True)
class Hit:
    doc: str
    page: int
    page_end: int
    chars: int
    score: float


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of each non-empty line of a JSONL file."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as exc:
                raise KdeskError(f"{path}:{n}: not JSON ({exc})") from None


def load_questions(dataset: Path, questions_file: Path | None = None) -> list[Question]:
    """The questions of a dataset (``questions_file``: other questions about its docs/)."""
    path = questions_file or dataset / "questions.jsonl"
    if not path.is_file() or not (dataset / "docs").is_dir():
        raise KdeskError(f"{dataset} is not a dataset: it needs docs/ and {path.name}")
    questions = []
    for n, raw in read_jsonl(path):
        try:
            evidence = tuple(Evidence(e["doc"], e.get("page")) for e in raw.get("evidence", []))
            answer = raw.get("answer")
            questions.append(
                Question(
                    str(raw["id"]),
                    raw["question"],
                    evidence,
                    None if answer is None else str(answer),
                )
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise KdeskError(f"{path}:{n}: not a valid question line ({exc})") from None
    return questions


def load_unanswerable(path: Path, datasets: set[str]) -> list[tuple[str, str]]:
    """(dataset, question) pairs of a JSONL file: questions that the dataset's documents do not
    answer although they are on its topic (hard negatives for `kdesk calibrate`)."""
    pairs = []
    for n, raw in read_jsonl(path):
        try:
            name, question = str(raw["dataset"]), str(raw["question"])
        except (KeyError, TypeError) as exc:
            raise KdeskError(f"{path}:{n}: not a valid line ({exc})") from None
        if name not in datasets:
            raise KdeskError(f"{path}:{n}: dataset {name!r} is not among those given")
        pairs.append((name, question))
    return pairs


def is_relevant(hit: Hit, question: Question) -> bool:
    """A page hit where the question has evidence pages, else a document hit."""
    pages = [e for e in question.evidence if e.page is not None]
    if pages:
        return any(
            e.doc == hit.doc and e.page is not None and hit.page <= e.page <= hit.page_end
            for e in pages
        )
    return any(e.doc == hit.doc for e in question.evidence)


def score_question(question: Question, hits: Sequence[Hit]) -> dict[str, object]:
    docs = {e.doc for e in question.evidence}
    pages = [e for e in question.evidence if e.page is not None]
    row: dict[str, object] = {}
    for k in KS:
        top = hits[:k]
        row[f"doc@{k}"] = any(h.doc in docs for h in top) if docs else None
        row[f"page@{k}"] = (
            any(h.doc == e.doc and h.page <= e.page <= h.page_end for h in top for e in pages)  # type: ignore[operator]
            if pages
            else None
        )
    rank = next((r for r, h in enumerate(hits[:10], start=1) if is_relevant(h, question)), None)
    row["rr"] = 1.0 / rank if rank else 0.0
    return row


def _mean(rows: Sequence[dict[str, object]], key: str) -> float | None:
    values = [bool(r[key]) for r in rows if r[key] is not None]
    return round(sum(values) / len(values), 4) if values else None


def summarise(
    dataset: str, k: int, rows: Sequence[dict[str, object]], latencies: Sequence[float]
) -> dict[str, object]:
    by_k = {
        str(kk): {"doc_hit": _mean(rows, f"doc@{kk}"), "page_hit": _mean(rows, f"page@{kk}")}
        for kk in KS
    }
    answerable = [r for r in rows if r[f"doc@{KS[0]}"] is not None]
    ms = np.asarray(latencies) if latencies else np.zeros(1)
    return {
        "dataset": dataset,
        "questions": len(rows),
        "k": k,
        "doc_hit_at_k": _mean(rows, f"doc@{k}") if k in KS else None,
        "page_hit_at_k": _mean(rows, f"page@{k}") if k in KS else None,
        "mrr": round(float(np.mean([float(r["rr"]) for r in answerable])), 4)  # type: ignore[arg-type]
        if answerable
        else 0.0,
        "latency_ms": {
            "p50": round(float(np.percentile(ms, 50)), 1),
            "p95": round(float(np.percentile(ms, 95)), 1),
        },
        "by_k": by_k,
    }


def to_hits(results: Sequence[ScoredChunk]) -> list[Hit]:
    return [
        Hit(
            r.chunk.file_name,
            r.chunk.page_start,
            r.chunk.page_end,
            len(r.chunk.text),
            round(r.score, 4),
        )
        for r in results
    ]


def run_eval(
    dataset: Path,
    search: Callable[[str], list[Hit]],
    k: int,
    details: Path | None = None,
    questions_file: Path | None = None,
) -> dict[str, object]:
    """Run every question through `search` (top 10) and score it."""
    if k not in KS:
        raise KdeskError(f"-k must be one of {', '.join(map(str, KS))}")
    questions = load_questions(dataset, questions_file)
    rows, latencies, lines = [], [], []
    chars: list[int] = []
    spans: list[int] = []
    for q in questions:
        started = time.perf_counter()
        hits = search(q.question)[:10]
        latencies.append((time.perf_counter() - started) * 1000)
        rows.append(score_question(q, hits))
        chars.extend(h.chars for h in hits[:k])
        spans.extend(h.page_end - h.page + 1 for h in hits[:k])
        lines.append({"id": q.id, "results": [h.__dict__ for h in hits]})
    summary = summarise(dataset.name, k, rows, latencies)
    summary["passages"] = {
        "mean_chars": round(float(np.mean(chars)), 1) if chars else 0.0,
        "max_pages": max(spans, default=0),
    }
    if details:
        details.parent.mkdir(parents=True, exist_ok=True)
        with details.open("w", encoding="utf-8") as out:
            for line in lines:
                out.write(json.dumps(line) + "\n")
    return summary


def separation(positives: Sequence[float], negatives: Sequence[float]) -> dict[str, object]:
    """How well a score separates answerable from unanswerable questions: ROC AUC, the
    threshold that maximises balanced accuracy, and both error rates at that threshold."""
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    if not len(pos) or not len(neg):
        raise KdeskError("calibration needs answerable and unanswerable questions")
    # AUC = P(score of a random answerable > score of a random unanswerable)
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    auc = float(greater) / (len(pos) * len(neg))
    candidates = np.unique(np.concatenate([pos, neg]))
    best, best_threshold = -1.0, 0.0
    for t in candidates:
        balanced = ((pos >= t).mean() + (neg < t).mean()) / 2
        if balanced > best:
            best, best_threshold = float(balanced), float(t)
    return {
        "auc": round(auc, 4),
        "threshold": round(best_threshold, 4),
        "balanced_accuracy": round(best, 4),
        "false_abstention_rate": round(float((pos < best_threshold).mean()), 4),
        "false_answer_rate": round(float((neg >= best_threshold).mean()), 4),
        "answerable": len(pos),
        "unanswerable": len(neg),
    }


def rates_at(
    positives: Sequence[float], negatives: Sequence[float], threshold: float
) -> dict[str, float]:
    pos = np.asarray(positives)
    neg = np.asarray(negatives)
    return {
        "threshold": threshold,
        "false_abstention_rate": round(float((pos < threshold).mean()), 4),
        "false_answer_rate": round(float((neg >= threshold).mean()), 4),
    }
