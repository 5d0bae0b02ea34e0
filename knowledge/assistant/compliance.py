"""Compliance rules: phrases a persona must never say, applied to every answer.

Two actions: ``block_and_rephrase`` replaces the phrase with compliant wording (the persona's
replacement text), ``refuse`` stops the answer and says why it cannot be given.

Stream safety: ``StreamFilter`` holds back any tail of the streamed text that could be the start
of a banned phrase, so a banned phrase is never yielded - not even for a moment on screen. Matching
ignores case, treats runs of spaces, line breaks, dashes and Markdown emphasis marks as one space
and ignores zero-width characters, so "Guaranteed\\n**refund**" matches "guaranteed refund".
Phrases match anywhere, also inside longer words: prefer phrases of two or more words.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from knowledge.assistant.personas import BannedAction, BannedPhrase
from knowledge.core.types import Answer, AnswerStream

SEPARATORS = frozenset("-\u2010\u2011\u2012\u2013\u2014_*~`")
IGNORED = frozenset("\u00ad\u200b\u200c\u200d\u2060\ufeff")


@dataclass(frozen=True)
class Blocked:
    phrase: str
    action: BannedAction


def normalize(text: str) -> tuple[str, list[int]]:
    """Text for matching (case-folded, separator runs as one space, zero-width characters
    dropped) and, for each of its characters, the position in ``text`` it comes from."""
    out: list[str] = []
    where: list[int] = []
    for i, char in enumerate(text):
        if char in IGNORED:
            continue
        if char.isspace() or char in SEPARATORS:
            if out and out[-1] == " ":
                continue
            out.append(" ")
            where.append(i)
            continue
        for folded in char.casefold():
            out.append(folded)
            where.append(i)
    return "".join(out), where


def _normal_phrase(phrase: str) -> str:
    return normalize(phrase)[0].strip()


def refusal_text(persona: str) -> str:
    who = f"the {persona} " if persona and persona != "default" else "the "
    return (
        f"I cannot give this answer: it would break {who}answering rules. "
        "Please rephrase your question, or ask the team responsible."
    )


@dataclass(frozen=True)
class _Hit:
    start: int  # in the original text
    end: int
    rule: BannedPhrase


class ComplianceRules:
    def __init__(self, phrases: Sequence[BannedPhrase], persona: str = "") -> None:
        self.persona = persona
        self._rules = [(p, _normal_phrase(p.phrase)) for p in phrases if _normal_phrase(p.phrase)]

    def __bool__(self) -> bool:
        return bool(self._rules)

    def first_hit(self, text: str) -> _Hit | None:
        """The earliest banned phrase in ``text`` (the longest one where several start there)."""
        norm, where = normalize(text)
        best: tuple[int, int, BannedPhrase] | None = None
        for rule, phrase in self._rules:
            found = norm.find(phrase)
            if found < 0:
                continue
            if best is None or (found, -len(phrase)) < (best[0], -best[1]):
                best = (found, len(phrase), rule)
        if best is None:
            return None
        start, length, rule = best
        return _Hit(where[start], where[start + length - 1] + 1, rule)

    def held_back(self, text: str) -> int:
        """Where the tail of ``text`` that could begin a banned phrase starts (len: none)."""
        norm, where = normalize(text)
        longest = 0
        for _, phrase in self._rules:
            for size in range(min(len(norm), len(phrase) - 1), longest, -1):
                if norm.endswith(phrase[:size]):
                    longest = size
                    break
        return where[len(norm) - longest] if longest else len(text)

    def apply(self, text: str) -> Checked:
        """A whole text with every block-and-rephrase phrase replaced, or refused."""
        out: list[str] = []
        blocked: list[Blocked] = []
        rest = text
        while hit := self.first_hit(rest):
            blocked.append(Blocked(hit.rule.phrase, hit.rule.action))
            if hit.rule.action == "refuse":
                return Checked(refusal_text(self.persona), blocked, refused=True)
            out.append(rest[: hit.start] + hit.rule.wording)
            rest = rest[hit.end :]
        return Checked("".join(out) + rest, blocked)


@dataclass
class Checked:
    text: str
    blocked: list[Blocked] = field(default_factory=list)
    refused: bool = False


class StreamFilter:
    """Feed the deltas of a stream; get back only text that can no longer become a banned
    phrase. After a ``refuse`` phrase, nothing more comes out (``refused`` is set)."""

    def __init__(self, rules: ComplianceRules) -> None:
        self.rules = rules
        self.pending = ""
        self.blocked: list[Blocked] = []
        self.refused = False

    def feed(self, delta: str) -> str:
        if self.refused:
            return ""
        self.pending += delta
        out: list[str] = []
        while hit := self.rules.first_hit(self.pending):
            self.blocked.append(Blocked(hit.rule.phrase, hit.rule.action))
            out.append(self.pending[: hit.start])
            if hit.rule.action == "refuse":
                self.refused, self.pending = True, ""
                return "".join(out)
            out.append(hit.rule.wording)
            self.pending = self.pending[hit.end :]
        cut = self.rules.held_back(self.pending)
        out.append(self.pending[:cut])
        self.pending = self.pending[cut:]
        return "".join(out)

    def finish(self) -> str:
        """The held-back tail once the stream has ended (it never became a banned phrase)."""
        rest, self.pending = ("" if self.refused else self.pending), ""
        return rest


OnBlocked = Callable[[Blocked], None]


def guarded_stream(
    stream: AnswerStream, rules: ComplianceRules, on_blocked: OnBlocked
) -> AnswerStream:
    """The same answer stream with the rules applied to every delta and to the final answer.

    A ``refuse`` phrase ends the stream at once (the model stream is closed) and the answer
    becomes a refusal without citations. ``on_blocked`` hears of each distinct phrase once."""

    answer = stream.answer
    started = time.perf_counter()

    def deltas() -> Iterator[str]:
        screen = StreamFilter(rules)
        inner = iter(stream)
        try:
            for delta in inner:
                if safe := screen.feed(delta):
                    yield safe
                if screen.refused:
                    break
            if rest := screen.finish():
                yield rest
        finally:
            close = getattr(inner, "close", None)
            if close:
                close()
        if screen.refused:
            _refuse(answer, rules.persona, started)
            blocked = screen.blocked
        else:
            blocked = screen.blocked + _check_final(answer, rules, started)
            if blocked and answer.compliance is None:
                answer.compliance = "rephrased"
        for event in dict.fromkeys(blocked):
            on_blocked(event)

    return AnswerStream(deltas(), answer)


def _check_final(answer: Answer, rules: ComplianceRules, started: float) -> list[Blocked]:
    checked = rules.apply(answer.text)
    if checked.refused:
        _refuse(answer, rules.persona, started)
    elif checked.blocked:
        answer.text = checked.text
    return checked.blocked


def _refuse(answer: Answer, persona: str, started: float) -> None:
    answer.text = refusal_text(persona)
    answer.citations = []
    answer.quoted = False
    answer.compliance = "refused"
    if not answer.total_ms:
        answer.total_ms = (time.perf_counter() - started) * 1000
