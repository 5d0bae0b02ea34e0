"""Long conversations within the model's context window: the newest turns go into the prompt
as they were said, older ones are replaced by a short extractive summary (each turn's question
and the first sentence of its answer), and everything is sized by a token estimate so that the
prompt and the answer's budget fit the window the backend is assumed to have."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from knowledge.assistant.citations import strip_citations
from knowledge.assistant.personas import Turn
from knowledge.core.text import split_sentences

DEFAULT_WINDOW = 4096  # tokens, for a model that does not say
VERBATIM_TURNS = 4  # at most this many newest turns word for word
TURN_ANSWER_CHARS = 600  # of each verbatim answer (a long answer's opening carries its point)
SUMMARY_LINE_CHARS = 220
MARGIN_TOKENS = 64  # the chat template's own tokens, and the estimate's error


def estimate_tokens(text: str) -> int:
    """About four characters a token (English text, Llama-family tokenizers)."""
    return (len(text) + 3) // 4


def context_window(model: object) -> int:
    """The window the model's backend is assumed to have (``context_window`` of a backend)."""
    return int(getattr(model, "context_window", DEFAULT_WINDOW) or DEFAULT_WINDOW)


@dataclass(frozen=True)
class FittedHistory:
    summary: str  # the older turns, one line each ("" when every turn is kept verbatim)
    recent: tuple[Turn, ...]  # the newest turns, verbatim (answers without citation marks)
    summarised: int  # how many older turns the summary stands for (some may be left out)

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.summary) + sum(turn_tokens(t) for t in self.recent)


def verbatim(turn: Turn) -> Turn:
    return Turn(turn.question, strip_citations(turn.answer)[:TURN_ANSWER_CHARS])


def turn_tokens(turn: Turn) -> int:
    return estimate_tokens(turn.question) + estimate_tokens(turn.answer) + 8


def summary_line(turn: Turn) -> str:
    sentences = split_sentences(strip_citations(turn.answer))
    gist = sentences[0] if sentences else ""
    line = f"- Asked: {' '.join(turn.question.split())} Answer: {gist}"
    return line if len(line) <= SUMMARY_LINE_CHARS else line[: SUMMARY_LINE_CHARS - 1] + "…"


def fit_history(history: Sequence[Turn], budget_tokens: int) -> FittedHistory:
    """The conversation in at most ``budget_tokens``: newest turns verbatim (up to
    ``VERBATIM_TURNS``, within three quarters of the budget), the older ones summarised in what
    is left, their newest lines kept first."""
    recent: list[Turn] = []
    used = 0
    for turn in reversed(history):
        kept = verbatim(turn)
        cost = turn_tokens(kept)
        if len(recent) >= VERBATIM_TURNS or used + cost > budget_tokens * 3 // 4:
            break
        recent.insert(0, kept)
        used += cost
    older = list(history[: len(history) - len(recent)])
    lines: list[str] = []
    room = budget_tokens - used - estimate_tokens(SUMMARY_HEADING)
    for turn in reversed(older):
        line = summary_line(turn)
        cost = estimate_tokens(line) + 1
        if cost > room:
            break
        lines.insert(0, line)
        room -= cost
    summary = SUMMARY_HEADING + "\n".join(lines) if lines else ""
    return FittedHistory(summary, tuple(recent), len(older))


SUMMARY_HEADING = "Earlier in this conversation:\n"


def history_budget(window: int, answer_tokens: int, prompt_without_history: str) -> int:
    """What is left of the window for the conversation once the rest of the prompt and the
    answer's tokens are counted."""
    left = window - answer_tokens - estimate_tokens(prompt_without_history) - MARGIN_TOKENS
    return max(0, left)
