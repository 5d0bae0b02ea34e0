"""The Roles, Admin and Knowledge pages and the chat's personas, rate limit and compliance
notice, through AppTest over the real stack and a fake Ollama."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from knowledge.access.audit import AuditQuery
from knowledge.access.ratelimit import RateLimit
from knowledge.access.roles import Role
from knowledge.assistant.answering import NOT_FOUND
from knowledge.assistant.personas import BannedPhrase
from knowledge.core.settings import load_settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.fake_ollama import FakeOllama
from tests.pages.conftest import FAST_HASHER, Configure, ensure_account, open_page
from tests.pages.support import FILE_NAME, VACATION_FACT, VACATION_QUESTION, handbook_pdf
from tests.pdfs import make_pdf

MEMO = [
    "Settlement Memo\n\nThe confidential settlement with Initech Corporation amounts to 4.2 "
    "million euros, payable in three instalments starting in March."
]


def stored(data_dir: Path) -> Desk:
    desk = Desk(load_settings(data_dir=data_dir, model_backend="ollama"))
    desk.accounts.hasher = FAST_HASHER
    return desk


@pytest.fixture
def office(tmp_path: Path, ollama: FakeOllama, configure: Configure) -> Path:
    """HR (the handbook) and Legal (a memo); roles "hr" and "counsel" that see one each."""
    data_dir = tmp_path / "data"
    desk = stored(data_dir)
    desk.ingest([Upload(FILE_NAME, handbook_pdf())], "HR")
    desk.ingest([Upload("memo.pdf", make_pdf(MEMO, title="Settlement Memo"))], "Legal")
    desk.roles.save(Role("hr", pages=("chat", "knowledge"), collections=("HR",)), "test")
    desk.roles.save(
        Role(
            "counsel", pages=("knowledge",), collections=("Legal",), upload_collections=("Legal",)
        ),
        "test",
    )
    ensure_account(data_dir, "hanna", ["hr"])
    ensure_account(data_dir, "leo", ["counsel"])
    configure(data_dir, ollama.url)
    return data_dir


def test_retrieve_as_a_user_shows_exactly_their_view(office: Path):
    at = open_page("pages/roles.py").run()
    assert not at.exception
    at.selectbox(key="retrieve_user").select("hanna")
    at.text_input(key="retrieve_query").input("Initech settlement amount")
    at.button(key="retrieve").click().run()
    assert any("**hanna** can search: HR" in m.value for m in at.markdown)
    hits = at.dataframe[-1].value
    assert set(hits["collection"]) <= {"HR"} and "memo.pdf" not in set(hits["document"])

    at.selectbox(key="retrieve_user").select("leo")
    at.button(key="retrieve").click().run()
    hits = at.dataframe[-1].value
    assert hits["document"].tolist()[0] == "memo.pdf"


def test_create_a_role_and_assign_it(office: Path):
    at = open_page("pages/roles.py").run()
    at.selectbox(key="role_choice").select("➕ New role…").run()
    at.text_input(key="role-new-name").input("Night Shift")
    at.multiselect(key="role-new-pages").set_value(["chat", "knowledge"])
    at.text_input(key="role-new-search").input("HR, Legal")
    at.text_input(key="role-new-upload").input("HR")
    tools = at.text_input(key="role-new-tools")
    assert "summarise_document" in tools.label  # the tools there are, named in the label
    tools.input("list_*, summarise_document")
    at.selectbox(key="role-new-policy").select("quote_only")
    at.form_submit_button[0].click().run()
    assert not at.exception and at.success[0].value == "Saved role night shift."
    role = stored(office).roles.role("night shift")
    assert role.collections == ("HR", "Legal") and role.persona.answer_policy == "quote_only"
    assert role.tools == ("list_*", "summarise_document")

    at.selectbox(key="assign_user").select("hanna").run()
    at.multiselect(key="assign-hanna").set_value(["night shift"])
    at.button(key="save_assignment").click().run()
    assert stored(office).roles.access("hanna").role_names == ("night shift",)


def test_saving_bad_values_shows_the_error(office: Path):
    at = open_page("pages/roles.py").run()
    at.selectbox(key="role_choice").select("➕ New role…").run()
    at.text_input(key="role-new-name").input("!!")
    at.form_submit_button[0].click().run()
    assert "role name" in at.error[0].value


def test_preview_a_persona(office: Path, ollama: FakeOllama):
    desk = stored(office)
    hr = desk.roles.role("hr")
    prompt = "You are the HR assistant. Cite every sentence as [n]."
    desk.roles.save(replace(hr, persona=replace(hr.persona, system_prompt=prompt)), "test")
    at = open_page("pages/roles.py").run()
    at.selectbox(key="preview_role").select("hr")
    at.text_input(key="preview_question").input(VACATION_QUESTION)
    at.button(key="preview").click().run()
    assert not at.exception
    assert any(
        m.value.startswith("**Final answer:**") and VACATION_FACT in m.value for m in at.markdown
    )
    assert ollama.chats[-1]["messages"][0]["content"] == prompt

    at.selectbox(key="preview_role").select("tech support")  # sees no collection holding it
    at.button(key="preview").click().run()
    assert any(m.value == "**Final answer:** " + NOT_FOUND for m in at.markdown)


def test_admin_adds_a_user_whose_one_time_password_works(office: Path):
    at = open_page("pages/admin.py").run()
    at.text_input(key="new_user").input("Carla")
    at.multiselect(key="new_user_roles").set_value(["employee"])
    at.form_submit_button[0].click().run()
    assert not at.exception and "Added carla" in at.success[0].value
    [code] = at.code
    account = stored(office).accounts.authenticate("carla", code.value)
    assert account.must_change_password and account.roles == ("employee",)
    at.run()
    audit = at.dataframe[1].value
    assert "user_added" in set(audit["action"]) and "sign_in" in set(audit["action"])


def test_knowledge_page_offers_only_permitted_collections(office: Path):
    at = open_page("pages/library.py", user="leo", roles=["counsel"]).run()
    assert not at.exception
    assert at.selectbox(key="collection_choice").options == ["Legal", "➕ New collection…"]
    assert at.dataframe[0].value["file"].tolist() == ["memo.pdf"], "only documents leo may read"
    assert at.multiselect(key="delete_choice").options == ["Legal / memo.pdf"]

    at.selectbox(key="collection_choice").select("➕ New collection…")
    at.text_input(key="new_collection").input("HR")
    at.file_uploader(key="files").set_value([("x.pdf", make_pdf(MEMO), "application/pdf")])
    at.form_submit_button[0].click().run()
    assert not at.exception
    desk = stored(office)
    assert desk.store.find_document("HR", "x.pdf") is None
    [denied] = desk.audit.events(AuditQuery(actor="leo", actions=("permission_denied",)))
    assert denied.target == "upload:HR"


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception
    return at


def test_chat_offers_the_users_personas_and_answers_as_the_chosen_one(
    office: Path, ollama: FakeOllama
):
    at = open_page("pages/chat.py", user="hanna", roles=["hr", "tech support"]).run()
    assert at.selectbox(key="persona").options == ["hr", "tech support"]
    assert at.multiselect(key="collections").options == ["HR"]
    at.selectbox(key="persona").select("tech support").run()
    ask(at, VACATION_QUESTION)
    system = ollama.chats[-1]["messages"][0]["content"]
    assert system.startswith("You are the tech support assistant")
    event = stored(office).usage.event(at.session_state["history"][-1].event_id)
    assert (event["user"], event["role"], event["persona"]) == (
        "hanna",
        "tech support",
        "tech support",
    )


def test_chat_rate_limit_says_when_to_try_again(office: Path):
    desk = stored(office)
    hr = desk.roles.role("hr")
    desk.roles.save(replace(hr, rate_limit=RateLimit(requests=1, window_s=600)), "test")
    at = ask(open_page("pages/chat.py", user="hanna", roles=["hr"]).run(), VACATION_QUESTION)
    assert VACATION_FACT in at.chat_message[-1].markdown[0].value
    ask(at, VACATION_QUESTION)
    [error] = at.error
    assert re.search(r"limit of 1 questions per 10 min\. Please try again in \d+ min", error.value)


def test_chat_never_shows_a_banned_phrase_and_says_why(office: Path):
    desk = stored(office)
    hr = desk.roles.role("hr")
    banned = (BannedPhrase("27 days", "block_and_rephrase", "the days set out in the policy"),)
    desk.roles.save(replace(hr, persona=replace(hr.persona, banned_phrases=banned)), "test")
    at = ask(open_page("pages/chat.py", user="hanna", roles=["hr"]).run(), VACATION_QUESTION)
    shown = at.chat_message[-1].markdown[0].value
    assert "27 days" not in shown and "the days set out in the policy" in shown
    assert "answering rules" in at.chat_message[-1].info[0].value
