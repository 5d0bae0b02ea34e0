"""UserDesk: what a signed-in user may search, read, upload, delete, review and administer -
enforced in the knowledge layer, audited when refused."""

from __future__ import annotations

import pytest

from knowledge.access.audit import AuditQuery
from knowledge.access.ratelimit import RateLimit, RateLimitedError
from knowledge.access.roles import Role
from knowledge.assistant.answering import NOT_FOUND
from knowledge.assistant.personas import BannedPhrase
from knowledge.core.errors import NotFoundError, PermissionDeniedError
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.usage.events import UsageFilter
from tests.pdfs import make_pdf

HR_TEXT = [
    "Leave Policy\n\nFull-time employees are entitled to 25 working days of paid annual leave "
    "per year. Leave requests are approved by the team lead two weeks in advance."
]
LEGAL_TEXT = [
    "Settlement Memo\n\nThe settlement with Initech Corporation is confidential and amounts to "
    "4.2 million euros, payable in three instalments starting in March."
]
PASSWORD = "a long test password"


@pytest.fixture
def office(desk: Desk) -> Desk:
    desk.ingest([Upload("leave.pdf", make_pdf(HR_TEXT, title="Leave Policy"))], "HR")
    desk.ingest([Upload("memo.pdf", make_pdf(LEGAL_TEXT, title="Settlement Memo"))], "Legal")
    desk.roles.save(Role("hr", pages=("chat", "knowledge"), collections=("HR",)), "test")
    desk.roles.save(
        Role(
            "counsel",
            pages=("chat", "analytics"),
            collections=("Legal",),
            upload_collections=("Legal",),
        ),
        "test",
    )
    desk.accounts.add("hanna", ["hr"], "test", password=PASSWORD)
    desk.accounts.add("leo", ["counsel"], "test", password=PASSWORD)
    desk.accounts.add("root", ["admin"], "test", password=PASSWORD)
    desk.accounts.add("nobody", [], "test", password=PASSWORD)
    return desk


def denied(desk: Desk, user: str) -> list[str]:
    query = AuditQuery(actor=user, actions=("permission_denied",))
    return [e.target for e in desk.audit.events(query)]


def test_collections_and_documents_are_limited_to_the_roles(office: Desk):
    hanna = office.for_user("hanna")
    assert hanna.collections() == ["HR"]
    assert [d.file_name for d in hanna.documents()] == ["leave.pdf"]
    assert office.for_user("root").collections() == ["HR", "Legal"]
    assert office.for_user("nobody").collections() == []
    assert office.for_user("stranger").documents() == []


def test_search_never_returns_foreign_chunks_even_when_asked_for_them(office: Desk):
    hanna = office.for_user("hanna", channel="cli")
    hits = hanna.search("Initech settlement confidential amount", ["Legal", "HR"])
    assert hits and {h.chunk.collection for h in hits} == {"HR"}
    assert hanna.search("Initech settlement", ["Legal"]) == []
    assert denied(office, "hanna") == ["collections", "collections"]


def test_a_user_without_access_gets_empty_results_not_errors(office: Desk, model):
    nobody = office.for_user("nobody")
    assert nobody.search("settlement") == []
    stream = nobody.ask("How large is the Initech settlement?")
    assert "".join(stream) == NOT_FOUND
    assert stream.answer.sources == [] and model.calls == []
    stranger = office.for_user("no-such-user")
    assert stranger.search("leave") == [] and stranger.collections() == []


def test_ask_answers_from_allowed_collections_and_records_the_user(office: Desk, model):
    model.reply = "Full-time employees get 25 working days of paid annual leave [1]."
    stream = office.for_user("hanna", channel="cli").ask("How much annual leave do I get?")
    "".join(stream)
    answer = stream.answer
    assert answer.citations and {s.chunk.collection for s in answer.sources} == {"HR"}
    event = office.usage.event(answer.event_id)
    assert (event["user"], event["role"], event["collections"]) == ("hanna", "hr", '["HR"]')
    prompt = model.calls[0]["messages"][-1]["content"]
    assert "Initech" not in prompt


def test_documents_outside_the_roles_are_not_found(office: Desk):
    memo = office.store.find_document("Legal", "memo.pdf")
    assert memo is not None
    with pytest.raises(NotFoundError, match="No document with id"):
        office.for_user("hanna").document(memo.doc_id)
    with pytest.raises(NotFoundError, match="No document with id"):
        office.for_user("hanna").document("no-such-id")
    assert office.for_user("leo").document(memo.doc_id).file_name == "memo.pdf"
    # the viewer's passages of a document: the same rule
    with pytest.raises(NotFoundError, match="No document with id"):
        office.for_user("hanna").document_chunks(memo.doc_id)
    [chunk] = office.for_user("leo").document_chunks(memo.doc_id)
    assert "4.2 million euros" in chunk.text


def test_upload_and_delete_need_the_upload_permission(office: Desk):
    hanna, leo = office.for_user("hanna"), office.for_user("leo")
    pdf = Upload("new.pdf", make_pdf(["Some new legal text about settlements and their terms."]))
    with pytest.raises(PermissionDeniedError, match="may not upload"):
        hanna.ingest([pdf], "HR")
    [report] = leo.ingest([pdf], "Legal")
    assert report.status == "added"
    leave = office.store.find_document("HR", "leave.pdf")
    with pytest.raises(PermissionDeniedError, match="may not delete"):
        hanna.delete_document(leave.doc_id)
    with pytest.raises(NotFoundError):
        leo.delete_document(leave.doc_id)  # leo cannot even see it
    leo.delete_document(report.doc_id)
    actions = [e.action for e in office.audit.events(AuditQuery(actor="leo"))]
    assert "upload" in actions and "document_deleted" in actions
    assert "upload:HR" in denied(office, "hanna")


