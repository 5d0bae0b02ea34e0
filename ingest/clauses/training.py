"""Training the clause classifier from contracts with gold spans (the ``cuad_train`` format).

Reproducible: a fixed fold split by contract, deterministic solvers, fixed seeds. Per-category
thresholds are chosen on out-of-fold predictions to maximise the micro-F1 of the evaluation
scoring, so the shipped thresholds never saw the contracts they are judged on.
"""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ingest.clauses.extract import RULE_CATEGORIES, select_segments
from ingest.clauses.model import (
    MAX_WORD_FEATURES,
    MIN_DF,
    TOKEN_PATTERN,
    WORD_NGRAMS,
    ClauseModel,
    TfidfBlock,
    context_text,
)
from ingest.clauses.scoring import Span, Tally, score_group
from ingest.clauses.segments import Segment, segment_text

SEED = 13
C = 4.0
POSITIVE_WEIGHT = 3.0
THRESHOLD_GRID = tuple(round(t, 2) for t in np.arange(0.05, 0.96, 0.05))
NO_THRESHOLD = 2.0  # above any probability: the category is left to the targeted extractors

Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainingContract:
    name: str
    text: str
    gold: dict[str, list[tuple[str, int | None]]]  # category -> [(span text, char offset)]


@dataclass(frozen=True)
class _Prepared:
    contract: TrainingContract
    segments: list[Segment]
    labels: np.ndarray  # bool (segments, categories)


def label_segments(
    text: str, segments: Sequence[Segment], gold: Sequence[tuple[str, int | None]]
) -> np.ndarray:
    """Which segments belong to a gold span: most of the segment lies inside it, or the
    segment holds most of it."""
    token_starts = [m.start() for m in re.finditer(r"[a-z0-9]+", text.lower())]

    def tokens_between(a: int, b: int) -> int:
        return bisect.bisect_left(token_starts, b) - bisect.bisect_left(token_starts, a)

    starts = [s.start for s in segments]
    labels = np.zeros(len(segments), dtype=bool)
    for span_text, offset in gold:
        if offset is None:
            continue
        end = offset + len(span_text)
        gold_tokens = max(tokens_between(offset, end), 1)
        i = max(bisect.bisect_right(starts, offset) - 1, 0)
        while i < len(segments) and segments[i].start < end:
            s = segments[i]
            inside = tokens_between(max(s.start, offset), min(s.end, end))
            own = max(tokens_between(s.start, s.end), 1)
            if inside and (inside >= 0.5 * own or inside >= 0.5 * gold_tokens):
                labels[i] = True
            i += 1
    return labels


def prepare(contracts: Sequence[TrainingContract], categories: Sequence[str]) -> list[_Prepared]:
    prepared = []
    for contract in contracts:
        segments = segment_text(contract.text)
        labels = np.zeros((len(segments), len(categories)), dtype=bool)
        for j, category in enumerate(categories):
            labels[:, j] = label_segments(contract.text, segments, contract.gold.get(category, []))
        prepared.append(_Prepared(contract, segments, labels))
    return prepared


def _fit_blocks(segments: Sequence[Segment]) -> tuple[TfidfBlock, TfidfBlock]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    blocks = []
    for texts, ngrams, limit in (
        ([s.text for s in segments], WORD_NGRAMS, MAX_WORD_FEATURES),
        ([context_text(s) for s in segments], (1, 1), None),
    ):
        vectorizer = TfidfVectorizer(
            ngram_range=ngrams,
            min_df=MIN_DF,
            sublinear_tf=True,
            token_pattern=TOKEN_PATTERN,
            max_features=limit,
            dtype=np.float32,
        ).fit(texts)
        vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        blocks.append(TfidfBlock(tuple(vocabulary), vectorizer.idf_.astype(np.float32), ngrams))
    return blocks[0], blocks[1]


def _fit(
    segments: Sequence[Segment], labels: np.ndarray, categories: Sequence[str], log: Log
) -> ClauseModel:
    from sklearn.linear_model import LogisticRegression

    words, contexts = _fit_blocks(segments)
    draft = ClauseModel(
        tuple(categories),
        words,
        contexts,
        np.zeros((0, 0), np.float32),
        np.zeros(0, np.float32),
        np.zeros(0, np.float32),
        {},
    )
    features: sparse.csr_matrix = draft.features(segments)
    coef = np.zeros((features.shape[1], len(categories)), dtype=np.float32)
    intercept = np.zeros(len(categories), dtype=np.float32)
    for j, category in enumerate(categories):
        if category in RULE_CATEGORIES or labels[:, j].sum() == 0:
            intercept[j] = -20.0
            continue
        model = LogisticRegression(
            C=C, solver="liblinear", class_weight={0: 1.0, 1: POSITIVE_WEIGHT}, random_state=SEED
        ).fit(features, labels[:, j])
        coef[:, j] = model.coef_[0]
        intercept[j] = model.intercept_[0]
    log(f"fitted {len(categories)} categories on {len(segments)} segments")
    thresholds = np.full(len(categories), 0.5, dtype=np.float32)
    return ClauseModel(tuple(categories), words, contexts, coef, intercept, thresholds, {})


