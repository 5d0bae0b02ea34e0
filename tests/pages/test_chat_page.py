"""The Chat page through AppTest, over the real stack and a fake Ollama server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from knowledge.access.audit import AuditQuery
from knowledge.assistant.answering import NOT_FOUND
from knowledge.core.settings import load_settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.fake_ollama import FakeOllama
from tests.pages.conftest import TESTER, Configure, ingest_handbook, open_page, sign_in
from tests.pages.support import (
    APPROVAL_FACT,
    APPROVAL_FOLLOW_UP,
    FILE_NAME,
    HANDBOOK,
    MODEL,
    OFF_TOPIC_QUESTION,
    TITLE,
    VACATION_FACT,
    VACATION_PAGE,
    VACATION_QUESTION,
    free_port,
    grounded_reply,
    sources_and_question,
)
from tests.pdfs import make_pdf

VACATION_CITATION = f"[1] {TITLE} — page {VACATION_PAGE}"


def chat(configure: Configure, data_dir: Path, host: str) -> AppTest:
    configure(data_dir, host)
    at = open_page("pages/chat.py").run()
    assert not at.exception
    return at


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception
    return at


def last_answer_text(at: AppTest) -> str:
    reply = at.chat_message[-1]
    assert reply.name == "assistant"
    return reply.markdown[0].value


def citation_labels(at: AppTest) -> list[str]:
    return [b.label for b in at.chat_message[-1].button]


def test_empty_knowledge_base_says_so_and_answers_without_the_model(
    tmp_path: Path, ollama: FakeOllama, configure: Configure
):
    at = chat(configure, tmp_path / "data", ollama.url)
    [info] = at.info
    assert "knowledge base is empty" in info.value
    assert "Knowledge" in info.value

    ask(at, VACATION_QUESTION)
    assert last_answer_text(at) == NOT_FOUND
    assert ollama.chats == []


def test_answer_cites_the_page_and_the_model_saw_the_numbered_source(
    handbook_dir: Path, ollama: FakeOllama, configure: Configure
):
    at = chat(configure, handbook_dir, ollama.url)
    assert not at.info
    assert at.multiselect(key="collections").value == ["HR"]

    ask(at, VACATION_QUESTION)
    [user, assistant] = at.chat_message
    assert user.markdown[0].value == VACATION_QUESTION
    text = last_answer_text(at)
    assert VACATION_FACT in text and "[1]" in text
    assert citation_labels(at) == [VACATION_CITATION]
    assert not at.error
    assert any(f"Answered by `ollama · {MODEL}`" in c.value for c in assistant.caption)

    [request] = ollama.chats
    assert request["model"] == MODEL
    sources, question = sources_and_question(request["messages"])
    assert question == VACATION_QUESTION
    assert VACATION_FACT in sources[1]
    assert request["messages"][0]["role"] == "system"


def test_citation_opens_the_cited_page(
    handbook_dir: Path, ollama: FakeOllama, configure: Configure
):
    at = ask(chat(configure, handbook_dir, ollama.url), VACATION_QUESTION)
    at.chat_message[-1].button[0].click().run()
    assert not at.exception

    assert at.number_input[0].value == VACATION_PAGE
    assert any(f"page {VACATION_PAGE} of 3" in c.value for c in at.caption)
    [image] = at.image
    assert image.value and image.value[0]
    assert any(VACATION_FACT in m.value for m in at.markdown if m.value.startswith(">"))
    assert at.get("download_button"), "the dialog offers the PDF"


def test_off_topic_question_abstains_without_calling_the_model(
    handbook_dir: Path, ollama: FakeOllama, configure: Configure
):
    at = ask(chat(configure, handbook_dir, ollama.url), OFF_TOPIC_QUESTION)
    assert last_answer_text(at) == NOT_FOUND
    assert citation_labels(at) == []
    assert ollama.chats == []
    assert any("Not in the knowledge base" in c.value for c in at.chat_message[-1].caption)


def test_model_server_down_shows_the_error_and_still_the_passages(
    handbook_dir: Path, configure: Configure
):
    at = ask(chat(configure, handbook_dir, f"http://127.0.0.1:{free_port()}"), VACATION_QUESTION)
    [error] = at.chat_message[-1].error
    assert error.value.startswith("The model did not answer")
    assert VACATION_FACT in last_answer_text(at), "the cited passage is quoted instead"
    assert citation_labels(at) == [VACATION_CITATION]


def test_follow_up_question_sends_the_previous_turn(
    handbook_dir: Path, ollama: FakeOllama, configure: Configure
):
    at = ask(chat(configure, handbook_dir, ollama.url), VACATION_QUESTION)
    first_answer = last_answer_text(at)
    ask(at, APPROVAL_FOLLOW_UP)

    assert len(at.chat_message) == 4
    assert APPROVAL_FACT in last_answer_text(at)
    assert citation_labels(at) == [VACATION_CITATION]
    # the earlier turn stays on screen with its own citation button
    assert at.chat_message[1].markdown[0].value == first_answer
    assert [b.label for b in at.chat_message[1].button] == [VACATION_CITATION]

    first, second = ollama.chats
    assert len(first["messages"]) == 2
    previous_user, previous_assistant = second["messages"][1:3]
    assert previous_user == {"role": "user", "content": VACATION_QUESTION}
    assert previous_assistant["role"] == "assistant"
    assert VACATION_FACT in previous_assistant["content"]
    assert "[1]" not in previous_assistant["content"]
    assert sources_and_question(second["messages"])[1] == APPROVAL_FOLLOW_UP


def test_new_conversation_clears_the_history(
    handbook_dir: Path, ollama: FakeOllama, configure: Configure
):
    at = ask(chat(configure, handbook_dir, ollama.url), VACATION_QUESTION)
    assert len(at.chat_message) == 2

    at.sidebar.button[0].click().run()
    assert at.sidebar.button[0].label == "New conversation"
    assert not at.exception
    assert len(at.chat_message) == 0
    assert at.session_state["history"] == []

    ask(at, APPROVAL_FOLLOW_UP)
    assert len(ollama.chats[-1]["messages"]) == 2, "no earlier turn is sent"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("drop", "broke off mid-answer"),
        ("error_midstream", "an error was encountered"),
        ("not_found", f"ollama pull {MODEL}"),
    ],
)
def test_model_failure_shows_the_error_and_still_the_passages(
    handbook_dir: Path, configure: Configure, mode: str, expected: str
):
    with FakeOllama(reply=grounded_reply, models=[MODEL], mode=mode) as server:
        at = ask(chat(configure, handbook_dir, server.url), VACATION_QUESTION)
    [error] = at.chat_message[-1].error
    assert error.value.startswith("The model did not answer") and expected in error.value
    assert last_answer_text(at), "what arrived, or else the quoted passage"
    assert citation_labels(at) == [VACATION_CITATION]


# The handbook above starts every page with a heading, where the chunker starts a chunk without
# overlap. Without headings, a chunk holding page 2's text begins with an overlap sentence
# from page 1, so its page_start - the page a citation names and opens - is 1.
UNHEADED = [page.split("\n", 1)[1] for page in HANDBOOK]


def test_citation_names_the_page_of_the_fact_even_after_an_overlap(
    tmp_path: Path, ollama: FakeOllama, configure: Configure
):
    data_dir = tmp_path / "data"
    desk = Desk(load_settings(data_dir=data_dir, model_backend="ollama"))
    desk.ingest([Upload(FILE_NAME, make_pdf(UNHEADED, title=TITLE))], "HR")
    at = ask(chat(configure, data_dir, ollama.url), VACATION_QUESTION)
    assert VACATION_FACT in last_answer_text(at)
    assert citation_labels(at) == [VACATION_CITATION]


def test_no_collection_chosen_asks_to_choose_one(
    handbook_dir: Path, ollama: FakeOllama, configure: Configure
):
    at = chat(configure, handbook_dir, ollama.url)
    at.multiselect(key="collections").set_value([]).run()
    assert [w.value for w in at.sidebar.warning] == ["Choose at least one collection to search in."]
    assert at.chat_input[0].disabled

    at.multiselect(key="collections").set_value(["HR"]).run()
    assert not at.sidebar.warning and not at.chat_input[0].disabled


SECURITY = [
    "IT Security Policy\n"
    "Passwords must be at least 14 characters long. Lost laptops are reported within one hour."
]
SECRET = ["Settlement Memo\nThe Initech settlement of 4.2 million euros is confidential."]


@pytest.fixture(scope="module")
def tagged_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two collections an employee may search (tagged documents) and one they may not."""
    data_dir = tmp_path_factory.mktemp("tagged") / "data"
    desk = Desk(load_settings(data_dir=data_dir, model_backend="ollama"))
    desk.ingest(
        [Upload(FILE_NAME, make_pdf(HANDBOOK, title=TITLE))], "Company policies", tags=["HR"]
    )
    desk.ingest(
        [Upload("security.pdf", make_pdf(SECURITY, title="IT Security"))], "general", tags=["IT"]
    )
    desk.ingest(
        [Upload("memo.pdf", make_pdf(SECRET, title="Settlement Memo"))], "Legal", tags=["secret"]
    )
    return data_dir


