"""`kdesk eval` and `kdesk calibrate`: retrieval, answers and the evidence model, measured on
datasets of documents with questions and gold evidence."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge.cli import common
from knowledge.core.errors import KdeskError

if TYPE_CHECKING:
    from knowledge.core.types import Answer
    from knowledge.desk.root import Desk
    from knowledge.evaluation.calibration import LabelledSet


def _collection(dataset: Path) -> str:
    return f"eval-{dataset.resolve().name}"


def _ingest(desk: Desk, dataset: Path) -> tuple[str, dict[str, object] | None]:
    """The dataset's docs/ in its collection `eval-NAME` (reused when unchanged)."""
    if not (dataset / "docs").is_dir():
        raise KdeskError(f"{dataset} is not a dataset: it needs docs/ and questions.jsonl")
    collection = _collection(dataset)
    desk.embedder.embed_query("warm-up")  # model loading is not ingestion time
    started = time.perf_counter()
    reports = desk.ingest_paths([dataset / "docs"], collection)
    seconds = time.perf_counter() - started
    for r in reports:
        if r.status == "failed":
            print(f"warning: {r.file_name}: {r.reason}", file=sys.stderr)
    if not any(r.status in ("added", "replaced") for r in reports):
        return collection, None
    pages = sum(r.pages for r in reports)
    return collection, {
        "pages": pages,
        "seconds": round(seconds, 1),
        "pages_per_s": round(pages / seconds, 2),
    }


def cmd_eval(args: argparse.Namespace) -> int:
    desk = common.open_desk()
    dataset = Path(args.dataset)
    questions = Path(args.questions) if args.questions else None
    details = Path(args.details) if args.details else None
    if args.answers:
        summary = _eval_answers(desk, dataset, questions, details, args.model)
    elif args.pipeline == "naive":
        summary = _eval_naive(desk, dataset, args.k, details, questions)
    else:
        summary = _eval_default(desk, dataset, args.k, details, questions)
        if args.pipeline == "both":  # the baseline beside every figure, same process and model
            naive_details = details.with_suffix(".naive.jsonl") if details else None
            summary["naive"] = _eval_naive(desk, dataset, args.k, naive_details, questions)
    if args.json:
        common.print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0


def _eval_default(
    desk: Desk, dataset: Path, k: int, details: Path | None, questions: Path | None
) -> dict[str, object]:
    from knowledge.evaluation.retrieval import run_eval, to_hits

    collection, ingest = _ingest(desk, dataset)
    summary = run_eval(
        dataset, lambda q: to_hits(desk.search(q, [collection], 10)), k, details, questions
    )
    if ingest:
        summary["ingest"] = ingest
    summary["pipeline"] = "default"
    return summary


def _eval_naive(
    desk: Desk, dataset: Path, k: int, details: Path | None, questions: Path | None
) -> dict[str, object]:
    from knowledge.evaluation.naive import NaivePipeline
    from knowledge.evaluation.retrieval import run_eval

    embedder = desk.embedder
    if desk.settings.embedding_int8:  # the tutorial embeds with the plain float32 model
        from knowledge.search.embeddings import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder(desk.settings.embedding_model or None)
    naive = NaivePipeline(embedder, desk.settings.data_dir / "naive")
    naive.ingest(dataset / "docs")
    summary = run_eval(dataset, lambda q: naive.search(q, 10), k, details, questions)
    if naive.ingest_seconds:
        summary["ingest"] = naive.ingest_seconds
    summary["pipeline"] = "naive"
    return summary


def _eval_answers(
    desk: Desk, dataset: Path, questions: Path | None, details: Path | None, model: str | None
) -> dict[str, object]:
    """The full answer path (`Desk.ask`) on every question, as the user `eval`."""
    from knowledge.assistant.personas import Persona
    from knowledge.core.types import Requester
    from knowledge.evaluation.answers import run_answers
    from knowledge.evaluation.retrieval import load_questions

    collection, ingest = _ingest(desk, dataset)
    asked = load_questions(dataset, questions)
    s = desk.settings
    persona = Persona(temperature=s.temperature, max_tokens=s.max_answer_tokens, model=model or "")
    requester = Requester("eval", "eval", "eval")

    def ask(question: str) -> Answer:
        stream = desk.ask(question, [collection], persona=persona, requester=requester)
        for _ in stream:
            pass
        return stream.answer

    summary, rows = run_answers(asked, {q.id: q.answer for q in asked}, ask)
    summary = {"dataset": dataset.name, "model": desk.model_for(persona.model).name, **summary}
    if ingest:
        summary["ingest"] = ingest
    if details:
        details.parent.mkdir(parents=True, exist_ok=True)
        with details.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row.as_dict()) + "\n")
    return summary


