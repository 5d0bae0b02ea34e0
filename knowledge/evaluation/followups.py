"""Follow-up questions measured (docs/eval/followups.jsonl): the retrieval hit of a
conversation's follow-up turn when it is searched as asked, made standalone by the word
heuristic, or rewritten by a model; and the prompt sizes of a long conversation before and
after older turns are summarised."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from knowledge.assistant.answering import build_messages, standalone_query
from knowledge.assistant.context import estimate_tokens
from knowledge.assistant.personas import Persona, Turn
from knowledge.evaluation.retrieval import Evidence, Hit, Question, score_question

Rewrite = Callable[[str, Sequence[Turn]], str]


@dataclass(frozen=True)
class FollowUp:
    id: str
    set: str  # which collection it asks ("demo", "policies")
    turns: tuple[Turn, ...]
    follow_up: str
    evidence: tuple[Evidence, ...]


def load_followups(path: Path) -> list[FollowUp]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        items.append(
            FollowUp(
                raw["id"],
                raw["set"],
                tuple(Turn(t["question"], t["answer"]) for t in raw["turns"]),
                raw["follow_up"],
                tuple(Evidence(e["doc"], e.get("page")) for e in raw["evidence"]),
            )
        )
    return items


def as_asked(question: str, history: Sequence[Turn]) -> str:
    return question


REWRITES: dict[str, Rewrite] = {"none": as_asked, "heuristic": standalone_query}


def followup_hits(
    items: Sequence[FollowUp],
    search: Callable[[str, str], list[Hit]],
    rewrites: dict[str, Rewrite] | None = None,
) -> dict[str, dict[str, object]]:
    """Per way of making the query: page_hit@1/@5 and MRR@10 of the follow-up turn, per set
    and over all (``search(set, query)`` gives the ranked hits)."""
    report: dict[str, dict[str, object]] = {}
    for name, rewrite in (rewrites or REWRITES).items():
        rows: dict[str, list[dict[str, object]]] = {}
        for item in items:
            query = rewrite(item.follow_up, item.turns)
            question = Question(item.id, query, item.evidence)
            row = score_question(question, search(item.set, query)[:10])
            rows.setdefault(item.set, []).append(row)
            rows.setdefault("all", []).append(row)
        report[name] = {s: _scores(r) for s, r in rows.items()}
    return report


def _scores(rows: Sequence[dict[str, object]]) -> dict[str, object]:
    def mean(key: str) -> float:
        return round(sum(float(bool(r[key])) for r in rows) / len(rows), 3)

    mrr = round(sum(float(str(r["rr"])) for r in rows) / len(rows), 3)
    return {"n": len(rows), "page_hit@1": mean("page@1"), "page_hit@5": mean("page@5"), "mrr": mrr}


def long_conversation(turns: int) -> list[Turn]:
    """A conversation of ``turns`` exchanges of realistic size (answers of 3-4 sentences)."""
    topics = ["annual leave", "hotel limits", "passwords", "contract renewal", "sick leave"]
    return [
        Turn(
            f"What does the policy say about {topics[i % len(topics)]} in case {i + 1}?",
            f"For case {i + 1}, the policy on {topics[i % len(topics)]} sets a clear rule [1]. "
            "Employees must request it through the HR portal two weeks in advance [1]. "
            "A manager approves the request and records it in the system within five days [2]. "
            "Exceptions need the written approval of the department head [2].",
        )
        for i in range(turns)
    ]


def prompt_sizes(turns: int = 30, windows: Sequence[int] = (2048, 4096, 8192)) -> list[dict]:
    """Estimated prompt tokens of the next question after ``turns`` turns: every turn verbatim
    (nothing summarised) against the prompt as built for each window."""
    history = long_conversation(turns)
    persona = Persona(max_tokens=400)
    passages = ["Full-time employees are entitled to 25 working days of paid annual leave. " * 6]
    passages *= 4
    question = "And how many days can I carry over?"
    base = build_messages(question, passages, persona, ())
    whole = sum(estimate_tokens(m["content"]) for m in base) + sum(
        estimate_tokens(t.question) + estimate_tokens(t.answer) + 8 for t in history
    )
    rows = []
    for window in windows:
        messages = build_messages(question, passages, persona, history, window=window)
        verbatim = (len(messages) - 2) // 2
        rows.append(
            {
                "turns": turns,
                "window": window,
                "answer_budget": persona.max_tokens,
                "tokens_all_verbatim": whole,
                "tokens_prompt": sum(estimate_tokens(m["content"]) for m in messages),
                "verbatim_turns": verbatim,
                "summary_tokens": estimate_tokens(messages[0]["content"])
                - estimate_tokens(persona.system_prompt),
            }
        )
    return rows