def test_pages_are_enforced_below_the_ui(office: Desk):
    hanna = office.for_user("hanna")
    with pytest.raises(PermissionDeniedError):
        hanna.usage_filter(UsageFilter())
    with pytest.raises(PermissionDeniedError):
        hanna.save_role(Role("mine", collections=("*",)))
    with pytest.raises(PermissionDeniedError):
        hanna.add_user("eve", ["admin"])
    with pytest.raises(PermissionDeniedError):
        hanna.retrieve_as("leo", "settlement")
    assert "page:roles" in denied(office, "hanna")


def test_analytics_show_only_events_of_the_viewers_collections(office: Desk, model):
    model.reply = "Full-time employees get 25 working days of paid annual leave [1]."
    "".join(office.for_user("hanna").ask("How much annual leave do I get?"))
    leo = office.for_user("leo")
    assert leo.usage_summary(UsageFilter())["questions"] == 0
    assert "annual leave" not in leo.usage_csv(UsageFilter()).decode()
    assert office.for_user("root").usage_summary(UsageFilter())["questions"] == 1


def test_retrieve_as_shows_exactly_what_the_other_user_sees(office: Desk):
    root = office.for_user("root")
    collections, hits = root.retrieve_as("hanna", "Initech settlement amount")
    assert collections == ["HR"] and {h.chunk.collection for h in hits} <= {"HR"}
    collections, hits = root.retrieve_as("leo", "Initech settlement amount")
    assert collections == ["Legal"] and hits[0].chunk.file_name == "memo.pdf"
    assert office.audit.events(AuditQuery(actions=("retrieve_as",)))[0].target == "leo"


def test_a_role_the_user_does_not_hold_is_refused(office: Desk):
    with pytest.raises(PermissionDeniedError, match="not one of your roles"):
        office.for_user("hanna", role="admin")


def test_rate_limit_applies_per_user_and_is_audited(office: Desk, model):
    model.reply = "Full-time employees get 25 working days of paid annual leave [1]."
    hr = office.roles.role("hr")
    office.roles.save(Role(**{**hr.__dict__, "rate_limit": RateLimit(requests=2)}), "test")
    hanna = office.for_user("hanna")
    for _ in range(2):
        "".join(hanna.ask("How much annual leave do I get?"))
    with pytest.raises(RateLimitedError) as refused:
        hanna.ask("How much annual leave do I get?")
    assert refused.value.retry_after_s > 0 and "Please try again in" in str(refused.value)
    assert office.audit.events(AuditQuery(actions=("rate_limited",)))[0].actor == "hanna"
    "".join(office.for_user("leo").ask("Settlement?"))  # others are not limited by hanna
    assert office.limits.use("hanna", 600).tokens > 0, "tokens are counted once answers end"


def test_compliance_blocks_are_applied_and_audited(office: Desk, model):
    hr = office.roles.role("hr")
    persona = hr.persona.__class__(
        **{**hr.persona.__dict__, "banned_phrases": (BannedPhrase("paid annual leave", "refuse"),)}
    )
    office.roles.save(Role(**{**hr.__dict__, "persona": persona}), "test")
    model.reply = "Full-time employees get 25 working days of paid annual leave [1]."
    stream = office.for_user("hanna").ask("How much annual leave do I get?")
    shown = "".join(stream)
    assert "paid annual leave" not in shown and stream.answer.compliance == "refused"
    [blocked] = office.audit.events(AuditQuery(actions=("compliance_block",)))
    assert blocked.actor == "hanna" and blocked.detail["phrase"] == "paid annual leave"


def test_a_user_rates_their_own_answers_only(office: Desk, model):
    model.reply = "Full-time employees get 25 working days of paid annual leave [1]."
    stream = office.for_user("hanna", channel="chat").ask("How much annual leave do I get?")
    "".join(stream)
    event_id = stream.answer.event_id
    assert event_id

    with pytest.raises(PermissionDeniedError, match="only rate your own answers"):
        office.for_user("leo", channel="chat").feedback(event_id, "down", "=wrong")
    [refused] = office.audit.events(AuditQuery(actor="leo", actions=("permission_denied",)))
    assert (refused.target, refused.outcome, refused.channel) == (
        f"feedback:{event_id}",
        "denied",
        "chat",
    )
    untouched = office.usage.event(event_id)
    assert (untouched["feedback"], untouched["feedback_comment"], untouched["feedback_at"]) == (
        None,
        None,
        None,
    )

    office.for_user("Hanna ").feedback(event_id, "down", "Part-timers?")  # names ignore case
    rated = office.usage.event(event_id)
    assert (rated["feedback"], rated["feedback_comment"]) == (-1, "Part-timers?")
    office.for_user("hanna").feedback(event_id, None)
    assert office.usage.event(event_id)["feedback"] is None
    assert denied(office, "hanna") == []


def test_rating_an_unknown_answer_says_so(office: Desk):
    with pytest.raises(NotFoundError, match="No usage event with id no-such-event"):
        office.for_user("hanna").feedback("no-such-event", "up")
