"""The leak test through the chat page (AppTest over the real stack and a fake Ollama): a user
of one side asks generated questions naming the other side's documents, in conversations (so
follow-ups carry the previous question along); nothing the page renders - answer, citations,
closest passages, captions - nor the sources the model was sent may come from the other side.
The counter-check: a user holding both sides' roles sees the documents the questions name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from knowledge.core.settings import load_settings
from knowledge.desk.root import Desk
from tests.fake_ollama import FakeOllama
from tests.leaks import (
    BOTH,
    GENERIC,
    SIDES,
    Side,
    answer_leaks,
    furnish,
    leaked_text,
    mixed_questions,
    other,
    probe,
    questions_naming,
)
from tests.pages.conftest import FAST_HASHER, Configure, open_page

CONVERSATION = 4  # questions per conversation before the history is cleared


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[tuple[Path, dict]]:
    """A data dir holding both sides; the doc ids of each side's user. Tests must not change
    what it holds (their questions only add usage events)."""
    data_dir = tmp_path_factory.mktemp("chat-leaks") / "data"
    desk = Desk(load_settings(data_dir=data_dir, model_backend="ollama"), embedder=embedder)
    desk.accounts.hasher = FAST_HASHER
    yield data_dir, furnish(desk)


def chat_questions(side: Side) -> list[str]:
    """What ``side``'s user asks on the page: a deterministic sample of the generated ones."""
    naming = [q.text for q in questions_naming(other(side))[::10]]
    mixed = [q.text for q in mixed_questions(side)[::2]]
    return naming + mixed + list(GENERIC[::3])


def texts(nodes: Iterable[object]) -> str:
    """Every text the nodes show: labels, values, and the options of widgets."""
    found: list[str] = []
    for node in nodes:
        for attribute in ("label", "value", "options"):
            try:
                value = getattr(node, attribute, None)
            except Exception:  # noqa: BLE001 - some node kinds have no value
                value = None
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, list | tuple):
                found.extend(str(v) for v in value)
    return "\n".join(found)


def rendered(at: AppTest) -> str:
    """What the last assistant message shows: the answer, notes, captions, the citation
    buttons, the closest passages."""
    message = at.chat_message[-1]
    assert message.name == "assistant"
    return texts(message)


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, question
    return at


@pytest.mark.parametrize("side", SIDES, ids=lambda s: s.user)
def test_the_chat_never_shows_the_other_sides_documents(
    side: Side, office: tuple[Path, dict], ollama: FakeOllama, configure: Configure
):
    data_dir, doc_ids = office
    configure(data_dir, ollama.url)
    at = open_page("pages/chat.py", user=side.user, roles=[side.role]).run()
    assert not at.exception
    assert at.multiselect(key="collections").options == list(side.collections)
    leaks = [f"sidebar: {t}" for t in leaked_text(texts(at.sidebar), side, "")]
    questions = chat_questions(side)
    for i, question in enumerate(questions):
        if i % CONVERSATION == 0:
            at.session_state["history"] = []
        before = len(ollama.chats)
        shown = rendered(ask(at, question))
        leaks += [f"{question!r}: shown {t}" for t in leaked_text(shown, side, "")]
        answer = at.session_state["history"][-1]
        leaks += answer_leaks(side, doc_ids[side.user], answer, ollama.chats[before:])
    assert not leaks, f"{len(leaks)} leaks, e.g. {leaks[:5]}"
    assert len(questions) >= 25 and len(ollama.chats) >= 5, "some answers come from the model"


def test_a_user_holding_both_sides_sees_the_documents_these_questions_name(
    office: tuple[Path, dict], ollama: FakeOllama, configure: Configure
):
    data_dir, _ = office
    configure(data_dir, ollama.url)
    roles = [s.role for s in SIDES]
    at = open_page("pages/chat.py", user=BOTH, roles=roles).run()
    assert at.multiselect(key="collections").options == sorted(
        c for s in SIDES for c in s.collections
    )
    for side in SIDES:
        doc = side.docs[0]
        shown = rendered(ask(at, probe(doc)))
        assert doc.title in shown, shown
        assert leaked_text(shown, other(side), ""), "the detector sees the other side's text"
        assert leaked_text(texts(at.sidebar), other(side), ""), "and the other side's documents"
