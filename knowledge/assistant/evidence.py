"""Is the answer in the sources? The evidence judgement behind "answer", "answer with a
warning" and "not in the knowledge base".

One cosine cannot tell a short question in plain words ("Can I use a USB stick?", 0.2-0.45
against the passage that answers it) from an on-topic question the documents do not answer.
So the judgement reads several signals of the retrieved passages: how close the best passages
and their best sentences are, how much of the question's content (its words, their stems and
the terms close to them in the embedding space) the passages cover, how strongly BM25 matches
them, whether the vector and keyword rankings agree, and the question's length. A
small logistic model, trained by `kdesk calibrate` on answerable and unanswerable questions of
several sets and shipped as plain arrays (`knowledge/assistant/evidence.npz`), turns them into the
probability that the sources answer the question; two thresholds of that probability give the
bands.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np

from knowledge.core.errors import KdeskError
from knowledge.core.text import STOPWORDS, light_stem
from knowledge.core.types import Evidence, ScoredChunk
from knowledge.search.retrieval import Retriever

FORMAT = "kdesk-evidence-1"
DEFAULT_MODEL = Path(__file__).parent / "evidence.npz"
TOP_PASSAGES = 3
# strong L2 regularisation: the signals overlap, and small collections (a handful of chunks,
# where means equal maxima and IDF is coarse) must not be judged by large opposing weights
REGULARISATION = 0.1  # the passages an answer is mostly built from
CLOSE_TERM = 0.6  # word-vector cosine from which a passage word stands in for a question word

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")
# the words a question is asked with, whatever it is about ("How much ... do I get?")
QUESTION_WORDS = frozenset(
    """
    much many get gets got getting need needs needed want wants know tell please like okay
    thing things way really actually allowed able let lets supposed happen happens going
    anyone someone something anything ever still whats what's
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def question_terms(text: str) -> list[str]:
    """The question's content words, lower-case and unstemmed, in order, once each."""
    words = (m.group(0).lower().strip("'’-") for m in _WORD.finditer(text))
    kept = [
        w
        for w in words
        if w and w not in STOPWORDS and w not in QUESTION_WORDS and (len(w) > 2 or w.isdigit())
    ]
    return list(dict.fromkeys(kept))


@dataclass(frozen=True)
class Signals:
    """What the judgement reads; every field is a number (the model's input, in this order)."""

    top_cosine: float  # best passage's cosine to the question
    best_sentence: float  # best sentence of the top passages
    coverage: float  # IDF-weighted share of the question's terms found in the top passages
    close_coverage: float  # the same, counting terms close in the embedding space
    rarest_missing: float  # IDF of the rarest question term not found (0: none missing)
    unknown_terms: float  # share of the question's terms the collection never uses
    keyword_score: float  # best BM25 score of the top passages / the question's IDF mass
    agreement: float  # share of the top passages also among BM25's first ten
    soft_coverage: float  # IDF-weighted mean of each term's best word-vector match in them
    sentence_coverage: float  # the best of the top sentences: its soft coverage of the terms
    question_terms: float  # how many content words the question has

    def vector(self) -> np.ndarray:
        return np.asarray(astuple(self), dtype=np.float64)

    def as_dict(self) -> dict[str, float]:
        return {f.name: round(float(getattr(self, f.name)), 4) for f in fields(self)}


SIGNAL_NAMES = tuple(f.name for f in fields(Signals))


@dataclass(frozen=True)
class TermStats:
    """Document frequencies of words in a collection (by BM25's vocabulary), for IDF."""

    frequency: Callable[[str], int]
    documents: int

    def idf(self, word: str) -> float:
        df = self.frequency(word)
        return math.log(1 + (self.documents - df + 0.5) / (df + 0.5))


class WordVectors:
    """Single-word embeddings, computed once per word and kept (bounded)."""

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray], limit: int = 200_000):
        self._embed = embed
        self._cache: dict[str, np.ndarray] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def of(self, words: Sequence[str]) -> dict[str, np.ndarray]:
        with self._lock:
            missing = [w for w in dict.fromkeys(words) if w not in self._cache]
        if missing:
            vectors = self._embed(missing)
            with self._lock:
                if len(self._cache) + len(missing) > self._limit:
                    self._cache.clear()
                self._cache.update(zip(missing, vectors, strict=True))
        with self._lock:
            return {w: self._cache[w] for w in words if w in self._cache}


