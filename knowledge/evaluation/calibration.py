"""`kdesk calibrate`: train the evidence model on answerable and unanswerable questions.

Answerable: each set's questions with evidence, asked against the set's own collection.
Unanswerable: the same questions asked against another set's collection (easy negatives:
off-topic), the set's own questions without evidence and the extra in-domain questions the
documents do not answer (hard negatives: the nearest passage is still on topic).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from knowledge.assistant.evidence import EvidenceModel, Signals, train_model
from knowledge.core.types import ScoredChunk
from knowledge.evaluation.retrieval import Question, is_relevant, separation, to_hits

Kind = Literal["answerable", "cross", "hard"]
# hard negatives are few but are the errors users notice: together they weigh as much as the
# easy ones
HARD_WEIGHT_SHARE = 0.5


@dataclass(frozen=True)
class Sample:
    dataset: str
    question: str
    kind: Kind
    signals: Signals
    retrieved: bool = True  # for an answerable one: its evidence is among the passages

    @property
    def answerable(self) -> bool:
        return self.kind == "answerable"


@dataclass(frozen=True)
class LabelledSet:
    name: str
    collection: str
    questions: Sequence[Question]


# (question, collection) -> the signals of its sources, and the sources
Judge = Callable[[str, str], tuple[Signals, Sequence[ScoredChunk]]]


def collect_samples(
    sets: Sequence[LabelledSet],
    signals_of: Judge,
    extra_unanswerable: Sequence[tuple[str, str]] = (),
    limit: int | None = None,
) -> list[Sample]:
    samples: list[Sample] = []
    by_name = {s.name: s for s in sets}
    for i, labelled in enumerate(sets):
        others = [s.collection for s in sets if s.collection != labelled.collection]
        other = others[i % len(others)] if others else None
        for q in list(labelled.questions)[:limit]:
            if q.evidence:
                own, sources = signals_of(q.question, labelled.collection)
                found = any(is_relevant(h, q) for h in to_hits(sources))
                samples.append(Sample(labelled.name, q.question, "answerable", own, found))
                if other is not None:
                    foreign, _ = signals_of(q.question, other)
                    samples.append(Sample(labelled.name, q.question, "cross", foreign))
            else:
                hard, _ = signals_of(q.question, labelled.collection)
                samples.append(Sample(labelled.name, q.question, "hard", hard))
    for name, question in extra_unanswerable:
        signals, _ = signals_of(question, by_name[name].collection)
        samples.append(Sample(name, question, "hard", signals))
    return samples


def baseline_separation(samples: Sequence[Sample]) -> dict[str, object]:
    """What the best passage's cosine alone separates (the judgement before this model)."""
    out: dict[str, object] = {}
    for name in dict.fromkeys(s.dataset for s in samples):
        pos = [s.signals.top_cosine for s in samples if s.dataset == name and s.answerable]
        entry: dict[str, object] = {}
        for kind in ("cross", "hard"):
            neg = [s.signals.top_cosine for s in samples if s.dataset == name and s.kind == kind]
            if pos and neg:
                entry[kind] = separation(pos, neg)["auc"]
        out[name] = entry
    return out


def sample_weights(samples: Sequence[Sample]) -> list[float]:
    hard = sum(1 for s in samples if s.kind == "hard")
    cross = sum(1 for s in samples if s.kind == "cross")
    if not hard or not cross:
        return [1.0] * len(samples)
    boost = HARD_WEIGHT_SHARE / (1 - HARD_WEIGHT_SHARE) * cross / hard
    return [boost if s.kind == "hard" else 1.0 for s in samples]


def fit(samples: Sequence[Sample]) -> EvidenceModel:
    """The model with its operating point. Positives whose retrieved passages do not hold
    their evidence are left out of training (the sources really do not answer them there),
    but count when the thresholds are chosen: ``abstain_below`` maximises the balanced
    accuracy averaged over the sets (each set, short or long questions, counts the same;
    within a set, answerable vs all unanswerable); the weak band reaches up to where at
    most 5% of the unanswerable questions would be answered without a warning."""
    training = [s for s in samples if not s.answerable or s.retrieved]
    model = train_model(
        [s.signals for s in training], [s.answerable for s in training], sample_weights(training)
    )
    p = np.asarray(probabilities(model, samples))
    low = balanced_threshold(p, samples, ("cross", "hard"))
    high = confident_threshold(p, samples, at_least=low)
    return EvidenceModel(model.mean, model.scale, model.weights, model.bias, low, high)


