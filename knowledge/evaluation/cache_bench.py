"""`kdesk bench` section "answer_cache": a cached answer against a fresh one on the demo
documents (the configured model), the cache's cost on a miss, and the routing decision's own
overhead; plus the threshold's precision and recall over the question pairs of
knowledge/evaluation/cache_threshold.py."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from knowledge.assistant.personas import Persona
from knowledge.assistant.routing import decide
from knowledge.core.settings import Settings
from knowledge.desk.demo import load_demo
from knowledge.desk.root import Desk
from knowledge.evaluation.cache_threshold import measure

QUESTIONS = (
    "How many days of annual leave do full-time employees get?",
    "What is the daily meal allowance when travelling?",
    "How long must passwords be?",
)
PARAPHRASES = (
    "how many days of annual leave do full time employees get",
    "What is the daily meal allowance when I travel?",
    "How long do passwords have to be?",
)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _read(stream: object) -> None:
    for _ in stream:  # type: ignore[attr-defined]
        pass


def bench_cache(settings: Settings) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="kdesk-cache-bench-") as tmp:
        desk = Desk(settings.model_copy(update={"data_dir": Path(tmp), "answer_cache": True}))
        load_demo(desk)
        desk.accounts.add("bench", ["admin"], "bench", password="a long bench password")
        me = desk.for_user("bench")
        _read(me.ask("warm up the model and the indexes", fresh=True))
        fresh, exact, near, miss = [], [], [], []
        errors: list[str | None] = []
        for question, paraphrase in zip(QUESTIONS, PARAPHRASES, strict=True):
            started = time.perf_counter()
            _read(stream := me.ask(question, fresh=True))
            fresh.append(_ms(started))
            errors.append(stream.answer.error)
            started = time.perf_counter()
            _read(stream := me.ask(question))
            exact.append(_ms(started) if stream.answer.cached else None)
            started = time.perf_counter()
            _read(stream := me.ask(paraphrase))
            near.append(_ms(started) if stream.answer.cached else None)
            searched = me.searched(None)
            started = time.perf_counter()
            key = desk.answer_cache.key(question + " in 1999", searched, None, me.persona, "x")
            desk.answer_cache.lookup(key)
            miss.append(_ms(started))
        routing = _routing_overhead_us(me.search(QUESTIONS[0]))
        rows, _, _ = measure(desk.embedder.embed_query, (0.92, 0.93, 0.94, 0.95, 0.97))
        return {
            "model": desk.model.name,
            "fresh_answer_ms": fresh,
            "fresh_answer_errors": errors,  # an answer with an error is not cached
            "cached_same_question_ms": exact,
            "cached_paraphrase_ms": near,
            "miss_overhead_ms": miss,
            "routing_decision_us": routing,
            "threshold": [vars(r) for r in rows],
        }


def _routing_overhead_us(sources: list) -> float:  # type: ignore[type-arg]
    """Microseconds per routing decision (the difficulty estimate included)."""
    from knowledge.core.types import Answer

    long_question = " ".join(QUESTIONS) + " and who approves it?"
    answer = Answer(long_question, "", False, "m", sources=sources, evidence="weak")
    started = time.perf_counter()
    for _ in range(2000):
        decide(Persona(), answer, routed=True, strong_at=2)
    return round((time.perf_counter() - started) / 2000 * 1e6, 1)


if __name__ == "__main__":  # the section alone: python -m knowledge.evaluation.cache_bench
    import json

    from knowledge.core.settings import load_settings

    print(json.dumps(bench_cache(load_settings()), indent=2))