def employee_chat(configure: Configure, data_dir: Path, host: str) -> AppTest:
    configure(data_dir, host)
    at = open_page("pages/chat.py", user="emma", roles=["employee"]).run()
    assert not at.exception
    return at


def test_the_filter_offers_only_documents_and_tags_the_user_may_search(
    tagged_dir: Path, ollama: FakeOllama, configure: Configure
):
    at = employee_chat(configure, tagged_dir, ollama.url)
    assert at.multiselect(key="collections").options == ["Company policies", "general"]
    assert at.multiselect(key="filter_tags").options == ["hr", "it"]
    assert at.multiselect(key="filter_documents").options == [
        f"Company policies / {FILE_NAME}",
        "general / security.pdf",
    ]
    at.multiselect(key="filter_documents").set_value(["general / security.pdf"]).run()
    at.multiselect(key="collections").set_value(["Company policies"]).run()
    assert not at.exception
    assert at.multiselect(key="filter_tags").options == ["hr"]
    assert at.multiselect(key="filter_documents").options == [f"Company policies / {FILE_NAME}"]
    ask(at, VACATION_QUESTION)
    assert VACATION_FACT in last_answer_text(at), "a document no longer offered does not filter"


def test_answers_come_only_from_the_documents_the_filter_lets_through(
    tagged_dir: Path, ollama: FakeOllama, configure: Configure
):
    at = employee_chat(configure, tagged_dir, ollama.url)
    at.multiselect(key="filter_tags").set_value(["hr"]).run()
    ask(at, VACATION_QUESTION)
    assert VACATION_FACT in last_answer_text(at)
    assert citation_labels(at) == [VACATION_CITATION]

    at.multiselect(key="filter_tags").set_value([]).run()
    at.multiselect(key="filter_documents").set_value(["general / security.pdf"]).run()
    chats_before = len(ollama.chats)
    ask(at, VACATION_QUESTION)
    answer = at.session_state["history"][-1]
    assert {s.chunk.file_name for s in answer.sources} <= {"security.pdf"}
    assert VACATION_FACT not in last_answer_text(at)
    for request in ollama.chats[chats_before:]:
        assert all(
            VACATION_FACT not in text
            for text in sources_and_question(request["messages"])[0].values()
        )

    at.multiselect(key="filter_tags").set_value(["hr"]).run()  # and security.pdf: none is both
    ask(at, VACATION_QUESTION)
    assert last_answer_text(at) == NOT_FOUND
    assert at.session_state["history"][-1].sources == []


