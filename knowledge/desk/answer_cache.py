"""The answer cache: the same or a near-identical question, asked in the same scope, gets the
stored answer at once (``Answer.cached``, with its citations).

The scope is everything an answer depends on: the searched collections (the user's permission
set: only collections they may read are ever searched) and each one's revision, the metadata
filter, the persona (name and a hash of all its settings, answering rules included) and the
role. Any change to a searched collection bumps its revision, so its entries are never found
again (and expire). Within a scope a question is found by its normalised text, else by the
nearest stored question vector at or above ``KDESK_ANSWER_CACHE_THRESHOLD`` with the same
numbers (measured: docs/evaluation.md). Answers with an error or a fallback note are not kept.
A cached answer is recorded as a usage event (``cached``, no tokens) and counts as a request
against the rate limit; a cache failure never costs the answer (the question is answered fresh).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge.assistant.answering import standalone_query
from knowledge.assistant.personas import Persona, Turn
from knowledge.core.types import Answer, AnswerStream, Chunk, Citation, Requester, ScoredChunk
from knowledge.desk.cache_stores import (
    CacheEntry,
    CacheStore,
    DatabaseCacheStore,
    RedisCacheStore,
)
from knowledge.search.filters import SearchFilter
from knowledge.usage.events import TokenCount
from knowledge.usage.recording import record_exchange

if TYPE_CHECKING:
    from knowledge.desk.root import Desk

log = logging.getLogger("kdesk.cache")
# the measured thresholds (knowledge/evaluation/cache_threshold.py, docs/evaluation.md): int8
# vectors are noisier, so paraphrases score lower there
THRESHOLD = {"int8": 0.94, "float32": 0.97}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def normalise(question: str) -> str:
    return " ".join(question.lower().split()).rstrip("?!. ")


def numbers(question: str) -> frozenset[str]:
    """ "Q3 2024" and "Q2 2024" embed almost alike: a hit must name the same numbers."""
    return frozenset(_NUMBER.findall(question))


@dataclass(frozen=True)
class CacheKey:
    scope: str
    question: str  # normalised
    question_hash: str
    vector: np.ndarray


def scope_of(
    collections: Sequence[str],
    revisions: dict[str, int],
    where: SearchFilter | None,
    persona: Persona,
    role: str,
) -> str:
    settings = json.dumps(asdict(persona), sort_keys=True, default=str)
    parts = {
        "collections": sorted(collections),
        "revisions": {c: revisions.get(c, -1) for c in sorted(collections)},
        "filter": asdict(where) if where is not None and not where.empty else None,
        "persona": persona.name,
        "persona_settings": hashlib.sha256(settings.encode()).hexdigest(),
        "role": role,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class AnswerCache:
    def __init__(
        self,
        store: CacheStore,
        revisions: Callable[[], dict[str, int]],
        embed: Callable[[str], np.ndarray],
        chunks: Callable[[Sequence[str]], dict[str, Chunk]],
        *,
        threshold: float,
        ttl_s: int,
        enabled: bool = True,
    ) -> None:
        self.store = store
        self.revisions = revisions
        self.embed = embed
        self.chunks = chunks
        self.threshold = threshold
        self.ttl_s = ttl_s
        self.enabled = enabled

    @classmethod
    def for_desk(cls, desk: Desk) -> AnswerCache:
        s = desk.settings
        store: CacheStore = (
            RedisCacheStore(s.redis_url, s.answer_cache_ttl_s)
            if s.redis_url
            else DatabaseCacheStore(desk.engine)
        )
        return cls(
            store,
            desk.store.revisions,
            lambda text: desk.embedder.embed_query(text),
            desk.store.chunks,
            threshold=s.answer_cache_threshold
            or THRESHOLD["int8" if s.embedding_int8 else "float32"],
            ttl_s=s.answer_cache_ttl_s,
            enabled=s.answer_cache,
        )

    def key(
        self,
        question: str,
        collections: Sequence[str],
        where: SearchFilter | None,
        persona: Persona,
        role: str,
    ) -> CacheKey:
        scope = scope_of(collections, self.revisions(), where, persona, role)
        text = normalise(question)
        digest = hashlib.sha256(text.encode()).hexdigest()
        vector = np.asarray(self.embed(text), dtype=np.float32)
        return CacheKey(scope, text, digest, vector)

    def lookup(self, key: CacheKey) -> Answer | None:
        """The stored answer for ``key``: the same question, else the nearest one in scope."""
        entry = self.store.entry(key.scope, key.question_hash)
        if entry is None or entry.expired:
            entry = self._nearest(key)
        if entry is None:
            return None
        answer = from_payload(entry.payload, self.chunks)
        if answer is None:  # a cited passage is gone: never serve it
            self.store.drop(key.scope, entry.question_hash)
        return answer

    def _nearest(self, key: CacheKey) -> CacheEntry | None:
        wanted = numbers(key.question)
        best, best_score = None, self.threshold
        for entry in self.store.entries(key.scope):
            if entry.expired or numbers(entry.question) != wanted:
                continue
            score = float(np.dot(entry.vector, key.vector))
            if score >= best_score:
                best, best_score = entry, score
        return best

    def remember(self, key: CacheKey, answer: Answer) -> None:
        if answer.error or answer.notes or answer.cached:
            return
        expires = time.time() + self.ttl_s
        entry = CacheEntry(key.question_hash, key.question, key.vector, to_payload(answer), expires)
        self.store.put(key.scope, entry)


def to_payload(answer: Answer) -> dict[str, Any]:
    return {
        "text": answer.text,
        "abstained": answer.abstained,
        "model": answer.model,
        "evidence": answer.evidence,
        "quoted": answer.quoted,
        "dropped": answer.dropped,
        "confidence": answer.confidence,
        "verdict": answer.verdict,
        "compliance": answer.compliance,
        "route": answer.route,
        "route_reason": answer.route_reason,
        "total_ms": answer.total_ms,
        "citations": [
            {"n": c.n, "chunk": c.chunk.id, "score": c.score, "quote": c.quote, "page": c.page}
            for c in answer.citations
        ],
        "sources": [
            {"chunk": s.chunk.id, "score": s.score, "sentences": list(s.sentence_scores)}
            for s in answer.sources
        ],
        # passages made from clause records (knowledge.contracts.chat) are no stored chunks:
        # kept whole, their collection's revision guards them
        "records": {
            c.id: _chunk_values(c)
            for c in [*(x.chunk for x in answer.citations), *(x.chunk for x in answer.sources)]
            if c.id.startswith(CLAUSE_PREFIX)
        },
    }


CLAUSE_PREFIX = "clause-"


def _chunk_values(chunk: Chunk) -> dict[str, Any]:
    values = asdict(chunk)
    values["page_labels"] = list(chunk.page_labels.items())
    values["ocr_pages"] = list(chunk.ocr_pages.items())
    return values


def _chunk(values: dict[str, Any]) -> Chunk:
    fields = dict(values)
    fields["heading_path"] = tuple(fields["heading_path"])
    fields["sentences"] = tuple(tuple(s) for s in fields["sentences"])
    fields["page_labels"] = dict(fields["page_labels"])
    fields["ocr_pages"] = dict(fields["ocr_pages"])
    return Chunk(**fields)


def from_payload(
    payload: dict[str, Any], chunks: Callable[[Sequence[str]], dict[str, Chunk]]
) -> Answer | None:
    """The stored answer with its passages read again (None when one no longer exists)."""
    ids = [c["chunk"] for c in payload["citations"]] + [s["chunk"] for s in payload["sources"]]
    stored = [i for i in dict.fromkeys(ids) if not i.startswith(CLAUSE_PREFIX)]
    found = chunks(stored)
    found.update({i: _chunk(v) for i, v in payload.get("records", {}).items()})
    if any(i not in found for i in ids):
        return None
    first = f"first answered by {payload['model']}, route {payload['route']}"
    return Answer(
        question="",
        text=payload["text"],
        abstained=payload["abstained"],
        model=payload["model"],
        citations=[
            Citation(c["n"], found[c["chunk"]], c["score"], c["quote"], c["page"])
            for c in payload["citations"]
        ],
        sources=[
            ScoredChunk(found[s["chunk"]], s["score"], tuple(s["sentences"]))
            for s in payload["sources"]
        ],
        evidence=payload["evidence"],
        quoted=payload["quoted"],
        dropped=payload["dropped"],
        confidence=payload["confidence"],
        verdict=payload["verdict"],
        compliance=payload["compliance"],
        route="cache",
        route_reason=f"cached answer ({first}: {payload['route_reason']})",
        cached=True,
    )


def ask_cached(
    desk: Desk,
    question: str,
    searched: Sequence[str],
    *,
    history: Sequence[Turn],
    where: SearchFilter | None,
    persona: Persona,
    requester: Requester,
    fresh: bool = False,
) -> AnswerStream:
    """``Desk.ask`` behind the cache: a stored answer when there is one (unless ``fresh``),
    else a fresh answer that is kept once it has been read to the end."""
    cache = desk.answer_cache
    if not cache.enabled or not searched or not question.strip():
        return desk.ask(
            question, searched, history=history, persona=persona, requester=requester, where=where
        )
    started = time.perf_counter()
    key, found = None, None
    try:
        query = standalone_query(question, history)
        key = cache.key(query, searched, where, persona, requester.role)
        found = None if fresh else cache.lookup(key)
    except Exception:  # noqa: BLE001 - the cache is an optimisation: answer fresh
        log.warning("answer cache lookup failed; answering fresh", exc_info=True)
    if found is not None:
        return _served(desk, found, question, searched, persona, requester, started)
    stream = desk.ask(
        question, searched, history=history, persona=persona, requester=requester, where=where
    )
    return stream if key is None else _remembered(cache, key, stream)


def ask_trusted(
    desk: Desk,
    question: str,
    collections: Sequence[str] | None,
    requester: Requester,
    where: SearchFilter | None = None,
    fresh: bool = False,
) -> AnswerStream:
    """``ask_cached`` for a trusted caller (``kdesk ask`` without --user): the collections
    named (default: all) and the default persona."""
    s = desk.settings
    persona = Persona(temperature=s.temperature, max_tokens=s.max_answer_tokens)
    searched = list(collections) if collections is not None else desk.store.collection_names()
    return ask_cached(
        desk,
        question,
        searched,
        history=(),
        where=where,
        persona=persona,
        requester=requester,
        fresh=fresh,
    )


def _served(
    desk: Desk,
    answer: Answer,
    question: str,
    searched: Sequence[str],
    persona: Persona,
    requester: Requester,
    started: float,
) -> AnswerStream:
    answer.question = question
    answer.standalone_query = question
    answer.total_ms = answer.first_token_ms = (time.perf_counter() - started) * 1000

    def deltas() -> Iterator[str]:
        yield answer.text
        record_exchange(desk.usage, answer, requester, searched, persona.name, TokenCount())

    return AnswerStream(deltas(), answer)


def _remembered(cache: AnswerCache, key: CacheKey, stream: AnswerStream) -> AnswerStream:
    def deltas() -> Iterator[str]:
        yield from stream
        try:
            cache.remember(key, stream.answer)
        except Exception:  # noqa: BLE001 - the answer was given; only its reuse is lost
            log.warning("answer not cached", exc_info=True)

    return AnswerStream(deltas(), stream.answer)