STRONG_FALSE_ANSWERS = 0.05  # above the weak band, at most this share of unanswerable ones


def confident_threshold(p: np.ndarray, samples: Sequence[Sample], at_least: float) -> float:
    """The lowest threshold from which at most STRONG_FALSE_ANSWERS of the unanswerable
    questions (averaged over the sets) would get an answer without a warning."""
    sets = list(dict.fromkeys(s.dataset for s in samples))
    negative = np.asarray([not s.answerable for s in samples])
    members = [np.asarray([s.dataset == name for s in samples]) & negative for name in sets]
    members = [m for m in members if m.any()]
    for t in np.unique(np.round(p, 3)):
        if t >= at_least and np.mean([(p[m] >= t).mean() for m in members]) <= STRONG_FALSE_ANSWERS:
            return round(float(t), 3)
    return round(at_least, 3)


def balanced_threshold(
    p: np.ndarray, samples: Sequence[Sample], negatives: tuple[Kind, ...], at_least: float = 0.0
) -> float:
    """The probability threshold with the best balanced accuracy, averaged over the sets."""
    sets = list(dict.fromkeys(s.dataset for s in samples))
    labels = np.asarray([s.answerable for s in samples])
    negative = np.asarray([s.kind in negatives for s in samples])
    members = {name: np.asarray([s.dataset == name for s in samples]) for name in sets}
    best, chosen = -1.0, at_least
    for t in np.unique(np.round(p, 3)):
        if t < at_least:
            continue
        scores = []
        for mask in members.values():
            pos, neg = p[mask & labels], p[mask & negative]
            if len(pos) and len(neg):
                scores.append(((pos >= t).mean() + (neg < t).mean()) / 2)
        if scores and float(np.mean(scores)) > best:
            best, chosen = float(np.mean(scores)), float(t)
    return round(chosen, 3)


def probabilities(model: EvidenceModel, samples: Sequence[Sample]) -> list[float]:
    return [model.probability(s.signals) for s in samples]


def report(model: EvidenceModel, samples: Sequence[Sample]) -> dict[str, object]:
    """Separation (AUC) per set and kind of negative, and both error rates at the operating
    point."""
    p = np.asarray(probabilities(model, samples))
    out: dict[str, object] = {}
    for name in dict.fromkeys(s.dataset for s in samples):
        rows = [i for i, s in enumerate(samples) if s.dataset == name]
        out[name] = _rates(p, samples, rows, model)
    out["all"] = _rates(p, samples, list(range(len(samples))), model)
    return out


def _rates(
    p: np.ndarray, samples: Sequence[Sample], rows: Sequence[int], model: EvidenceModel
) -> dict[str, object]:
    pos = [p[i] for i in rows if samples[i].answerable]
    figures: dict[str, object] = {"answerable": len(pos)}
    if pos:
        figures["false_abstentions"] = round(
            float(np.mean(np.asarray(pos) < model.abstain_below)), 4
        )
        figures["weak_band"] = round(
            float(
                np.mean(
                    (np.asarray(pos) >= model.abstain_below) & (np.asarray(pos) < model.weak_below)
                )
            ),
            4,
        )
    for kind in ("cross", "hard"):
        neg = [p[i] for i in rows if samples[i].kind == kind]
        if not neg:
            continue
        entry: dict[str, object] = {
            "questions": len(neg),
            "abstained": round(float(np.mean(np.asarray(neg) < model.abstain_below)), 4),
            "answered_strong": round(float(np.mean(np.asarray(neg) >= model.weak_below)), 4),
        }
        if pos:
            entry["auc"] = separation(pos, neg)["auc"]
        figures[kind] = entry
    return figures


def leave_one_set_out(samples: Sequence[Sample]) -> dict[str, object]:
    """Each set judged by a model trained on the other sets only: what to expect on
    documents and questions the model has never seen."""
    out: dict[str, object] = {}
    for name in dict.fromkeys(s.dataset for s in samples):
        train = [s for s in samples if s.dataset != name]
        test = [s for s in samples if s.dataset == name]
        if not any(s.answerable for s in train) or all(s.answerable for s in train):
            continue
        model = fit(train)
        p = np.asarray(probabilities(model, test))
        out[name] = _rates(p, test, list(range(len(test))), model)
    return out
