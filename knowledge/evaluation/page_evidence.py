"""Page evidence proposed from reference answers: the pages of a question's evidence documents
that hold the figures its answer quotes.

A dataset with document-level evidence only (``page: null``) and reference answers full of
figures (a 10-Q question answered "$82,959 million ... 15.7%") can be given page evidence: the
answer's figures are normalised ("$82,959 million" and "82,959" are one figure, "15.7%" and
"15.7 %" another, "(123)" is 123), looked up on every page of the evidence documents, and the
pages covering most of them are proposed, greedily (the page holding most figures, then the one
adding most of the rest). Only confident proposals are kept: enough distinctive figures, most of
them found. The result is a questions file in the dataset's own format for
``kdesk eval DATASET --questions FILE``; check a sample by reading the pages before trusting it.

    python -m knowledge.evaluation.page_evidence /work/shared/eval/sec10q out.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.pdf import parse_pdf
from knowledge.evaluation.retrieval import read_jsonl

# "$82,959", "(1,234)", "15.7%", "36.1 billion"; digits glued to letters ("Q3", "10-Q") are not.
_FIGURE = re.compile(r"(?<![\w.,])\(?\$?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\)?(\s?%)?(?![\w-])")
_YEAR = re.compile(r"19\d\d|20[0-3]\d")

MIN_DIGITS = 3  # "19%" or "25" is on every other page; "15.7%" and "2,500" are not
MIN_FIGURES = 2
MIN_COVERAGE = 0.6
MAX_TIED_PAGES = 3  # a figure repeated on more pages than this says nothing about the page


@dataclass(frozen=True)
class Proposal:
    figures: frozenset[str]
    pages: tuple[tuple[str, int], ...]  # (doc, page), in the order chosen
    covered: frozenset[str]

    @property
    def coverage(self) -> float:
        return len(self.covered) / len(self.figures) if self.figures else 0.0

    @property
    def confident(self) -> bool:
        return len(self.figures) >= MIN_FIGURES and self.coverage >= MIN_COVERAGE


def figures(text: str, *, distinctive_only: bool = False) -> set[str]:
    """The normalised figures of ``text``: digits without separators, signs or currency, a
    decimal part kept as written, "%" kept; years (1990-2039 with no separator) dropped."""
    found = set()
    for match in _FIGURE.finditer(text):
        whole, decimals, percent = match.group(1), match.group(2) or "", match.group(3)
        digits = whole.replace(",", "")
        if not decimals and not percent and _YEAR.fullmatch(whole):
            continue
        if distinctive_only and len(digits) + len(decimals) - bool(decimals) < MIN_DIGITS:
            continue
        found.add(digits + decimals + ("%" if percent else ""))
    return found


def propose(answer: str, pages: dict[tuple[str, int], set[str]]) -> Proposal:
    """The pages (of ``pages``: (doc, page) -> its figures) that cover the answer's figures."""
    wanted = frozenset(figures(answer, distinctive_only=True))
    left, chosen = set(wanted), []
    while left:
        gains = {key: len(left & held) for key, held in pages.items() if key not in chosen}
        best = max(gains.values(), default=0)
        if best == 0:
            break
        tied = sorted(key for key, gain in gains.items() if gain == best)
        if len(tied) > MAX_TIED_PAGES:
            break
        for key in tied:
            left -= pages[key]
        chosen.extend(tied)
    return Proposal(wanted, tuple(chosen), wanted - frozenset(left))


def page_figures(docs_dir: Path, names: Iterable[str]) -> dict[tuple[str, int], set[str]]:
    """(doc, page number) -> the figures of that page, as the desk reads its text."""
    held = {}
    for name in sorted(set(names)):
        document = parse_pdf((docs_dir / name).read_bytes(), name)
        for page in document.pages:
            held[(name, page.number)] = figures(page.text)
    return held


def with_pages(raw: dict[str, object], proposal: Proposal) -> dict[str, object]:
    """The question line with the proposed pages as its evidence (documents without one kept
    at ``page: null``, so document hits are still scored against all of them)."""
    docs = [str(e["doc"]) for e in raw["evidence"]]  # type: ignore[attr-defined, union-attr]
    evidence: list[dict[str, object]] = [
        {"doc": doc, "page": page, "text": None} for doc, page in proposal.pages
    ]
    found = {doc for doc, _ in proposal.pages}
    evidence += [{"doc": doc, "page": None, "text": None} for doc in docs if doc not in found]
    return {**raw, "evidence": evidence}


def build(dataset: Path, questions: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """The questions of ``dataset`` that get confident page evidence, in that form."""
    names = [str(e["doc"]) for q in questions for e in q.get("evidence", [])]  # type: ignore[attr-defined]
    held = page_figures(dataset / "docs", names)
    kept = []
    for raw in questions:
        answer, evidence = raw.get("answer"), raw.get("evidence") or []
        if not answer or not evidence:
            continue
        docs = {str(e["doc"]) for e in evidence}  # type: ignore[attr-defined]
        proposal = propose(str(answer), {k: v for k, v in held.items() if k[0] in docs})
        if proposal.confident:
            kept.append(with_pages(raw, proposal))
    return kept


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a dataset folder (docs/ and questions.jsonl)")
    parser.add_argument("out", help="where to write the questions with page evidence")
    args = parser.parse_args(argv)
    dataset = Path(args.dataset)
    questions = [raw for _, raw in read_jsonl(dataset / "questions.jsonl")]
    kept = build(dataset, questions)
    Path(args.out).write_text("".join(json.dumps(q) + "\n" for q in kept), encoding="utf-8")
    print(f"{len(kept)} of {len(questions)} questions with page evidence -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
