"""Persona answer policies: must cite, may add general knowledge (marked), quote only."""

from __future__ import annotations

import re

import pytest

from knowledge.assistant.citations import GENERAL_MARK, verify_citations
from knowledge.assistant.personas import Persona
from knowledge.desk.ingestion import Upload
from tests.pdfs import make_pdf

PASSAGES = ["Full-time employees are entitled to 25 working days of paid annual leave per year."]
POLICY = [
    "Leave Policy\n\nFull-time employees are entitled to 25 working days of paid annual leave per "
    "year. Leave requests are approved by the team lead at least two weeks in advance.",
]
QUESTION = "How many days of annual leave do full-time employees get?"
MIXED = (
    "Full-time employees get 25 working days of paid annual leave [1]. "
    "Many countries also grant several public holidays on top of annual leave."
)


def test_general_knowledge_is_kept_but_marked():
    strict = verify_citations(MIXED, PASSAGES)
    assert "public holidays" not in strict.text
    general = verify_citations(MIXED, PASSAGES, allow_general=True)
    supported, unsupported = general.text.split("[1]. ")
    assert GENERAL_MARK not in supported
    assert "public holidays" in unsupported and unsupported.endswith(GENERAL_MARK)
    assert general.cited == [1]


@pytest.fixture
def policy_desk(desk):
    desk.ingest([Upload("leave.pdf", make_pdf(POLICY, title="Leave Policy"))], "HR")
    return desk


def ask(desk, persona: Persona):
    stream = desk.ask(QUESTION, ["HR"], persona=persona)
    shown = "".join(stream)
    return shown, stream.answer


def test_must_cite_drops_what_the_sources_do_not_say(policy_desk, model):
    model.reply = MIXED
    _, answer = ask(policy_desk, Persona(name="tech support"))
    assert "25 working days" in answer.text and "public holidays" not in answer.text


def test_may_add_general_knowledge_marks_it(policy_desk, model):
    model.reply = MIXED
    _, answer = ask(policy_desk, Persona(name="sales", answer_policy="general_knowledge"))
    assert "public holidays" in answer.text and answer.text.endswith(GENERAL_MARK)
    assert [c.n for c in answer.citations] == [1]


def test_quote_only_never_calls_the_model(policy_desk, model):
    shown, answer = ask(policy_desk, Persona(name="legal", answer_policy="quote_only"))
    assert model.calls == []
    assert "25 working days" in shown and answer.citations
    assert answer.model == "quotes from the sources"
    quote = re.sub(r"\s*\[\d+\]", "", answer.text)  # the sources' own words, verbatim
    assert quote in " ".join(answer.citations[0].chunk.text.split())


def test_persona_sets_temperature_max_tokens_and_system_prompt(policy_desk, model):
    model.reply = "Full-time employees get 25 working days of paid annual leave [1]."
    persona = Persona(name="support", system_prompt="Be exact.", temperature=0.0, max_tokens=99)
    ask(policy_desk, persona)
    [call] = model.calls
    assert (call["temperature"], call["max_tokens"]) == (0.0, 99)
    assert call["messages"][0] == {"role": "system", "content": "Be exact."}
