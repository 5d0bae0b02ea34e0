"""app.py, the router: opens on Chat, switches to Knowledge, stops cleanly on bad settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_ollama import FakeOllama
from tests.pages.conftest import Configure, open_page
from tests.pages.support import FILE_NAME, TITLE, VACATION_FACT, VACATION_QUESTION


def test_app_opens_on_chat_and_navigates_to_knowledge(
    handbook_dir: Path, ollama: FakeOllama, configure: Configure
):
    configure(handbook_dir, ollama.url)
    at = open_page("app.py").run()
    assert not at.exception
    assert [t.value for t in at.title] == ["💬 Ask the knowledge base"]
    assert at.chat_input, "the Chat page is the default page"

    at.chat_input[0].set_value(VACATION_QUESTION).run()
    assert not at.exception
    assert VACATION_FACT in at.chat_message[-1].markdown[0].value
    assert at.chat_message[-1].button[0].label.startswith(f"[1] {TITLE} — page ")

    at.switch_page("pages/library.py").run()
    assert not at.exception
    assert [t.value for t in at.title] == ["📚 Knowledge base"]
    assert at.dataframe[0].value["file"].tolist() == [FILE_NAME]

    at.switch_page("pages/chat.py").run()
    assert not at.exception
    assert len(at.chat_message) == 2, "the conversation survives a page switch"


def test_app_on_an_empty_data_dir(tmp_path: Path, ollama: FakeOllama, configure: Configure):
    configure(tmp_path / "data", ollama.url)
    at = open_page("app.py").run()
    assert not at.exception
    assert "knowledge base is empty" in at.info[0].value


def test_a_bad_setting_stops_the_app_with_a_message_naming_it(
    tmp_path: Path, ollama: FakeOllama, configure: Configure, monkeypatch: pytest.MonkeyPatch
):
    configure(tmp_path / "data", ollama.url)
    monkeypatch.setenv("KDESK_TOP_K", "0")
    at = open_page("app.py").run()
    assert not at.exception
    [error] = at.error
    assert "KDESK_TOP_K" in error.value
    assert not at.title, "no page runs"
