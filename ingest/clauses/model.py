"""The clause classifier: TF-IDF features of a segment and of its section heading, one
logistic regression per category, per-category decision thresholds.

The trained model is stored as plain arrays (vocabularies, IDF weights, int8-quantised
coefficients, thresholds) in one compressed ``.npz`` file, so loading it needs neither pickle
nor a particular scikit-learn version, and nothing is downloaded. Training uses scikit-learn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from ingest.clauses.segments import Segment

FORMAT = "kdesk-clauses-1"
TOKEN_PATTERN = r"(?u)\b\w+\b"
WORD_NGRAMS = (1, 2)
MAX_WORD_FEATURES = 60_000
MIN_DF = 3
POSITION_BUCKETS = 10


def context_text(segment: Segment) -> str:
    """What the context features see: the heading in force and a coarse position."""
    bucket = min(int(segment.position * POSITION_BUCKETS), POSITION_BUCKETS - 1)
    return f"{segment.context} __pos{bucket}"


@dataclass(frozen=True)
class TfidfBlock:
    """A fitted TF-IDF vectoriser reduced to its vocabulary and IDF weights."""

    vocabulary: tuple[str, ...]
    idf: np.ndarray  # float32, one per vocabulary entry
    ngrams: tuple[int, int]

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        from sklearn.feature_extraction.text import CountVectorizer

        counts = CountVectorizer(
            vocabulary={term: i for i, term in enumerate(self.vocabulary)},
            ngram_range=self.ngrams,
            token_pattern=TOKEN_PATTERN,
            dtype=np.float32,
        ).transform(texts)
        counts = counts.tocsr()
        counts.data = 1.0 + np.log(counts.data)  # sublinear tf, as in training
        weighted = counts.multiply(self.idf).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sparse.csr_matrix(sparse.diags(1.0 / norms) @ weighted, dtype=np.float32)


@dataclass(frozen=True)
class ClauseModel:
    categories: tuple[str, ...]
    words: TfidfBlock
    contexts: TfidfBlock
    coef: np.ndarray  # float32 (features, categories)
    intercept: np.ndarray  # float32 (categories,)
    thresholds: np.ndarray  # float32 (categories,): predict at or above
    info: dict[str, object]

    def features(self, segments: Sequence[Segment]) -> sparse.csr_matrix:
        return sparse.hstack(
            [
                self.words.transform([s.text for s in segments]),
                self.contexts.transform([context_text(s) for s in segments]),
            ]
        ).tocsr()

    def probabilities(self, segments: Sequence[Segment]) -> np.ndarray:
        """(segments, categories) probabilities that a segment is a clause of a category."""
        if not segments:
            return np.zeros((0, len(self.categories)), dtype=np.float32)
        logits = self.features(segments) @ self.coef + self.intercept
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def save(self, path: Path) -> None:
        scale = np.abs(self.coef).max(axis=0) / 127.0
        scale[scale == 0] = 1.0
        quantised = np.round(self.coef / scale).astype(np.int8)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            np.savez_compressed(
                out,
                format=np.array(FORMAT),
                categories=np.array(json.dumps(list(self.categories))),
                word_vocabulary=np.array("\n".join(self.words.vocabulary)),
                word_idf=self.words.idf.astype(np.float32),
                word_ngrams=np.array(self.words.ngrams),
                context_vocabulary=np.array("\n".join(self.contexts.vocabulary)),
                context_idf=self.contexts.idf.astype(np.float32),
                context_ngrams=np.array(self.contexts.ngrams),
                coef=quantised,
                coef_scale=scale.astype(np.float32),
                intercept=self.intercept.astype(np.float32),
                thresholds=self.thresholds.astype(np.float32),
                info=np.array(json.dumps(self.info)),
            )

    @staticmethod
    def load(path: Path) -> ClauseModel:
        import sklearn.feature_extraction.text  # noqa: F401 - ready to use once loaded

        with np.load(path, allow_pickle=False) as data:
            if str(data["format"]) != FORMAT:
                raise ValueError(f"{path} is not a clause model ({FORMAT})")
            coef = data["coef"].astype(np.float32) * data["coef_scale"]
            return ClauseModel(
                categories=tuple(json.loads(str(data["categories"]))),
                words=_block(data, "word"),
                contexts=_block(data, "context"),
                coef=coef,
                intercept=data["intercept"].astype(np.float32),
                thresholds=data["thresholds"].astype(np.float32),
                info=json.loads(str(data["info"])),
            )


def _block(data: np.lib.npyio.NpzFile, prefix: str) -> TfidfBlock:
    vocabulary = str(data[f"{prefix}_vocabulary"])
    low, high = (int(n) for n in data[f"{prefix}_ngrams"])
    return TfidfBlock(
        tuple(vocabulary.split("\n")) if vocabulary else (),
        data[f"{prefix}_idf"].astype(np.float32),
        (low, high),
    )