def stored_event(data_dir: Path, event_id: str) -> dict:
    return Desk(load_settings(data_dir=data_dir, model_backend="ollama")).usage.event(event_id)


def test_the_feedback_widget_rates_the_users_own_answer(
    tmp_path: Path, ollama: FakeOllama, configure: Configure
):
    data_dir = tmp_path / "data"
    ingest_handbook(data_dir)
    at = ask(chat(configure, data_dir, ollama.url), VACATION_QUESTION)
    [answer] = at.session_state["history"]
    at.feedback[0].set_value(0).run()
    at.text_input[0].set_value("Part-timers?").run()
    assert not at.exception and not at.toast
    event = stored_event(data_dir, answer.event_id)
    assert (event["user"], event["feedback"], event["feedback_comment"]) == (
        TESTER,
        -1,
        "Part-timers?",
    )


def test_the_feedback_widget_refuses_someone_elses_answer(
    tmp_path: Path, ollama: FakeOllama, configure: Configure
):
    data_dir = tmp_path / "data"
    ingest_handbook(data_dir)
    at = ask(chat(configure, data_dir, ollama.url), VACATION_QUESTION)
    [answer] = at.session_state["history"]
    sign_in(at, "mallory", ["employee"])  # the session now holds another user's answer
    at.run()
    at.feedback[0].set_value(1).run()
    assert not at.exception
    [toast] = at.toast
    assert "could not be saved" in toast.value and "only rate your own answers" in toast.value
    event = stored_event(data_dir, answer.event_id)
    assert (event["user"], event["feedback"], event["feedback_at"]) == (TESTER, None, None)
    desk = Desk(load_settings(data_dir=data_dir, model_backend="ollama"))
    [refused] = desk.audit.events(AuditQuery(actor="mallory", actions=("permission_denied",)))
    assert (refused.target, refused.channel) == (f"feedback:{answer.event_id}", "chat")