def _passage_words(texts: Sequence[str]) -> set[str]:
    return {m.group(0).lower().strip("'’-") for t in texts for m in _WORD.finditer(t)}


def _found(term: str, words: set[str], stems: set[str]) -> bool:
    return term in words or light_stem(term) in stems


def evidence_signals(
    question: str,
    sources: Sequence[ScoredChunk],
    stats: TermStats,
    keyword_hits: dict[str, float],
    words: WordVectors | None = None,
) -> Signals:
    """The signals of ``sources`` (best first) for ``question``. ``keyword_hits``: BM25's
    first ten chunk ids of the question with their scores."""
    top = list(sources[:TOP_PASSAGES])
    terms = question_terms(question)
    if not top or not terms:
        return Signals(0, 0, 0, 0, 0, 1, 0, 0, 0, 0, len(terms))
    cosines = [s.score for s in top]
    best_sentences = [s.best_sentence for s in top]
    texts = [f"{s.chunk.title} {' '.join(s.chunk.heading_path)} {s.chunk.text}" for s in top]
    passage_words = _passage_words(texts)
    stems = {light_stem(w) for w in passage_words}
    idf = {t: stats.idf(t) for t in terms}
    mass = sum(idf.values()) or 1.0
    found = {t for t in terms if _found(t, passage_words, stems)}
    close = set(found)
    not_found = [t for t in terms if t not in found]
    keyword = max((keyword_hits.get(s.chunk.id, 0.0) for s in top), default=0.0)
    soft = sentence_soft = 0.0
    if words is not None:
        matches = _term_matches(terms, passage_words, words)
        close |= {t for t, match in matches.items() if match >= CLOSE_TERM}
        soft = sum(idf[t] * matches.get(t, 0.0) for t in terms) / mass
        sentence_soft = max(
            (
                sum(
                    idf[t] * _term_matches([t], _passage_words([x]), words).get(t, 0.0)
                    for t in terms
                )
                / mass
                for x in top_sentences(top)
            ),
            default=0.0,
        )
    return Signals(
        top_cosine=max(cosines),
        best_sentence=max(best_sentences),
        coverage=sum(idf[t] for t in found) / mass,
        close_coverage=sum(idf[t] for t in close) / mass,
        rarest_missing=max((idf[t] for t in not_found), default=0.0),
        unknown_terms=sum(1 for t in terms if not stats.frequency(t)) / len(terms),
        keyword_score=keyword / mass,
        agreement=sum(1 for s in top if s.chunk.id in keyword_hits) / len(top),
        soft_coverage=soft,
        sentence_coverage=sentence_soft,
        question_terms=float(len(terms)),
    )


TOP_SENTENCES = 5


def top_sentences(sources: Sequence[ScoredChunk], most: int = TOP_SENTENCES) -> list[str]:
    """The sentences of the sources closest to the question (by retrieval's scores)."""
    scored = []
    for source in sources:
        chunk = source.chunk
        for score, (a, b) in zip(source.sentence_scores, chunk.sentences, strict=False):
            text = chunk.text[a:b]
            if len(text.split()) >= 4:
                scored.append((score, text))
    scored.sort(key=lambda pair: -pair[0])
    return [text for _, text in scored[:most]]


def _term_matches(
    terms: Sequence[str], passage_words: set[str], words: WordVectors
) -> dict[str, float]:
    """Each term's match in the passage words: 1 where it (or its stem) is there, else its
    best word-vector cosine (0 if negative)."""
    stems = {light_stem(w) for w in passage_words}
    found = {t: 1.0 for t in terms if _found(t, passage_words, stems)}
    missing = [t for t in terms if t not in found]
    candidates = [w for w in passage_words if w not in STOPWORDS and len(w) > 2]
    if missing and candidates:
        vectors = words.of([*missing, *candidates])
        rows = [vectors[w] for w in candidates if w in vectors]
        if rows:
            matrix = np.stack(rows)
            for term in missing:
                if term in vectors:
                    found[term] = max(0.0, float((matrix @ vectors[term]).max()))
    return found


