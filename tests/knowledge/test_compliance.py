"""Compliance rules: banned phrases never reach the screen, however the stream splits them."""

from __future__ import annotations

import random

import pytest

from knowledge.assistant.compliance import (
    Blocked,
    ComplianceRules,
    StreamFilter,
    guarded_stream,
    normalize,
    refusal_text,
)
from knowledge.assistant.personas import DEFAULT_REPLACEMENT, BannedPhrase
from knowledge.core.types import Answer, AnswerStream

REFUND = BannedPhrase("guaranteed refund", "block_and_rephrase", "a refund under our policy")
PROMISE = BannedPhrase("we promise", "refuse")
RULES = ComplianceRules([REFUND, PROMISE], persona="sales")
BANNED = ("guaranteed refund", "we promise")


def contains_banned(text: str) -> bool:
    norm = normalize(text)[0]
    return any(phrase in norm for phrase in BANNED)


def run_filter(deltas: list[str], rules: ComplianceRules = RULES) -> tuple[list[str], StreamFilter]:
    screen = StreamFilter(rules)
    shown: list[str] = []
    for delta in deltas:
        shown.append(screen.feed(delta))
        if screen.refused:
            break
    shown.append(screen.finish())
    return shown, screen


def every_prefix_is_clean(shown: list[str]) -> bool:
    """What the screen shows after each delta: the concatenation so far."""
    text = ""
    for piece in shown:
        text += piece
        if contains_banned(text):
            return False
    return True


def test_normalize_folds_case_separators_and_zero_width_characters():
    assert normalize("Guaranteed\n**Refund**")[0] == "guaranteed refund "
    assert normalize("guaran\u200bteed  re-fund")[0] == "guaranteed re fund"
    norm, where = normalize("A  b")
    assert norm == "a b" and where == [0, 1, 3]


def test_a_phrase_split_across_deltas_is_replaced_and_never_shown():
    deltas = ["You get a guar", "ant", "eed re", "fund within 30 days [1]."]
    shown, screen = run_filter(deltas)
    assert every_prefix_is_clean(shown)
    assert "".join(shown) == "You get a a refund under our policy within 30 days [1]."
    assert screen.blocked == [Blocked("guaranteed refund", "block_and_rephrase")]


def test_held_back_text_is_released_when_it_does_not_become_the_phrase():
    shown, screen = run_filter(["We offer a guaran", "tee of quality."])
    assert shown[0] == "We offer a "  # "guaran" could be the start of the phrase: held back
    assert "".join(shown) == "We offer a guarantee of quality."
    assert not screen.blocked


def test_refuse_stops_the_stream_before_the_phrase():
    shown, screen = run_filter(["Yes, ", "we pro", "mise delivery ", "tomorrow."])
    assert every_prefix_is_clean(shown)
    assert "".join(shown) == "Yes, "
    assert screen.refused and screen.blocked == [Blocked("we promise", "refuse")]
    assert screen.feed("more") == "" and screen.finish() == ""


def test_case_line_breaks_and_markdown_do_not_hide_a_phrase():
    shown, screen = run_filter(["A ", "**Guaranteed**\n", "REFUND", " for all."])
    assert every_prefix_is_clean(shown)
    assert screen.blocked and "our policy" in "".join(shown)


def test_without_a_replacement_a_neutral_wording_is_used():
    rules = ComplianceRules([BannedPhrase("free returns")])
    assert rules.apply("We have free returns.").text == f"We have {DEFAULT_REPLACEMENT}."


@pytest.mark.parametrize("seed", range(40))
def test_random_splits_never_show_a_banned_phrase(seed: int):
    rng = random.Random(seed)
    words = ["Our", "policy", "offers", "a", "guaranteed", "refund", "and", "we", "promise"]
    text = " ".join(rng.choice(words) for _ in range(30)) + " guaranteed refund."
    cuts = sorted(rng.sample(range(1, len(text)), 12))
    deltas = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    shown, _ = run_filter(deltas)
    assert every_prefix_is_clean(shown)


def test_apply_to_a_whole_text():
    checked = RULES.apply("A guaranteed refund, and a Guaranteed  Refund again.")
    assert not contains_banned(checked.text) and len(checked.blocked) == 2
    refused = RULES.apply("We promise it.")
    assert refused.refused and refused.text == refusal_text("sales")
    assert RULES.apply("Nothing to see.").blocked == []


def answer_stream(deltas: list[str], final: str) -> AnswerStream:
    answer = Answer(question="q", text="", abstained=False, model="m")

    def produce():
        yield from deltas
        answer.text = final

    return AnswerStream(produce(), answer)


def test_guarded_stream_filters_the_deltas_and_the_final_answer():
    blocked: list[Blocked] = []
    stream = guarded_stream(
        answer_stream(["Yes, a guaranteed ", "refund [1]."], "Yes, a guaranteed refund [1]."),
        RULES,
        blocked.append,
    )
    shown = "".join(stream)
    assert not contains_banned(shown) and not contains_banned(stream.answer.text)
    assert stream.answer.compliance == "rephrased"
    assert blocked == [Blocked("guaranteed refund", "block_and_rephrase")], "once per phrase"


def test_guarded_stream_refusal_closes_the_model_stream_and_drops_citations():
    closed = []

    def produce():
        try:
            yield "We "
            yield "promise "
            yield "never reached"
        finally:
            closed.append(True)

    answer = Answer(question="q", text="", abstained=False, model="m")
    blocked: list[Blocked] = []
    stream = guarded_stream(AnswerStream(produce(), answer), RULES, blocked.append)
    assert "".join(stream) == ""
    assert closed == [True]
    assert answer.compliance == "refused" and answer.text == refusal_text("sales")
    assert answer.citations == [] and blocked == [Blocked("we promise", "refuse")]
