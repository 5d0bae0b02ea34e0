"""Clause records through the Desk: extraction after ingestion, reviews that survive restarts
and re-ingestion, deletion, filters across contracts, export, and chat citations."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from knowledge.contracts.book import ClauseFilter, export_csv, export_xlsx, text_hash
from knowledge.contracts.chat import asked_categories, clause_sources
from knowledge.core.errors import KdeskError
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.conftest import ScriptedChatModel
from tests.contract_samples import GOVERNING_LAW_PAGE, contract_pdf, supply_agreement
from tests.pdfs import make_pdf

ACME = "acme-supply.pdf"
GLOBEX = "globex-supply.pdf"


def ingest(desk: Desk, name: str, data: bytes, collection: str = "Contracts", **kwargs) -> str:
    [report] = desk.ingest([Upload(name, data)], collection, **kwargs)
    assert report.status in ("added", "replaced"), report
    assert report.doc_id
    return report.doc_id


def governing_law(desk: Desk, doc_id: str):
    [record] = desk.contracts.records(ClauseFilter(doc_ids=[doc_id], categories=["Governing Law"]))
    return record


def test_a_contract_collection_gets_clause_records_linked_to_the_document(desk: Desk):
    doc_id = ingest(desk, ACME, contract_pdf())
    [contract] = desk.contracts.contracts()
    assert (contract.doc_id, contract.file_name, contract.pages) == (doc_id, ACME, 3)
    assert contract.detected_by == "collection" and contract.clauses >= 5
    record = governing_law(desk, doc_id)
    assert (record.value, record.page, record.status) == (
        "New York",
        GOVERNING_LAW_PAGE,
        "extracted",
    )
    assert "laws of the State of New York" in record.text
    assert record.reviewer is None and record.reviewed_at is None


def test_other_documents_only_when_asked_or_detected(desk: Desk):
    handbook = make_pdf(["Travel Policy\nHotels are reimbursed up to 140 euros per night."])
    ingest(desk, "travel.pdf", handbook, "HR")
    assert desk.contracts.contracts() == []
    signed = make_pdf(["Travel Policy\nHotels are reimbursed up to 160 euros per night."])
    ingest(desk, "travel-signed.pdf", signed, "HR", contracts=True)
    assert [c.detected_by for c in desk.contracts.contracts()] == ["upload"]
    ingest(desk, ACME, contract_pdf(), "Procurement")  # reads like a contract
    assert sorted(c.detected_by for c in desk.contracts.contracts()) == ["detector", "upload"]


def test_detection_can_be_switched_off(desk: Desk):
    desk.settings = desk.settings.model_copy(update={"contract_detection": False})
    ingest(desk, ACME, contract_pdf(), "Procurement")
    assert desk.contracts.contracts() == []


def test_reviews_are_stored_with_who_and_when_and_survive_a_restart(desk: Desk, embedder):
    doc_id = ingest(desk, ACME, contract_pdf())
    law = governing_law(desk, doc_id)
    parties = desk.contracts.records(ClauseFilter(categories=["Parties"]))
    desk.contracts.review(law.id, "confirm", "  Dana Legal ")
    desk.contracts.review(parties[0].id, "correct", "dana", value="Acme Robotics Inc.", note="typo")
    desk.contracts.review(parties[1].id, "reject", "dana")

    reopened = Desk(desk.settings, embedder=embedder, model=ScriptedChatModel())
    law = governing_law(reopened, doc_id)
    assert (law.status, law.reviewer) == ("confirmed", "Dana Legal")
    assert law.reviewed_at is not None and law.reviewed_at.tzinfo is not None
    corrected = reopened.contracts.record(parties[0].id)
    assert (corrected.status, corrected.value, corrected.extracted_value) == (
        "corrected", "Acme Robotics Inc.", parties[0].extracted_value,
    )  # fmt: skip
    assert corrected.note == "typo"
    assert reopened.contracts.record(parties[1].id).status == "rejected"
    [event] = reopened.contracts.history(law.id)
    assert (event.action, event.reviewer) == ("confirm", "Dana Legal")
    [contract] = reopened.contracts.contracts()
    assert contract.reviewed == 3


def test_review_needs_a_reviewer_and_a_value_to_correct(desk: Desk):
    law = governing_law(desk, ingest(desk, ACME, contract_pdf()))
    with pytest.raises(KdeskError, match="who is reviewing"):
        desk.contracts.review(law.id, "confirm", "  ")
    with pytest.raises(KdeskError, match="corrected value"):
        desk.contracts.review(law.id, "correct", "dana", value=" ")
    with pytest.raises(KdeskError, match="No clause"):
        desk.contracts.review("missing", "confirm", "dana")


def test_reingesting_a_changed_file_keeps_reviews_of_unchanged_clauses(desk: Desk):
    doc_id = ingest(desk, ACME, contract_pdf(law="New York"))
    parties = desk.contracts.records(ClauseFilter(categories=["Parties"]))
    desk.contracts.review(parties[0].id, "confirm", "dana")
    desk.contracts.review(governing_law(desk, doc_id).id, "confirm", "dana")

    assert ingest(desk, ACME, contract_pdf(law="Delaware")) == doc_id  # replaced in place
    kept = desk.contracts.record(parties[0].id)
    assert (kept.status, kept.reviewer) == ("confirmed", "dana")
    law = governing_law(desk, doc_id)
    assert (law.value, law.status) == ("Delaware", "extracted"), "a changed clause is new"


def test_unchanged_upload_marked_as_contract_gets_extracted_once(desk: Desk):
    handbook = make_pdf(supply_agreement(), title="Supply")
    desk.settings = desk.settings.model_copy(update={"contract_detection": False})
    ingest(desk, ACME, handbook, "Legal")
    assert desk.contracts.contracts() == []
    [report] = desk.ingest([Upload(ACME, handbook)], "Legal", contracts=True)
    assert report.status == "unchanged"
    assert len(desk.contracts.contracts()) == 1


def test_deleting_the_document_deletes_its_records(desk: Desk):
    doc_id = ingest(desk, ACME, contract_pdf())
    law = governing_law(desk, doc_id)
    desk.contracts.review(law.id, "confirm", "dana")
    desk.store.delete_document(doc_id)
    assert desk.contracts.contracts() == []
    assert desk.contracts.records() == []
    assert desk.contracts.history(law.id) == []


def test_filters_across_contracts(desk: Desk):
    ingest(desk, ACME, contract_pdf(law="New York"))
    ingest(desk, GLOBEX, contract_pdf(buyer="Globex Corporation", law="California"))
    new_york = desk.contracts.records(
        ClauseFilter(categories=["Governing Law"], value_contains="new york")
    )
    assert [r.file_name for r in new_york] == [ACME]
    renewing = desk.contracts.records(ClauseFilter(categories=["Renewal Term"]))
    assert {r.file_name for r in renewing} == {ACME, GLOBEX}
    assert all(r.value == "12 months" for r in renewing if "successive" in r.text)
    texts = desk.contracts.records(ClauseFilter(text_contains="globex"))
    assert texts and {r.file_name for r in texts} == {GLOBEX}
    desk.contracts.review(new_york[0].id, "reject", "dana")
    open_only = ClauseFilter(categories=["Governing Law"], statuses=["extracted", "confirmed"])
    assert [r.file_name for r in desk.contracts.records(open_only)] == [GLOBEX]


def test_csv_and_xlsx_export(desk: Desk):
    doc_id = ingest(desk, ACME, contract_pdf())
    desk.contracts.review(governing_law(desk, doc_id).id, "confirm", "dana")
    records = desk.contracts.records(ClauseFilter(categories=["Governing Law", "Parties"]))

    rows = list(csv.DictReader(io.StringIO(export_csv(records).decode("utf-8-sig"))))
    assert len(rows) == len(records)
    law = next(r for r in rows if r["category"] == "Governing Law")
    assert (law["value"], law["page"], law["status"], law["reviewer"]) == (
        "New York", str(GOVERNING_LAW_PAGE), "confirmed", "dana",
    )  # fmt: skip
    assert law["reviewed at"].endswith("UTC")

    sheet = load_workbook(io.BytesIO(export_xlsx(records))).active
    values = list(sheet.values)
    assert values[0][:4] == ("collection", "file", "category", "value")
    assert len(values) == len(records) + 1
    assert ("Contracts", ACME, "Governing Law", "New York") in [v[:4] for v in values]


def test_text_hash_ignores_whitespace_and_case():
    assert text_hash("Parties", "Acme  Inc.\n") == text_hash("Parties", "acme inc.")
    assert text_hash("Parties", "Acme") != text_hash("Insurance", "Acme")


# --- chat -----------------------------------------------------------------------------------


def test_questions_about_contract_terms_name_their_categories():
    assert asked_categories("Which contracts auto-renew?") == ["Renewal Term"]
    assert "Governing Law" in asked_categories("What is the governing law of the Acme deal?")
    assert asked_categories("How much is the hotel allowance?") == []


def test_clause_sources_pick_the_named_contract(desk: Desk):
    ingest(desk, ACME, contract_pdf(law="New York"))
    ingest(desk, GLOBEX, contract_pdf(buyer="Globex Corporation", law="California"))
    [source] = clause_sources(
        desk.contracts, "Governing law of the Globex contract?", ["Contracts"], 5
    )
    assert source.chunk.file_name == GLOBEX and source.chunk.page_start == GOVERNING_LAW_PAGE
    assert source.chunk.text.startswith("Governing Law (California): ")
    both = clause_sources(desk.contracts, "Which contracts auto-renew?", ["Contracts"], 5)
    assert {s.chunk.file_name for s in both} == {ACME, GLOBEX}
    assert clause_sources(desk.contracts, "Which contracts auto-renew?", ["HR"], 5) == []


def test_chat_answer_cites_the_clause_and_its_page(desk: Desk, model: ScriptedChatModel):
    doc_id = ingest(desk, ACME, contract_pdf(law="New York"))
    model.reply = "The agreement is governed by the laws of the State of New York [1]."
    stream = desk.ask("What is the governing law of the Acme supply agreement?", ["Contracts"])
    "".join(stream)
    answer = stream.answer
    assert not answer.abstained
    [citation] = answer.citations
    assert (citation.chunk.doc_id, citation.page) == (doc_id, GOVERNING_LAW_PAGE)
    assert citation.chunk.id.startswith("clause-")
    assert "laws of the State of New York" in citation.quote
    prompt = model.calls[-1]["messages"][-1]["content"]
    assert "[1] Governing Law (New York): This Agreement shall be governed" in prompt
