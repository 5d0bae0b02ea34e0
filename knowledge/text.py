"""Small text utilities shared by retrieval and answering: sentences, content words, overlap."""

from __future__ import annotations

import re
from collections.abc import Iterable

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[]?[A-Z0-9])|\n{2,}|\n(?=\s*[-•*\d]+[.)]?\s)")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers him his how i if in into is it its itself just me more most my
    no nor not now of off on once only or other our ours out over own same she should so some such
    than that the their theirs them then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours shall
    may must also per any within upon""".split()
)


def split_sentences(text: str) -> list[str]:
    parts = (p.strip() for p in _SENTENCE_END.split(text))
    return [p for p in parts if p]


def light_stem(word: str) -> str:
    for suffix in ("ies", "ied"):
        if word.endswith(suffix) and len(word) > 5:
            return word[: -len(suffix)] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {
        light_stem(w)
        for w in (m.group(0).lower().strip("'’-") for m in _WORD.finditer(text))
        if w and w not in STOPWORDS and (len(w) > 2 or w.isdigit())
    }


def overlap(claim: Iterable[str] | str, source: set[str]) -> float:
    """Share of the claim's content words that the source contains (0..1)."""
    words = content_words(claim) if isinstance(claim, str) else set(claim)
    if not words:
        return 0.0
    return len(words & source) / len(words)