def test_a_citation_of_a_word_file_shows_the_passage_in_its_section(
    tmp_path: Path, ollama: FakeOllama, configure: Configure
):
    from tests.office_files import make_docx

    blocks = [("title", TITLE)]
    for page in HANDBOOK:
        heading, text = page.split("\n", 1)
        blocks += [("h1", heading), ("p", text)]
    data_dir = tmp_path / "data"
    desk = Desk(load_settings(data_dir=data_dir, model_backend="ollama"))
    [report] = desk.ingest([Upload("handbook.docx", make_docx(blocks))], "HR")
    assert report.status == "added", report

    at = ask(chat(configure, data_dir, ollama.url), VACATION_QUESTION)
    assert citation_labels(at) == [f"[1] {TITLE} — Vacation Policy"]
    at.chat_message[-1].button[0].click().run()
    assert not at.exception
    assert not at.image and not at.number_input, "no page picture for a Word file"
    assert any("handbook.docx · Vacation Policy" in c.value for c in at.caption)
    [passage] = [m.value for m in at.markdown if "<mark>" in m.value]
    marked = " ".join(re.findall(r"<mark>(.*?)</mark>", passage, re.DOTALL))
    assert marked.startswith("Vacation Policy")  # the cited chunk, marked line by line
    assert "27 days of paid vacation" in marked.replace("\\", "")
    assert "Train tickets" not in passage, "only the cited section"
    [download] = at.get("download_button")
    assert download.proto.label == "Download the original"


def test_a_citations_web_link_opens_its_page_in_the_viewer_once(
    handbook_dir: Path, ollama: FakeOllama, configure: Configure
):
    """The API's web_link (/?source=<doc id>&page=<n>) opens the page for a signed-in user;
    an id they cannot read is "not there", like an unknown one."""
    configure(handbook_dir, ollama.url)
    desk = Desk(load_settings())
    [doc] = [d for d in desk.store.documents(desk.store.collection_names())]
    at = open_page("pages/chat.py")
    at.query_params["source"] = doc.doc_id
    at.query_params["page"] = str(VACATION_PAGE)
    at.run()
    assert not at.exception
    assert at.number_input[0].value == VACATION_PAGE
    assert any(f"page {VACATION_PAGE} of 3" in c.value for c in at.caption)
    assert "source" not in at.query_params, "opened once, not on every rerun"
    for doc_id in ("no-such-document", doc.doc_id):
        other = open_page("pages/chat.py", user="outsider", roles=("employee",))
        other.query_params["source"] = doc_id
        other.run()
        assert not other.exception and not other.number_input
        assert any("not in the knowledge base" in w.value for w in other.warning)
