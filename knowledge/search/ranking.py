"""Ranking pieces of retrieval: reciprocal rank fusion, the names a question uses and the documents
it names, the asking part of a multi-part question, and the sentence stage."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from knowledge.core.types import Chunk

RRF_K = 60


_CLAUSE_BREAK = re.compile(r"[;?]\s+|[.:]\s+(?=[A-Z])")


def focus_query(query: str) -> str:
    """The part of a multi-part question that asks something ("Consider the supply agreement
    between A and B; when does it expire?" -> "when does it expire?"); else the whole query."""
    parts = [p.strip() for p in _CLAUSE_BREAK.split(query) if len(p.split()) >= 3]
    return parts[-1] if len(parts) > 1 else query


_WORD = re.compile(r"[^\W_][\w'&.-]*")


_SENTENCE_END = re.compile(r"[.?!;:]$")


def name_words(query: str) -> str:
    """The words by which a question names something: capitalised words that do not start a
    sentence, acronyms and words with digits ("Apple's", "NVIDIA", "Q2 2023", "Acme Corp")."""
    kept = []
    sentence_start = True
    for match in _WORD.finditer(query):
        word = match.group().rstrip(".-'")
        if word and (
            (word[0].isupper() and not sentence_start)
            or (len(word) > 1 and word.isupper())
            or any(ch.isdigit() for ch in word)
        ):
            kept.append(word)
        following = query[match.end() : match.end() + 1]
        sentence_start = bool(_SENTENCE_END.search(match.group() + following.strip()))
    return " ".join(kept)


def named_documents(
    scores: dict[str, float], share: float = 0.6, distinct: float = 3.0, most: int = 5
) -> list[str]:
    """The documents a question names: those whose profile matches it far better than the
    average document does (a name, a party, an issuer), best first; none for a question that
    could be about any of them."""
    if len(scores) < 2:
        return []
    best = max(scores.values())
    mean = sum(scores.values()) / len(scores)
    if best <= 0 or best < distinct * mean:
        return []
    ordered = sorted(scores, key=lambda d: (-scores[d], d))
    return [d for d in ordered if scores[d] >= share * best][:most]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank + 1)
    return fused


# The sentence stage weighs a passage by its best sentence in full for questions of up to
# SENTENCE_FULL words, not at all from SENTENCE_NONE words on (linear between): a short
# question ("How much vacation do I get?") is matched by one sentence far better than by a
# whole passage, while a long one reads like a passage (measured: everyday page@1 0.43 -> 0.54,
# policies MRR 0.949 -> 0.957, cuad_dev unchanged; docs/evaluation.md).
SENTENCE_FULL = 10


SENTENCE_NONE = 20


RANK_PRIOR = 0.02  # per log-rank of the earlier stages: they still break near-ties


SENTENCE_MIN_WORDS = 4  # shorter "sentences" (headings, dates, table labels) match by chance


def sentence_weight(query: str) -> float:
    words = len(query.split())
    return max(0.0, min(1.0, (SENTENCE_NONE - words) / (SENTENCE_NONE - SENTENCE_FULL)))


def sentence_stage(
    query: str,
    ranked: Sequence[str],
    sentence_scores: dict[str, tuple[float, ...]],
    similarity: dict[str, float],
    depth: int,
    chunks: dict[str, Chunk],
) -> list[str]:
    """Re-rank the first ``depth`` candidates by their best sentence of SENTENCE_MIN_WORDS
    words or more (a chunk without such sentences counts with its own cosine), weighted by
    the question's length, the earlier stages' rank breaking near-ties."""
    weight = sentence_weight(query)
    head = list(ranked[:depth])
    if not weight or not head:
        return list(ranked)

    def best(chunk_id: str) -> float:
        chunk = chunks[chunk_id]
        scores = sentence_scores.get(chunk_id, ())
        whole = [
            score
            for score, (a, b) in zip(scores, chunk.sentences, strict=False)
            if len(chunk.text[a:b].split()) >= SENTENCE_MIN_WORDS
        ]
        return max(whole, default=similarity.get(chunk_id, 0.0))

    scored = {
        chunk_id: weight * best(chunk_id) - RANK_PRIOR * float(np.log1p(rank))
        for rank, chunk_id in enumerate(head)
    }
    return sorted(head, key=lambda i: -scored[i]) + list(ranked[depth:])


def within_documents(
    ranked: Sequence[str], reranked: Sequence[str], chunks: dict[str, Chunk], depth: int
) -> list[str]:
    """``ranked``'s sequence of documents, each document's slots filled in ``reranked``'s
    order of its passages."""
    queue: dict[str, list[str]] = {}
    for chunk_id in reranked[:depth]:
        queue.setdefault(chunks[chunk_id].doc_id, []).append(chunk_id)
    head = [queue[chunks[i].doc_id].pop(0) for i in ranked[:depth]]
    return head + list(ranked[depth:])


def focus_documents(
    top: Sequence[str], fused: dict[str, float], chunks: dict[str, Chunk], share: float = 0.5
) -> list[str]:
    """The documents holding most of the first stage's weight (at most three)."""
    mass: dict[str, float] = {}
    for chunk_id in top:
        doc = chunks[chunk_id].doc_id
        mass[doc] = mass.get(doc, 0.0) + fused[chunk_id]
    best = max(mass.values())
    ordered = sorted(mass, key=mass.__getitem__, reverse=True)
    return [d for d in ordered if mass[d] >= share * best][:3]
