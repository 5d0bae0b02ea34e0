"""Scoring predicted clause spans against gold spans, as the evaluation README defines it.

A prediction is correct when it covers at least half of a gold span's word tokens (same
contract, same category) and is at most ``max(2 * span, span + 40)`` tokens long. Coverage is
the longest common subsequence of the two token sequences, so the gold words must appear in
the prediction in their order, which is what "covering the span" means for text taken from
the same document. Precision counts predictions, recall counts gold spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ingest.clauses.segments import word_tokens

MIN_COVERAGE = 0.5
EXTRA_TOKENS = 40


@dataclass(frozen=True)
class Span:
    text: str
    page: int | None = None


@dataclass
class Tally:
    predicted: int = 0
    correct: int = 0  # predictions that match some gold span
    gold: int = 0
    found: int = 0  # gold spans matched by some prediction
    page_checked: int = 0  # correct predictions whose gold page is known
    page_right: int = 0

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def metrics(self) -> dict[str, float]:
        precision = self.correct / self.predicted if self.predicted else 0.0
        recall = self.found / self.gold if self.gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


@dataclass
class ClauseScores:
    micro: Tally = field(default_factory=Tally)
    per_category: dict[str, Tally] = field(default_factory=dict)

    @property
    def page_accuracy(self) -> float:
        checked = self.micro.page_checked
        return round(self.micro.page_right / checked, 4) if checked else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "micro": self.micro.metrics(),
            "per_category": {
                name: {**tally.metrics(), "support": tally.gold}
                for name, tally in self.per_category.items()
            },
            "page_accuracy": self.page_accuracy,
        }


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (bit-parallel, Hyyrö 2004)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def is_match(predicted: Sequence[str], gold: Sequence[str]) -> bool:
    """Whether a predicted token sequence counts as finding the gold one."""
    if not gold or len(predicted) > max(2 * len(gold), len(gold) + EXTRA_TOKENS):
        return False
    return lcs_length(gold, predicted) >= MIN_COVERAGE * len(gold)


def score_group(predicted: Sequence[Span], gold: Sequence[Span]) -> Tally:
    """One contract and one category."""
    predicted_tokens = [word_tokens(p.text) for p in predicted]
    gold_tokens = [word_tokens(g.text) for g in gold]
    hits = [[is_match(p, g) for g in gold_tokens] for p in predicted_tokens]
    tally = Tally(predicted=len(predicted), gold=len(gold))
    tally.correct = sum(any(row) for row in hits)
    tally.found = sum(any(row[j] for row in hits) for j in range(len(gold)))
    for p, row in zip(predicted, hits, strict=True):
        pages = {gold[j].page for j, hit in enumerate(row) if hit and gold[j].page is not None}
        if pages:
            tally.page_checked += 1
            tally.page_right += p.page in pages
    return tally


def score(
    predicted: Mapping[tuple[str, str], Sequence[Span]],
    gold: Mapping[tuple[str, str], Sequence[Span]],
    categories: Iterable[str],
) -> ClauseScores:
    """Keys are (contract, category); a contract missing from ``predicted`` predicted nothing."""
    scores = ClauseScores(per_category={name: Tally() for name in categories})
    for key in set(predicted) | set(gold):
        tally = score_group(predicted.get(key, ()), gold.get(key, ()))
        scores.per_category.setdefault(key[1], Tally()).add(tally)
        scores.micro.add(tally)
    return scores
