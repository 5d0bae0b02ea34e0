"""A user's conversations through the desk: answers kept and reopened with their citations,
which still read once their document is deleted; another user sees none of them."""

from __future__ import annotations

from knowledge.core.types import Answer
from knowledge.desk.conversations import history_turns
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.pdfs import make_pdf

POLICY = [
    "Travel Policy\n\nHotel rooms are limited to 180 euros per night in capital cities. "
    "Economy class is required for flights shorter than six hours."
]


def asked(desk: Desk, user: str, question: str) -> Answer:
    stream = desk.for_user(user, channel="chat").ask(question)
    "".join(stream)
    return stream.answer


def test_answers_reopen_with_citations_even_after_their_document_is_deleted(desk: Desk):
    [report] = desk.ingest([Upload("travel.pdf", make_pdf(POLICY, title="Travel"))], "policies")
    desk.roles.assign("alice", ["admin"], check_admins=False)
    me = desk.for_user("alice", channel="chat")
    answer = asked(desk, "alice", "How much may a hotel room cost per night?")
    assert answer.citations, "the scripted model cites [1]"
    conversation = me.conversations.start(answer.question, ["policies"])
    me.conversations.append(conversation.id, answer)

    [reopened] = me.conversations.answers(conversation.id)
    assert reopened.text == answer.text and reopened.event_id == answer.event_id
    assert reopened.citations[0].chunk == answer.citations[0].chunk  # the stored chunk itself
    assert history_turns([reopened])[0].question == answer.question

    me.delete_document(report.doc_id)
    [degraded] = me.conversations.answers(conversation.id)
    cited = degraded.citations[0]
    assert cited.chunk.file_name == "travel.pdf" and cited.quote == answer.citations[0].quote
    assert cited.chunk.text == cited.quote and cited.page == answer.citations[0].page

    assert desk.for_user("bob").conversations.recent() == []
    assert [c.id for c in me.conversations.recent()] == [conversation.id]
