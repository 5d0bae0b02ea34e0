"""`kdesk clauses train|eval|extract`: training from a `cuad_train`-style set, scoring on a
`cuad_dev`-style set (PDFs + clauses.jsonl), and extraction from PDF files."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ingest.clauses.baseline import keyword_clauses
from ingest.clauses.extract import CATEGORIES, ClauseCandidate, extract_clauses
from ingest.clauses.model import ClauseModel
from ingest.clauses.scoring import Span, score
from ingest.clauses.training import TrainingContract
from ingest.document import ParsedDocument
from ingest.pdf import PdfError, parse_pdf
from knowledge.contracts.book import MODEL_PATH, load_clause_model
from knowledge.core.errors import KdeskError

Log = Callable[[str], None]


def load_training_set(dataset: Path) -> list[TrainingContract]:
    path = dataset / "contracts.jsonl"
    if not path.is_file():
        raise KdeskError(f"{dataset} is not a training set: it needs contracts.jsonl")
    contracts = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            gold = {
                category: [(span["text"], span.get("start")) for span in spans]
                for category, spans in row["clauses"].items()
            }
            contracts.append(TrainingContract(row["doc"], row["text"], gold))
    return contracts


def train_clause_model(
    dataset: Path, out: Path = MODEL_PATH, folds: int = 5, log: Log = print
) -> dict[str, object]:
    from ingest.clauses.training import train

    contracts = load_training_set(dataset)
    log(f"training on {len(contracts)} contracts from {dataset}")
    model = train(contracts, CATEGORIES, folds=folds, log=log)
    model.save(out)
    return {"model": str(out), "bytes": out.stat().st_size, **model.info}


def _parse(path: Path) -> ParsedDocument:
    try:
        return parse_pdf(path.read_bytes(), path.name)
    except (OSError, PdfError) as exc:
        raise KdeskError(f"{path.name}: {exc}") from None


def _records(candidates: Sequence[ClauseCandidate]) -> list[dict[str, object]]:
    return [
        {
            "category": c.category,
            "text": c.text,
            "page": c.page,
            "value": c.value,
            "confidence": c.confidence,
        }
        for c in candidates
    ]


def extract_files(paths: Sequence[Path], model: ClauseModel | None = None) -> dict[str, object]:
    """Clause records of each PDF; the speed counts extraction only, not PDF parsing."""
    model = model or load_clause_model()
    contracts, pages, seconds = [], 0, 0.0
    for path in paths:
        parsed = _parse(path)
        started = time.perf_counter()
        candidates = extract_clauses(parsed.pages, model)
        seconds += time.perf_counter() - started
        pages += parsed.page_count
        contracts.append(
            {"doc": path.name, "pages": parsed.page_count, "clauses": _records(candidates)}
        )
    return {"contracts": contracts, "pages_per_s": _rate(pages, seconds)}


def _rate(pages: int, seconds: float) -> float:
    return round(pages / seconds, 1) if seconds > 0 else 0.0


def load_gold(dataset: Path) -> dict[tuple[str, str], list[Span]]:
    path = dataset / "clauses.jsonl"
    if not path.is_file() or not (dataset / "docs").is_dir():
        raise KdeskError(f"{dataset} is not a clause set: it needs docs/ and clauses.jsonl")
    gold: dict[tuple[str, str], list[Span]] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            pages = row.get("pages") or [None] * len(row["texts"])
            gold[(row["doc"], row["category"])] = [
                Span(text, page) for text, page in zip(row["texts"], pages, strict=True)
            ]
    return gold


def evaluate_clauses(dataset: Path, model: ClauseModel | None = None) -> dict[str, object]:
    """Micro and per-category P/R/F1 of the model and of the keyword baseline, page accuracy
    of correct predictions, and extraction speed (PDF parsing excluded)."""
    model = model or load_clause_model()
    gold = load_gold(dataset)
    docs = sorted({doc for doc, _ in gold})
    predicted: dict[tuple[str, str], list[Span]] = {}
    baseline: dict[tuple[str, str], list[Span]] = {}
    pages, seconds = 0, 0.0
    for doc in docs:
        parsed = _parse(dataset / "docs" / doc)
        started = time.perf_counter()
        candidates = extract_clauses(parsed.pages, model)
        seconds += time.perf_counter() - started
        pages += parsed.page_count
        for c in candidates:
            predicted.setdefault((doc, c.category), []).append(Span(c.text, c.page))
        for c in keyword_clauses(parsed.pages):
            baseline.setdefault((doc, c.category), []).append(Span(c.text, c.page))
    scores = score(predicted, gold, CATEGORIES)
    reference = score(baseline, gold, CATEGORIES)
    return {
        **scores.summary(),
        "pages_per_s": _rate(pages, seconds),
        "contracts": len(docs),
        "pages": pages,
        "baseline": {"name": "keyword rules, sentence-level", **reference.summary()},
    }