def _out_of_fold(
    prepared: Sequence[_Prepared], categories: Sequence[str], folds: int, log: Log
) -> list[np.ndarray]:
    order = np.random.default_rng(SEED).permutation(len(prepared))
    fold_of = np.empty(len(prepared), dtype=int)
    fold_of[order] = np.arange(len(prepared)) % folds
    result: list[np.ndarray] = [np.zeros(0)] * len(prepared)
    for fold in range(folds):
        train = [p for i, p in enumerate(prepared) if fold_of[i] != fold]
        model = _fit(
            [s for p in train for s in p.segments],
            np.concatenate([p.labels for p in train]),
            categories,
            log,
        )
        for i, p in enumerate(prepared):
            if fold_of[i] == fold:
                result[i] = model.probabilities(p.segments)
        log(f"fold {fold + 1}/{folds} done")
    return result


def choose_thresholds(
    prepared: Sequence[_Prepared], probabilities: Sequence[np.ndarray], categories: Sequence[str]
) -> tuple[np.ndarray, Tally]:
    """Per-category thresholds maximising micro-F1 over all categories (coordinate ascent)."""
    grid = [
        [_tally(prepared, probabilities, j, category, t) for t in THRESHOLD_GRID]
        for j, category in enumerate(categories)
    ]
    choice = [_best([_f1(tally) for tally in row]) for row in grid]
    for _ in range(3):
        for j in range(len(categories)):
            options = [[*choice[:j], k, *choice[j + 1 :]] for k in range(len(THRESHOLD_GRID))]
            choice[j] = _best([_f1(_total(grid, option)) for option in options])
    thresholds = np.array([THRESHOLD_GRID[k] for k in choice], dtype=np.float32)
    for j, category in enumerate(categories):
        if category in RULE_CATEGORIES:
            thresholds[j] = NO_THRESHOLD
    return thresholds, _total(grid, choice)


def _best(qualities: Sequence[float]) -> int:
    """The position of the highest quality (the lowest threshold on ties)."""
    return max(range(len(qualities)), key=qualities.__getitem__)


def _tally(
    prepared: Sequence[_Prepared],
    probabilities: Sequence[np.ndarray],
    j: int,
    category: str,
    threshold: float,
) -> Tally:
    tally = Tally()
    if category in RULE_CATEGORIES:
        return tally
    for p, probs in zip(prepared, probabilities, strict=True):
        picked = select_segments(probs[:, j], threshold)
        predicted = [Span(p.segments[i].text) for i in picked]
        gold = [Span(text) for text, _ in p.contract.gold.get(category, [])]
        tally.add(score_group(predicted, gold))
    return tally


def _total(grid: Sequence[Sequence[Tally]], choice: Sequence[int]) -> Tally:
    total = Tally()
    for row, k in zip(grid, choice, strict=True):
        total.add(row[k])
    return total


def _f1(tally: Tally) -> float:
    return tally.metrics()["f1"]


def train(
    contracts: Sequence[TrainingContract],
    categories: Sequence[str],
    *,
    folds: int = 5,
    log: Log = lambda _: None,
) -> ClauseModel:
    started = time.perf_counter()
    prepared = prepare(contracts, categories)
    log(f"segmented {len(prepared)} contracts")
    probabilities = _out_of_fold(prepared, categories, folds, log)
    thresholds, cv = choose_thresholds(prepared, probabilities, categories)
    log(f"cross-validated micro (classifier categories): {cv.metrics()}")
    final = _fit(
        [s for p in prepared for s in p.segments],
        np.concatenate([p.labels for p in prepared]),
        categories,
        log,
    )
    info = {
        "contracts": len(contracts),
        "segments": sum(len(p.segments) for p in prepared),
        "folds": folds,
        "cv_micro_classifier_categories": cv.metrics(),
        "seed": SEED,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return ClauseModel(
        final.categories, final.words, final.contexts, final.coef, final.intercept, thresholds, info
    )
