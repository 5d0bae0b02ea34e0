"""Kept conversations on the Chat page: stored as they are asked, listed in the sidebar,
resumed after a reload (a fresh AppTest with the URL's ?c=), renamed, deleted, and never
shown to another user."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from knowledge.core.settings import load_settings
from knowledge.desk.root import Desk
from knowledge.usage.conversations import title_of
from tests.fake_ollama import FakeOllama
from tests.pages.conftest import Configure, ingest_handbook, open_page
from tests.pages.support import (
    APPROVAL_FOLLOW_UP,
    TITLE,
    VACATION_PAGE,
    VACATION_QUESTION,
)

VACATION_CITATION = f"[1] {TITLE} — page {VACATION_PAGE}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    ingest_handbook(tmp_path / "data")
    return tmp_path / "data"


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception
    return at


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception
    return at


def sidebar_labels(at: AppTest) -> list[str]:
    return [b.label for b in at.sidebar.button]


def test_a_reload_resumes_the_conversation_with_its_citations(
    data_dir: Path, ollama: FakeOllama, configure: Configure
):
    configure(data_dir, ollama.url)
    at = run(open_page("pages/chat.py"))
    ask(ask(at, VACATION_QUESTION), APPROVAL_FOLLOW_UP)
    conversation_id = at.query_params["c"]
    assert "context window 4,096 tokens" in at.sidebar.caption[0].value
    answers = [m.markdown[0].value for m in at.chat_message if m.name == "assistant"]

    reloaded = open_page("pages/chat.py")  # a new session: only the URL is left
    reloaded.query_params["c"] = conversation_id
    run(reloaded)
    assert [m.markdown[0].value for m in reloaded.chat_message] == [
        VACATION_QUESTION,
        answers[0],
        APPROVAL_FOLLOW_UP,
        answers[1],
    ]
    assert [b.label for b in reloaded.chat_message[1].button] == [VACATION_CITATION]

    chats = len(ollama.chats)
    ask(reloaded, "How many vacation days do I get?")  # continues with the stored history
    answer_call = ollama.chats[-1]["messages"]
    assert len(ollama.chats) > chats
    assert any(m["content"] == APPROVAL_FOLLOW_UP for m in answer_call), "history is sent"
    desk = Desk(load_settings(data_dir=data_dir, model_backend="ollama"))
    [kept] = desk.for_user("tester").conversations.recent()
    assert kept.id == conversation_id and kept.title == title_of(VACATION_QUESTION)
    assert len(desk.for_user("tester").conversations.get(kept.id).turns) == 3


def test_conversations_are_listed_resumed_renamed_and_deleted_by_their_owner(
    data_dir: Path, ollama: FakeOllama, configure: Configure
):
    configure(data_dir, ollama.url)
    at = run(open_page("pages/chat.py"))
    ask(at, VACATION_QUESTION)
    at.sidebar.button[0].click().run()  # New conversation
    assert len(at.chat_message) == 0 and "c" not in at.query_params
    ask(at, APPROVAL_FOLLOW_UP)

    other = run(open_page("pages/chat.py", user="mallory", roles=("employee",)))
    assert sidebar_labels(other) == ["New conversation"], "another user sees nothing"
    other.query_params["c"] = at.query_params["c"]
    run(other)
    assert len(other.chat_message) == 0 and "no longer exists" in other.warning[0].value

    at = run(open_page("pages/chat.py"))
    labels = sidebar_labels(at)
    assert labels == ["New conversation", APPROVAL_FOLLOW_UP, title_of(VACATION_QUESTION)]
    at.sidebar.button[2].click().run()  # resume the first conversation
    run(at)
    assert [m.markdown[0].value for m in at.chat_message][0] == VACATION_QUESTION

    at.sidebar.text_input[0].set_value("Vacation").run()
    at.sidebar.button(key=f"rename-{at.query_params['c']}").click().run()
    assert not at.exception
    assert at.sidebar.expander[-1].label == "**Vacation**"
    at.sidebar.button(key=f"delete-{at.query_params['c']}").click().run()
    assert not at.exception and len(at.chat_message) == 0
    desk = Desk(load_settings(data_dir=data_dir, model_backend="ollama"))
    assert [c.title for c in desk.for_user("tester").conversations.recent()] == [APPROVAL_FOLLOW_UP]
