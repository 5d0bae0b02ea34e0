"""Retrieval on a real Chroma with the real embedding model."""

import pytest

from knowledge.desk import Upload
from knowledge.retrieval import reciprocal_rank_fusion
from tests.pdfs import make_pdf

EXPENSES = [
    "Travel and Expenses Policy\n\nExpense claims must be submitted within 30 days with receipts.",
    "The daily meal allowance is 60 euros. Hotel rooms are limited to 180 euros per night.",
]
SECURITY = [
    "IT Security Policy\n\nPasswords must be at least 14 characters long.",
    "Lost laptops must be reported to the security team within one hour.",
]


@pytest.fixture
def loaded(desk):
    desk.ingest([Upload("expenses.pdf", make_pdf(EXPENSES, title="Expenses Policy"))], "Finance")
    desk.ingest([Upload("security.pdf", make_pdf(SECURITY, title="Security Policy"))], "IT")
    return desk


def test_finds_the_right_page(loaded):
    [top, *_] = loaded.search("How much is the meal allowance per day?", None, 3)
    assert top.chunk.file_name == "expenses.pdf"
    assert top.chunk.page_start <= 2 <= top.chunk.page_end
    assert 0 < top.score <= 1


def test_collections_filter_is_applied_inside_retrieval(loaded):
    results = loaded.search("meal allowance euros hotel", ["IT"], 5)
    assert results and all(r.chunk.collection == "IT" for r in results)
    assert loaded.search("meal allowance", [], 5) == []
    assert loaded.search("meal allowance", ["No such collection"], 5) == []


def test_keyword_only_match_is_found(loaded):
    # a rare exact token the embedding model may not weigh: BM25 must surface it
    [top, *_] = loaded.search("14 characters", ["IT"], 1)
    assert "14 characters" in top.chunk.text


def test_doc_filter(loaded):
    doc = loaded.store.find_document("Finance", "expenses.pdf")
    results = loaded.retriever.search("policy", ["Finance", "IT"], 5, doc_ids=[doc.doc_id])
    assert results and {r.chunk.file_name for r in results} == {"expenses.pdf"}


def test_keyword_index_follows_deletes(loaded):
    assert loaded.search("14 characters", ["IT"], 1)
    doc = loaded.store.find_document("IT", "security.pdf")
    loaded.store.delete_document(doc.doc_id)
    assert loaded.search("14 characters", ["IT"], 1) == []


def test_empty_query_returns_nothing(loaded):
    assert loaded.search("   ", None, 5) == []


def test_reciprocal_rank_fusion_rewards_agreement():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]])
    assert max(fused, key=fused.__getitem__) == "b"
    assert set(fused) == {"a", "b", "c", "d"}
    assert fused["a"] > fused["c"]


def test_focus_query_keeps_the_part_that_asks():
    from knowledge.retrieval import focus_query

    q = "Consider the Supply Agreement between Acme Corp and Beta LLC; When does it expire?"
    assert focus_query(q) == "When does it expire?"
    assert focus_query("How much is the meal allowance?") == "How much is the meal allowance?"


def test_question_naming_its_document_finds_the_right_page(desk):
    pages = [
        "SUPPLY AGREEMENT between Acme Corp and Beta LLC. The parties agree as follows.",
        "Payment. Invoices are payable within forty-five days of receipt.",
        "Term. This agreement expires five years after the effective date.",
        "Governing law. The laws of the State of Delaware govern this agreement.",
    ]
    other = [p.replace("Acme Corp", "Gamma Inc").replace("Delaware", "Ohio") for p in pages]
    desk.ingest([Upload("acme.pdf", make_pdf(pages, title="Supply Agreement Acme"))], "Legal")
    desk.ingest([Upload("gamma.pdf", make_pdf(other, title="Supply Agreement Gamma"))], "Legal")
    question = "Consider the Supply Agreement between Acme Corp and Beta LLC; which law governs it?"
    [top, *_] = desk.search(question, ["Legal"], 3)
    assert top.chunk.file_name == "acme.pdf"
    assert top.chunk.page_start <= 4 <= top.chunk.page_end
    assert "Delaware" in top.chunk.text
