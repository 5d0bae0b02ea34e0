"""Model routing: the role's rule, the difficulty estimate, the fallback from a strong model
that is down, and what the usage event records."""

from __future__ import annotations

import socket

import pytest

from knowledge.access.roles import Role
from knowledge.assistant.chat import OllamaChatModel
from knowledge.assistant.personas import Persona
from knowledge.assistant.routing import (
    FALLBACK_NOTE,
    ModelRouter,
    decide,
    estimate_difficulty,
    parse_spec,
)
from knowledge.core.types import Answer, Chunk, ScoredChunk
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.usage.analytics import summary
from knowledge.usage.events import UsageFilter
from tests.conftest import ScriptedChatModel
from tests.pdfs import make_pdf

LEAVE = [
    "Leave Policy\n\nFull-time employees are entitled to 25 working days of paid annual leave "
    "per year. Leave requests are approved by the team lead two weeks in advance."
]
EASY = "How many days of paid annual leave do full-time employees get?"
HARD = (
    "Consider the leave policy for full-time employees in the company handbook: how many working "
    "days of paid annual leave are they entitled to per year, and who approves leave requests?"
)


def chunk(doc: str) -> ScoredChunk:
    c = Chunk(f"{doc}-1", doc, "HR", f"{doc}.pdf", doc, 1, 1, (), 0, 4, "text", "h")
    return ScoredChunk(c, 0.8)


def answer(question: str, docs: int = 1, evidence: str = "strong") -> Answer:
    found = [chunk(f"d{n}") for n in range(docs)]
    return Answer(question, "", False, "m", sources=found, evidence=evidence)  # type: ignore[arg-type]


def test_the_estimate_gives_a_point_and_a_reason_per_feature():
    assert estimate_difficulty(answer(EASY)).score == 0
    hard = estimate_difficulty(answer(HARD, docs=3, evidence="weak"))
    assert hard.score == 4
    assert hard.reasons == (
        "long question (30 words)",
        "2 parts",
        "evidence spread over 3 documents",
        "weak evidence",
    )
    tool = estimate_difficulty(answer("How many days between 3 March and 9 May?"))
    assert tool.reasons == ("a tool is needed (a calculation)",)


def test_rules_choose_before_the_estimate():
    easy, hard = answer(EASY), answer(HARD)
    assert decide(Persona(), easy, routed=True, strong_at=2).route == "fast"
    assert decide(Persona(), hard, routed=True, strong_at=2).route == "strong"
    assert decide(Persona(route="strong"), easy, routed=True, strong_at=2).reason == (
        "role rule: strong"
    )
    assert decide(Persona(route="fast"), hard, routed=True, strong_at=2).route == "fast"
    assert decide(Persona(), hard, routed=False, strong_at=2).route == "single"
    assert decide(Persona(model="ollama:x"), hard, routed=True, strong_at=2).route == "persona"
    assert decide(Persona(), hard, routed=True, strong_at=3).route == "fast"


def test_specs_name_a_backend_a_model_and_a_url():
    assert parse_spec("ollama:llama3.2:3b@http://gpu:11434") == (
        "ollama",
        "llama3.2:3b",
        "http://gpu:11434",
    )
    assert parse_spec("llama3.2:3b") == ("", "llama3.2:3b", "")
    assert parse_spec("embedded") == ("embedded", "", "")


@pytest.fixture
def routed(desk: Desk) -> tuple[Desk, ScriptedChatModel, ScriptedChatModel]:
    desk.ingest([Upload("leave.pdf", make_pdf(LEAVE, title="Leave Policy"))], "HR")
    fast = ScriptedChatModel("Employees get 25 working days [1].", name="fast · small")
    strong = ScriptedChatModel("Employees get 25 working days [1].", name="strong · big")
    desk.router = ModelRouter(desk.settings, desk.model_for, fast=fast, strong=strong)
    desk.settings.answer_cache = False
    desk.answer_cache.enabled = False
    return desk, fast, strong


def asked(desk: Desk, question: str, user: str = "hanna") -> Answer:
    stream = desk.for_user(user).ask(question)
    "".join(stream)
    return stream.answer


def test_an_easy_question_goes_to_the_fast_model_a_hard_one_to_the_strong(routed):
    desk, fast, strong = routed
    desk.roles.save(Role("hr", pages=("chat",), collections=("HR",)), "test")
    desk.accounts.add("hanna", ["hr"], "test", password="a long test password")
    easy = asked(desk, EASY)
    assert (easy.route, easy.model) == ("fast", "fast · small") and len(fast.calls) == 1
    assert easy.route_reason.startswith("auto: score")
    hard = asked(desk, HARD)
    assert (hard.route, hard.model) == ("strong", "strong · big") and len(strong.calls) == 1
    event = desk.usage.event(hard.event_id or "")
    assert event["route"] == "strong" and "long question" in str(event["route_reason"])
    assert event["model"] == "strong · big" and event["cached"] is False
    routes = summary(desk.engine, UsageFilter())["routes"]
    assert {r: v["answers"] for r, v in routes.items()} == {"fast": 1, "strong": 1}
    assert routes["strong"]["tokens"] > 0 and routes["fast"]["mean_total_ms"] > 0


def test_a_role_rule_overrides_the_estimate(routed):
    desk, fast, strong = routed
    desk.roles.save(
        Role("hr", pages=("chat",), collections=("HR",), persona=Persona("hr", route="strong")),
        "test",
    )
    desk.accounts.add("hanna", ["hr"], "test", password="a long test password")
    found = asked(desk, EASY)
    assert found.route == "strong" and found.route_reason == "role rule: strong"
    assert strong.calls and not fast.calls


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_when_the_strong_model_is_down_the_fast_one_answers_and_says_so(routed):
    desk, fast, _ = routed
    down = OllamaChatModel(
        f"http://127.0.0.1:{closed_port()}", "big", timeout_s=2, connect_timeout_s=0.5
    )
    desk.router = ModelRouter(desk.settings, desk.model_for, fast=fast, strong=down)
    desk.roles.save(Role("hr", pages=("chat",), collections=("HR",)), "test")
    desk.accounts.add("hanna", ["hr"], "test", password="a long test password")
    found = asked(desk, HARD)
    assert found.route == "fast" and found.model == "fast · small"
    assert found.notes == [FALLBACK_NOTE] and found.error is None
    assert "fallback: the strong model is unavailable" in found.route_reason
    assert "25" in found.text and len(fast.calls) == 1
    event = desk.usage.event(found.event_id or "")
    assert event["route"] == "fast" and "fallback" in str(event["route_reason"])


def test_without_a_fast_and_a_strong_model_routing_is_recorded_as_off(desk: Desk, model):
    desk.ingest([Upload("leave.pdf", make_pdf(LEAVE, title="Leave Policy"))], "HR")
    stream = desk.ask(EASY, ["HR"])
    "".join(stream)
    assert stream.answer.route == "single" and stream.answer.model == model.name
    assert desk.usage.event(stream.answer.event_id or "")["route"] == "single"
