"""What happens when an answer stream finishes: the usage event, the metrics, the JSON log line.

``Desk.ask`` wraps every stream with ``recorded_stream``, so the chat, the command line and any
other caller record exchanges identically, once, when the last delta has been consumed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

from knowledge.assistant.chat import ChatModel, Message, Usage
from knowledge.assistant.context import context_window
from knowledge.core import metrics
from knowledge.core.types import Answer, AnswerStream, Requester
from knowledge.usage.events import TokenCount, UsageEvent, UsageLog, estimate_tokens

log = logging.getLogger("kdesk.usage")


class MeteredModel:
    """The shared chat model, seen by one question: counts what goes in and out, and keeps the
    backend's own token counts for this question's stream (the model itself keeps none, so
    questions streaming at the same time never see each other's)."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.called = False
        self.prompt_chars = 0
        self.completion_chars = 0
        self.usage: Usage = {}

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def judges_sources(self) -> bool:
        return bool(getattr(self.model, "judges_sources", False))

    @property
    def context_window(self) -> int:
        return context_window(self.model)

    @property
    def rewrites_queries(self) -> bool:
        return bool(getattr(self.model, "rewrites_queries", False))

    def stream(
        self,
        messages: Sequence[Message],
        *,
        temperature: float,
        max_tokens: int,
        usage: Usage | None = None,
    ) -> Iterator[str]:
        self.called = True
        self.prompt_chars = sum(len(m["content"]) for m in messages)
        self.usage = {}
        deltas = self.model.stream(
            messages, temperature=temperature, max_tokens=max_tokens, usage=self.usage
        )
        for delta in deltas:
            self.completion_chars += len(delta)
            yield delta
        if usage is not None:
            usage.update(self.usage)

    def tokens(self) -> TokenCount:
        if not self.called:
            return TokenCount()
        usage = self.usage
        if usage.get("prompt_tokens") or usage.get("completion_tokens"):
            return TokenCount(
                int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
            )
        return TokenCount(
            estimate_tokens(self.prompt_chars), estimate_tokens(self.completion_chars), True
        )


def recorded_stream(
    stream: AnswerStream,
    usage: UsageLog,
    model: MeteredModel,
    requester: Requester,
    collections: Sequence[str],
    persona: str,
) -> AnswerStream:
    """The same stream, recording the exchange when it has been read to the end."""

    def deltas() -> Iterator[str]:
        try:
            yield from stream
        except Exception:
            metrics.REQUEST_ERRORS.labels("answer").inc()
            log.exception("answer failed", extra={"fields": _who(requester)})
            raise
        record_exchange(usage, stream.answer, requester, collections, persona, model.tokens())

    return AnswerStream(deltas(), stream.answer)


def record_exchange(
    usage: UsageLog,
    answer: Answer,
    requester: Requester,
    collections: Sequence[str],
    persona: str,
    tokens: TokenCount,
) -> None:
    """Store the usage event (setting ``answer.event_id``), count it, log it. Never raises:
    an analytics failure must not cost the user the answer."""
    metrics.observe_answer(answer, requester, tokens.prompt, tokens.completion)
    event = UsageEvent.from_answer(answer, requester, collections, persona, tokens)
    started = time.perf_counter()
    try:
        answer.event_id = usage.record(event)
    except Exception:  # noqa: BLE001
        metrics.USAGE_RECORD_ERRORS.inc()
        log.exception("usage event not stored", extra={"fields": _who(requester)})
    log.info("exchange", extra={"fields": _exchange_fields(answer, requester, tokens, started)})


def _who(requester: Requester) -> dict[str, object]:
    return {"user": requester.user, "role": requester.role, "channel": requester.channel}


def _exchange_fields(
    answer: Answer, requester: Requester, tokens: TokenCount, record_started: float
) -> dict[str, object]:
    return _who(requester) | {
        "event_id": answer.event_id,
        "model": answer.model,
        "abstained": answer.abstained,
        "evidence": answer.evidence,
        "quoted": answer.quoted,
        "error": answer.error,
        "citations": len(answer.citations),
        "top_score": round(max((s.score for s in answer.sources), default=0.0), 4),
        "tokens_in": tokens.prompt,
        "tokens_out": tokens.completion,
        "tokens_estimated": tokens.estimated,
        "retrieval_ms": round(answer.retrieval_ms, 1),
        "first_token_ms": None
        if answer.first_token_ms is None
        else round(answer.first_token_ms, 1),
        "total_ms": round(answer.total_ms, 1),
        "record_ms": round((time.perf_counter() - record_started) * 1000, 1),
    }
