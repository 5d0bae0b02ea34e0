"""Contract pages -> clause candidates of the 40 CUAD categories, each quoting the document.

Sentences and clauses are scored by the trained classifier (``clause_model``); parties and
agreement / effective dates, which are short spans inside long preamble sentences, come from
targeted extractors (``clause_rules``). Every candidate is an exact slice of the page text
(whitespace collapsed), with its page, a normalised value where one applies, and a confidence.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ingest.clauses.rules import agreement_date_span, effective_date_spans, party_spans
from ingest.clauses.segments import Segment, segment_pages
from ingest.clauses.values import normalised_value
from ingest.document import Page

CATEGORIES: tuple[str, ...] = (
    "Parties", "Agreement Date", "Effective Date", "Expiration Date", "Renewal Term",
    "Notice Period To Terminate Renewal", "Governing Law", "Most Favored Nation",
    "Competitive Restriction Exception", "Non-Compete", "Exclusivity", "No-Solicit Of Customers",
    "No-Solicit Of Employees", "Non-Disparagement", "Termination For Convenience",
    "Rofr/Rofo/Rofn", "Change Of Control", "Anti-Assignment", "Revenue/Profit Sharing",
    "Price Restrictions", "Minimum Commitment", "Volume Restriction", "Ip Ownership Assignment",
    "Joint Ip Ownership", "License Grant", "Non-Transferable License",
    "Affiliate License-Licensor", "Affiliate License-Licensee",
    "Unlimited/All-You-Can-Eat-License", "Irrevocable Or Perpetual License",
    "Source Code Escrow", "Post-Termination Services", "Audit Rights", "Uncapped Liability",
    "Cap On Liability", "Liquidated Damages", "Warranty Duration", "Insurance",
    "Covenant Not To Sue", "Third Party Beneficiary",
)  # fmt: skip
RULE_CATEGORIES = frozenset({"Parties", "Agreement Date", "Effective Date"})
MAX_PER_CATEGORY = 8  # a contract rarely has more clauses of one kind; more are mostly noise
RULE_CONFIDENCE = {"Parties": 0.85, "Agreement Date": 0.8, "Effective Date": 0.5}


class ClauseScorer(Protocol):
    """What extraction needs from a model (``clause_model.ClauseModel`` implements it)."""

    @property
    def categories(self) -> tuple[str, ...]: ...

    @property
    def thresholds(self) -> np.ndarray: ...

    def probabilities(self, segments: Sequence[Segment]) -> np.ndarray: ...


@dataclass(frozen=True)
class ClauseCandidate:
    category: str
    text: str  # verbatim (whitespace collapsed)
    page: int
    start: int  # offsets into the document text (pages joined by a blank line)
    end: int
    value: str | None
    confidence: float


def select_segments(
    probabilities: np.ndarray, threshold: float, limit: int = MAX_PER_CATEGORY
) -> list[int]:
    """Indices of the segments at or above the threshold, the most likely first."""
    picked = np.flatnonzero(probabilities >= threshold)
    return [int(i) for i in picked[np.argsort(-probabilities[picked], kind="stable")][:limit]]


def extract_clauses(pages: Sequence[Page], model: ClauseScorer) -> list[ClauseCandidate]:
    """Clause candidates of a contract, in category order, then by position."""
    text, segments = segment_pages(pages)
    candidates = _targeted(text, segments)
    probabilities = model.probabilities(segments)
    for j, category in enumerate(model.categories):
        if category in RULE_CATEGORIES:
            continue
        for i in select_segments(probabilities[:, j], float(model.thresholds[j])):
            s = segments[i]
            candidates.append(
                _candidate(category, s.text, s.page, s.start, s.end, probabilities[i, j])
            )
    order = {name: n for n, name in enumerate(CATEGORIES)}
    return sorted(candidates, key=lambda c: (order.get(c.category, len(order)), c.start))


def _targeted(text: str, segments: Sequence[Segment]) -> list[ClauseCandidate]:
    spans: list[tuple[str, tuple[int, int]]] = [
        ("Parties", span) for span in party_spans(text, segments)
    ]
    agreement = agreement_date_span(text, segments)
    if agreement:
        spans.append(("Agreement Date", agreement))
    spans.extend(("Effective Date", span) for span in effective_date_spans(text, segments))
    page_of = _page_finder(segments)
    return [
        _candidate(
            category, " ".join(text[a:b].split()), page_of(a), a, b, RULE_CONFIDENCE[category]
        )
        for category, (a, b) in spans
    ]


def _page_finder(segments: Sequence[Segment]) -> Callable[[int], int]:
    starts = [s.start for s in segments]

    def page_of(offset: int) -> int:
        i = bisect.bisect_right(starts, offset) - 1
        return segments[max(i, 0)].page if segments else 1

    return page_of


def _candidate(
    category: str, text: str, page: int, start: int, end: int, confidence: float
) -> ClauseCandidate:
    return ClauseCandidate(
        category,
        text,
        page,
        start,
        end,
        normalised_value(category, text),
        round(float(confidence), 3),
    )
