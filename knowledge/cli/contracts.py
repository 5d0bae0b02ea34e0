"""`kdesk clauses extract|eval|train|list`: the contract-clause commands of the CLI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from knowledge.cli import common
from knowledge.core.errors import KdeskError


def cmd_extract(args: argparse.Namespace) -> int:
    from knowledge.desk.ingestion import documents_under
    from knowledge.evaluation.contracts import extract_files

    files = documents_under(args.paths, (".pdf",))
    if not files:
        raise KdeskError("No PDF files found in the given paths.")
    result = extract_files(files)
    if args.json:
        common.print_json(result)
        return 0
    for contract in result["contracts"]:  # type: ignore[attr-defined]
        print(f"{contract['doc']} ({contract['pages']} pages)")
        for c in contract["clauses"]:
            value = f" = {c['value']}" if c["value"] else ""
            print(f"  p.{c['page']:<3} {c['category']}{value} ({c['confidence']:.2f})")
            print(f"        {c['text'][:160]}")
    print(f"{result['pages_per_s']} pages/s (extraction only)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from knowledge.evaluation.contracts import evaluate_clauses

    summary = evaluate_clauses(Path(args.dataset))
    if args.json:
        common.print_json(summary)
        return 0
    baseline: dict[str, Any] = summary["baseline"]  # type: ignore[assignment]
    print(f"micro: {summary['micro']}   (keyword baseline: {baseline['micro']})")
    print(f"page accuracy of correct predictions: {summary['page_accuracy']}")
    print(f"extraction speed: {summary['pages_per_s']} pages/s")
    per_category: dict[str, dict[str, float]] = summary["per_category"]  # type: ignore[assignment]
    for name, row in per_category.items():
        base = baseline["per_category"][name]["f1"]
        print(f"  {name:36} F1 {row['f1']:.2f} (baseline {base:.2f}), support {row['support']}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from knowledge.contracts.book import MODEL_PATH
    from knowledge.evaluation.contracts import train_clause_model

    out = Path(args.out) if args.out else MODEL_PATH
    log = (lambda _: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    result = train_clause_model(Path(args.dataset), out, args.folds, log)
    common.print_json(result) if args.json else print(f"saved {out} ({result['bytes']} bytes)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from knowledge.contracts.book import ClauseFilter
    from knowledge.core.settings import load_settings
    from knowledge.desk.root import Desk

    desk = Desk(load_settings())
    where = ClauseFilter(
        collections=args.collection,
        categories=args.category,
        value_contains=args.value or "",
    )
    records = desk.contracts.records(where)
    if args.json:
        common.print_json(
            {
                "clauses": [
                    {
                        "id": r.id,
                        "collection": r.collection,
                        "doc": r.file_name,
                        "category": r.category,
                        "text": r.text,
                        "page": r.page,
                        "value": r.value,
                        "confidence": r.confidence,
                        "status": r.status,
                        "reviewer": r.reviewer,
                        "reviewed_at": r.reviewed_at,
                    }
                    for r in records
                ]
            }
        )
        return 0
    for r in records:
        value = f" = {r.value}" if r.value else ""
        print(f"{r.file_name} p.{r.page} [{r.status}] {r.category}{value}")
    return 0


def add_clause_commands(sub: Any) -> None:
    """Register `kdesk clauses ...` on the main parser's subcommands."""
    clauses = sub.add_parser("clauses", help="contract clause extraction, evaluation, training")
    group = clauses.add_subparsers(dest="clauses_command", required=True)

    p = group.add_parser("extract", help="clause records of contract PDFs (nothing is stored)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_extract)

    p = group.add_parser("eval", help="score extraction on a set (docs/ + clauses.jsonl)")
    p.add_argument("dataset")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = group.add_parser("train", help="build the clause model from a cuad_train-style set")
    p.add_argument("dataset")
    p.add_argument("--out", help="default: the model shipped in the package")
    p.add_argument("--folds", type=int, default=5, help="for choosing thresholds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = group.add_parser("list", help="stored clause records")
    p.add_argument("--collection", action="append", help="repeatable; default: all")
    p.add_argument("--category", action="append", help="repeatable; default: all")
    p.add_argument("--value", help="only records whose value contains this")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
