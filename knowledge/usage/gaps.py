"""Knowledge gaps: questions the desk could not answer (or answered badly), grouped by meaning.

Each distinct question comes with a unit-length vector; average-linkage agglomerative clustering
joins questions while their mean cosine similarity stays above ``similarity``. A group is named
by its most central question (highest similarity to the other questions of the group, each
counted as often as it was asked), so managers read topics instead of near-duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

DEFAULT_SIMILARITY = 0.5  # all-MiniLM-L6-v2: paraphrases ~0.6-0.9, unrelated topics < 0.3


@dataclass(frozen=True)
class GapQuestion:
    question_hash: str
    question: str
    asked: int
    abstained: int
    thumbs_down: int
    last_asked: datetime


@dataclass(frozen=True)
class GapTopic:
    label: str  # the most central question of the group
    asked: int
    abstained: int
    thumbs_down: int
    last_asked: datetime
    questions: tuple[str, ...]  # distinct questions, most asked first


def cluster_labels(vectors: np.ndarray, similarity: float) -> np.ndarray:
    """A cluster number per row: average linkage on cosine distance, cut at 1 - similarity."""
    if len(vectors) < 2:
        return np.zeros(len(vectors), dtype=int)
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(vectors.astype(np.float64), method="average", metric="cosine")
    return np.asarray(fcluster(tree, t=1.0 - similarity, criterion="distance"))


def _topic(members: Sequence[GapQuestion], vectors: np.ndarray | None) -> GapTopic:
    weights = np.asarray([q.asked for q in members], dtype=np.float64)
    if vectors is not None and len(members) > 1:
        others = vectors @ vectors.T - np.eye(len(members))  # a question is not its own support
        centrality = others @ weights
    else:
        centrality = weights
    central = max(range(len(members)), key=lambda i: (centrality[i], weights[i]))
    by_count = sorted(members, key=lambda q: (-q.asked, q.question))
    return GapTopic(
        label=members[central].question,
        asked=int(weights.sum()),
        abstained=sum(q.abstained for q in members),
        thumbs_down=sum(q.thumbs_down for q in members),
        last_asked=max(q.last_asked for q in members),
        questions=tuple(q.question for q in by_count),
    )


def group_gaps(
    questions: Sequence[GapQuestion],
    vectors: Mapping[str, np.ndarray],
    similarity: float = DEFAULT_SIMILARITY,
) -> list[GapTopic]:
    """Topics, most asked first. Questions without a vector stay on their own."""
    embedded = [q for q in questions if q.question_hash in vectors]
    alone = [q for q in questions if q.question_hash not in vectors]
    topics = [_topic([q], None) for q in alone]
    if embedded:
        matrix = np.stack([vectors[q.question_hash] for q in embedded]).astype(np.float64)
        labels = cluster_labels(matrix, similarity)
        for label in np.unique(labels):
            rows = np.flatnonzero(labels == label)
            topics.append(_topic([embedded[i] for i in rows], matrix[rows]))
    return sorted(topics, key=lambda t: (-t.asked, -t.last_asked.timestamp(), t.label))