def _labelled_sets(desk: Desk, args: argparse.Namespace) -> list[LabelledSet]:
    """The datasets given, plus NAME=FILE question files about one of their docs/."""
    from knowledge.evaluation.calibration import LabelledSet
    from knowledge.evaluation.retrieval import load_questions

    sets = []
    by_name: dict[str, Path] = {}
    for directory in args.datasets:
        dataset = Path(directory)
        collection, _ = _ingest(desk, dataset)
        by_name[dataset.resolve().name] = dataset
        sets.append(LabelledSet(dataset.resolve().name, collection, load_questions(dataset)))
    for spec in args.questions or []:
        name, _, file = spec.partition("=")
        if name not in by_name or not file:
            raise KdeskError(f"--questions {spec!r}: use NAME=FILE with NAME one of the datasets")
        dataset = by_name[name]
        questions = load_questions(dataset, Path(file))
        sets.append(LabelledSet(f"{name}:{Path(file).stem}", _collection(dataset), questions))
    return sets


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Train the evidence model: answerable questions against their own collection;
    unanswerable ones (the set's own, --unanswerable, and every answerable question against
    the next set's collection). Prints the separation per set, leave-one-set-out, and the
    single-cosine baseline's separation beside it."""
    from knowledge.evaluation.calibration import (
        baseline_separation,
        collect_samples,
        fit,
        leave_one_set_out,
        report,
    )
    from knowledge.evaluation.retrieval import load_unanswerable

    if len(args.datasets) < 2:
        raise KdeskError("calibrate needs at least two datasets (the others serve as negatives)")
    desk = common.open_desk()
    sets = _labelled_sets(desk, args)
    names = {s.name.split(":")[0] for s in sets}
    extra = load_unanswerable(Path(args.unanswerable), names) if args.unanswerable else []
    judge = desk.judge
    k = desk.settings.top_k

    def signals_of(question: str, collection: str):  # type: ignore[no-untyped-def]
        sources = desk.search(question, [collection], k)
        return judge.signals(question, sources, [collection]), sources

    samples = collect_samples(sets, signals_of, extra, limit=args.limit)
    model = fit(samples)
    summary: dict[str, object] = {
        "operating_point": {"abstain_below": model.abstain_below, "weak_below": model.weak_below},
        "weights": dict(zip(model.names, (round(float(w), 3) for w in model.weights), strict=True)),
        "sets": report(model, samples),
        "leave_one_set_out": leave_one_set_out(samples),
        "top_cosine_baseline": baseline_separation(samples),
    }
    if args.out:
        model.save(Path(args.out))
        summary["saved"] = args.out
    common.print_json(summary)
    return 0


def add_eval_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("eval", help="measure retrieval (or answers) on a dataset")
    p.add_argument("dataset", help="a folder with docs/ and questions.jsonl")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--questions", help="other questions about the dataset's docs/ (JSONL)")
    p.add_argument("--details", help="write one JSON line per question here")
    p.add_argument(
        "--pipeline",
        choices=["default", "naive", "both"],
        default="default",
        help="both: the naive baseline's figures under 'naive', beside the default's",
    )
    p.add_argument(
        "--answers", action="store_true", help="the full answer path: citations, abstentions"
    )
    p.add_argument(
        "--model", help="with --answers: BACKEND:MODEL or 'embedded' (default: the desk's)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("calibrate", help="train the evidence model on answerable / unanswerable")
    p.add_argument("datasets", nargs="+")
    p.add_argument(
        "--questions",
        action="append",
        help="NAME=FILE: more questions about dataset NAME's docs/ (repeatable)",
    )
    p.add_argument("--limit", type=int, default=None, help="questions per set (default: all)")
    p.add_argument(
        "--unanswerable",
        help='JSONL of {"dataset": NAME, "question": ...}: in-domain questions it does not answer',
    )
    p.add_argument("--out", help="write the trained model here (knowledge/assistant/evidence.npz)")
    p.set_defaults(func=cmd_calibrate)
