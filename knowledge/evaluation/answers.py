"""`kdesk eval --answers`: the whole answer path on a set's questions, scored.

Per question: did the desk answer or abstain, does a citation cover an evidence page (or
document, where the set has no pages), does the answer carry the gold answer's figures, how
long it took. Over the set: cited page hit (over answerable questions; an abstention is a
miss), false abstentions, abstentions on the unanswerable questions, p50 / p95 time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from knowledge.assistant.citations import figures  # the numbers of a text, citations aside
from knowledge.core.types import Answer
from knowledge.evaluation.retrieval import Question


@dataclass(frozen=True)
class AnswerRow:
    id: str
    answerable: bool
    abstained: bool
    cited_hit: bool | None  # None: unanswerable
    gold_figures: bool | None  # None: the gold answer has no figures (or there is none)
    evidence: str
    confidence: float | None
    total_ms: float
    citations: tuple[tuple[str, int, int], ...]  # (doc, first page, last page)
    signals: dict[str, float]
    verdict: str | None
    quoted: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "answerable": self.answerable,
            "abstained": self.abstained,
            "cited_hit": self.cited_hit,
            "gold_figures": self.gold_figures,
            "evidence": self.evidence,
            "confidence": self.confidence,
            "total_ms": round(self.total_ms, 1),
            "citations": [list(c) for c in self.citations],
            "signals": self.signals,
            "verdict": self.verdict,
            "quoted": self.quoted,
        }


def cited_hit(answer: Answer, question: Question) -> bool:
    """Whether a citation covers an evidence page (a document, where the set has none)."""
    for c in answer.citations:
        for e in question.evidence:
            if c.chunk.file_name != e.doc:
                continue
            if e.page is None or c.chunk.page_start <= e.page <= c.chunk.page_end:
                return True
    return False


def score_answer(question: Question, answer: Answer, gold: str | None) -> AnswerRow:
    answerable = bool(question.evidence)
    wanted = figures(gold or "")
    return AnswerRow(
        id=question.id,
        answerable=answerable,
        abstained=answer.abstained,
        cited_hit=(not answer.abstained and cited_hit(answer, question)) if answerable else None,
        gold_figures=(wanted <= figures(answer.text)) if answerable and wanted else None,
        evidence=answer.evidence if not answer.abstained else "none",
        confidence=answer.confidence,
        total_ms=answer.total_ms,
        citations=tuple(
            (c.chunk.file_name, c.chunk.page_start, c.chunk.page_end) for c in answer.citations
        ),
        signals=answer.signals,
        verdict=answer.verdict,
        quoted=answer.quoted,
    )


def run_answers(
    questions: Sequence[Question],
    gold: dict[str, str | None],
    ask: Callable[[str], Answer],
) -> tuple[dict[str, object], list[AnswerRow]]:
    rows = [score_answer(q, ask(q.question), gold.get(q.id)) for q in questions]
    return summarise_answers(rows), rows


def _share(values: Sequence[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def summarise_answers(rows: Sequence[AnswerRow]) -> dict[str, object]:
    answerable = [r for r in rows if r.answerable]
    unanswerable = [r for r in rows if not r.answerable]
    with_figures = [r for r in answerable if r.gold_figures is not None]
    ms = np.asarray([r.total_ms for r in rows]) if rows else np.zeros(1)
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "cited_hit": _share([bool(r.cited_hit) for r in answerable]),
        "false_abstentions": _share([r.abstained for r in answerable]),
        "abstained_unanswerable": _share([r.abstained for r in unanswerable]),
        "weak_answers": _share([r.evidence == "weak" and not r.abstained for r in rows]),
        "gold_figures": _share([bool(r.gold_figures) for r in with_figures]),
        "model_verdicts": sum(1 for r in rows if r.verdict),
        "quoted": _share([r.quoted for r in rows if not r.abstained]),
        "total_ms": {
            "p50": round(float(np.percentile(ms, 50)), 1),
            "p95": round(float(np.percentile(ms, 95)), 1),
        },
    }