@dataclass(frozen=True)
class EvidenceModel:
    """Standardised signals -> logistic probability that the sources answer the question."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    abstain_below: float  # the operating point chosen by `kdesk calibrate`
    weak_below: float
    names: tuple[str, ...] = SIGNAL_NAMES

    def probability(self, signals: Signals) -> float:
        x = (signals.vector() - self.mean) / self.scale
        return float(1.0 / (1.0 + math.exp(-(float(x @ self.weights) + self.bias))))

    def level(
        self,
        probability: float,
        abstain_below: float | None = None,
        weak_below: float | None = None,
    ) -> Evidence:
        low = self.abstain_below if abstain_below is None else abstain_below
        high = self.weak_below if weak_below is None else weak_below
        if probability < low:
            return "none"
        return "weak" if probability < high else "strong"

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "names": list(self.names)}
        np.savez_compressed(
            path,
            meta=np.asarray(json.dumps(meta)),
            mean=self.mean,
            scale=self.scale,
            weights=self.weights,
            bias=np.asarray(self.bias),
            thresholds=np.asarray([self.abstain_below, self.weak_below]),
        )

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL) -> EvidenceModel:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("format") != FORMAT or tuple(meta["names"]) != SIGNAL_NAMES:
                    raise KdeskError(
                        f"{path} is not an evidence model of this version: run kdesk calibrate"
                    )
                low, high = (float(v) for v in data["thresholds"])
                return cls(
                    data["mean"], data["scale"], data["weights"], float(data["bias"]), low, high
                )
        except (OSError, KeyError, ValueError) as exc:
            raise KdeskError(f"cannot read the evidence model {path}: {exc}") from None


def train_model(
    signals: Sequence[Signals], answerable: Sequence[bool], weights: Sequence[float] | None = None
) -> EvidenceModel:
    """Fit the logistic model (thresholds are set by the caller from the separation)."""
    from sklearn.linear_model import LogisticRegression

    x = np.stack([s.vector() for s in signals])
    y = np.asarray(answerable, dtype=int)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    fit = LogisticRegression(C=REGULARISATION, max_iter=2000, class_weight="balanced")
    fit.fit((x - mean) / scale, y, sample_weight=None if weights is None else np.asarray(weights))
    return EvidenceModel(mean, scale, fit.coef_[0], float(fit.intercept_[0]), 0.5, 0.5)


class EvidenceJudge:
    """Reads the signals of an answer's sources and judges them with the model."""

    def __init__(
        self, retriever: Retriever, model: EvidenceModel | None = None, path: Path | None = None
    ) -> None:
        self.retriever = retriever
        self._model = model
        self._path = path or DEFAULT_MODEL
        self.words = WordVectors(retriever.embedder.embed_documents)

    @property
    def model(self) -> EvidenceModel:
        if self._model is None:  # read on first use: `kdesk calibrate` needs only the signals
            self._model = EvidenceModel.load(self._path)
        return self._model

    def signals(
        self, question: str, sources: Sequence[ScoredChunk], collections: Sequence[str]
    ) -> Signals:
        indexes = self.retriever.keywords
        tables = [indexes.term_frequency(c) for c in collections]
        documents = sum(n for _, n in tables)

        def frequency(word: str) -> int:  # the word itself, else its stem ("limit": "limited")
            forms = (word, "~" + light_stem(word))
            return max(sum(t.get(form, 0) for t, _ in tables) for form in forms)

        hits: dict[str, float] = {}
        for collection in {s.chunk.collection for s in sources[:TOP_PASSAGES]}:
            hits.update(indexes.query(collection, question, 10))
        return evidence_signals(
            question, sources, TermStats(frequency, max(documents, 1)), hits, self.words
        )

    def judge(
        self, question: str, sources: Sequence[ScoredChunk], collections: Sequence[str]
    ) -> tuple[float, Signals]:
        signals = self.signals(question, sources, collections)
        return self.model.probability(signals), signals
