"""Versions on the pages, through AppTest: the Knowledge page's "replaces an earlier version"
upload, the proposal to confirm, the version chain and what changed; the chat's narrow-down
option that lets earlier versions in."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from knowledge.core.settings import load_settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.fake_ollama import FakeOllama
from tests.pages.conftest import Configure, finish_jobs, open_page
from tests.pdfs import make_pdf

QUESTION = "How many days of paid annual leave do employees receive?"
PDF = "application/pdf"


def leave_policy(days: int, year: int) -> bytes:
    return make_pdf(
        [
            f"Annual Leave\n\nEmployees receive {days} days of paid annual leave each year. "
            "Leave requests go to the line manager two weeks ahead.",
            "Sick Leave\n\nA medical certificate is needed after three days of absence.",
        ],
        title=f"Leave Policy {year}",
    )


def open_it(configure: Configure, data_dir: Path, host: str, page: str) -> AppTest:
    configure(data_dir, host)
    at = open_page(page).run()
    assert not at.exception
    return at


def upload(at: AppTest, name: str, data: bytes, replaces: str | None = None) -> AppTest:
    picker = at.selectbox(key="collection_choice")
    if "HR" in picker.options:
        picker.select("HR")
    else:
        picker.select("➕ New collection…")
        at.text_input(key="new_collection").input("HR")
    if replaces:
        at.selectbox(key="upload_supersedes").select(replaces)
    at.file_uploader(key="files").set_value([(name, data, PDF)])
    at.form_submit_button[0].click().run()
    assert not at.exception
    return finish_jobs(at)


def test_upload_a_new_version_then_the_chain_and_what_changed(
    tmp_path: Path, ollama: FakeOllama, configure: Configure
):
    at = open_it(configure, tmp_path / "data", ollama.url, "pages/library.py")
    upload(at, "leave-2024.pdf", leave_policy(25, 2024))
    assert [c.value for c in at.caption] == ["No document has an earlier version yet."]
    upload(at, "leave-2025.pdf", leave_policy(30, 2025), replaces="HR / leave-2024.pdf")
    assert not at.info, "chosen at upload: nothing to propose"
    documents = at.dataframe[1].value.to_dict(orient="list")
    assert dict(zip(documents["file"], documents["version"], strict=True)) == {
        "leave-2024.pdf": "superseded",
        "leave-2025.pdf": "current",
    }
    assert "v1: leave-2024.pdf → v2: leave-2025.pdf (current)" in [m.value for m in at.markdown]
    chain = at.dataframe[-1].value.to_dict(orient="list")
    assert chain["file"] == ["leave-2024.pdf", "leave-2025.pdf"]
    assert chain["status"] == ["superseded", "current"]
    assert "**changed**: Annual Leave (pp. 1-2)" in [m.value for m in at.markdown]
    [diff] = [c.value for c in at.code]
    assert "- Employees receive 25 days" in diff and "+ Employees receive 30 days" in diff

    at.selectbox(key="link_new").select("HR / leave-2024.pdf")
    at.selectbox(key="link_old").select("HR / leave-2025.pdf")
    [mark] = [b for b in at.button if b.label == "Mark as new version"]
    mark.click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "leave-2024.pdf is an earlier version of leave-2025.pdf: it cannot supersede it."
    ]
    assert at.dataframe[-1].value["status"].tolist() == ["superseded", "current"], "unchanged"


def test_a_matching_title_is_proposed_and_confirmed_on_the_page(
    tmp_path: Path, ollama: FakeOllama, configure: Configure
):
    at = open_it(configure, tmp_path / "data", ollama.url, "pages/library.py")
    upload(at, "leave-2024.pdf", leave_policy(25, 2024))
    upload(at, "leave-policy-current.pdf", leave_policy(30, 2025))
    assert [i.value for i in at.info] == [
        "leave-policy-current.pdf looks like a new version of leave-2024.pdf."
    ]
    [confirm] = [
        b
        for b in at.button
        if b.label == "Confirm: leave-policy-current.pdf replaces leave-2024.pdf"
    ]
    confirm.click().run()
    assert not at.exception
    assert [s.value for s in at.success][
        -1
    ] == "leave-policy-current.pdf is now the current version."
    assert not at.info
    chain = at.dataframe[-1].value.to_dict(orient="list")
    assert chain["file"] == ["leave-2024.pdf", "leave-policy-current.pdf"]


@pytest.fixture(scope="module")
def versioned_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("versions") / "data"
    desk = Desk(load_settings(data_dir=data_dir, model_backend="ollama"))
    [old] = desk.ingest([Upload("leave-2024.pdf", leave_policy(25, 2024))], "HR")
    desk.ingest([Upload("leave-2025.pdf", leave_policy(30, 2025), supersedes=old.doc_id)], "HR")
    return data_dir


def sources(at: AppTest) -> set[str]:
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception
    return {s.chunk.file_name for s in at.session_state["history"][-1].sources}


def test_chat_answers_from_the_current_version_unless_narrowed_to_earlier_ones(
    versioned_dir: Path, ollama: FakeOllama, configure: Configure
):
    at = open_it(configure, versioned_dir, ollama.url, "pages/chat.py")
    assert sources(at) == {"leave-2025.pdf"}
    assert "30 days" in at.chat_message[-1].markdown[0].value
    at.checkbox(key="filter_earlier").check().run()
    assert "leave-2024.pdf" in sources(at)
    at.checkbox(key="filter_earlier").uncheck().run()
    documents = at.multiselect(key="filter_documents")
    assert documents.options == ["HR / leave-2024.pdf (earlier version)", "HR / leave-2025.pdf"]
    documents.set_value(["HR / leave-2024.pdf (earlier version)"]).run()
    assert sources(at) == {"leave-2024.pdf"}
    assert "25 days" in at.chat_message[-1].markdown[0].value
