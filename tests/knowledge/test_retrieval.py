"""Retrieval on a real Chroma with the real embedding model."""

import pytest

from knowledge.desk.ingestion import Upload
from knowledge.search.ranking import reciprocal_rank_fusion
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
    from knowledge.search.ranking import focus_query

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


def test_name_words_are_the_names_a_question_uses():
    from knowledge.search.ranking import name_words

    assert name_words("How has Apple's total net sales changed?") == "Apple's"
    assert name_words("In Q1 2023, how did Intel's spending change?") == "Q1 2023 Intel's"
    assert name_words("What was NVIDIA's margin? Is it rising?") == "NVIDIA's"
    assert name_words("What does the policy say about data retention?") == ""


def test_named_documents_only_when_a_few_stand_out():
    from knowledge.search.ranking import named_documents

    others = {f"other-{i}": 0.25 * (i % 3) for i in range(8)}
    assert named_documents({"a": 9.0, "b": 8.0, "c": 4.0, **others}) == ["a", "b"]
    assert named_documents({"a": 2.0, "b": 1.8, "c": 1.9, "d": 1.7}) == []  # nothing stands out
    assert named_documents({"a": 0.0, "b": 0.0}) == []
    assert named_documents({"a": 5.0}) == []  # one document: nothing to choose


FILING = [
    "QUARTERLY REPORT. {company} Inc. Form 10-Q for the quarter ended June 30.",
    "Table of contents. Part I financial information. Part II other information.",
    "Foreign exchange. A stronger dollar reduced net sales by 4 percent this quarter.",
    "{company} Inc. recorded gross margin of {margin} percent on products.",
]


def test_question_naming_a_company_searches_its_filing_first(desk):
    """The chunk about foreign exchange never names its company; the filing does, elsewhere.
    Without the document stage the look-alike chunk of the other filing can win."""
    for company, margin in (("Orchard", "36"), ("Juniper", "41"), ("Willow", "52")):
        pages = [p.format(company=company, margin=margin) for p in FILING]
        if company == "Juniper":  # the best-matching wording sits in another company's filing
            pages[2] = "Foreign exchange rates: the foreign exchange impact reduced net sales."
        name = f"2023_Q2_{company[:4].upper()}.pdf"
        desk.ingest([Upload(name, make_pdf(pages, title=f"2023 Q2 {company[:4].upper()}"))], "10Q")
    question = "What impact did foreign exchange rates have on Orchard's net sales?"
    [top, *_] = desk.search(question, ["10Q"], 3)
    assert top.chunk.file_name == "2023_Q2_ORCH.pdf"
    assert top.chunk.page_start <= 3 <= top.chunk.page_end
    desk.retriever.focus = False  # the stage switched off: the look-alike page wins
    [top, *_] = desk.search(question, ["10Q"], 3)
    assert top.chunk.file_name == "2023_Q2_JUNI.pdf"


def test_the_best_passage_wins_across_collections(desk):
    """Ranks fused per collection would put every collection's best passage first, however
    poor: the leave policy's only passage (first by vector and by keyword in its collection)
    would beat the contract's renewal clause (first by vector only in its own)."""
    leave = ["Leave Policy\n\nEmployees on a fixed-term contract get annual leave pro rata."]
    services = "This services contract covers the services Northwind Ltd provides to Contoso Ltd. "
    contract = [
        "SERVICES CONTRACT\n\n" + services * 6,
        "2. Term\n\nThe agreement runs for 24 months. It renews automatically for successive "
        "one-year terms unless either party gives 90 days notice before the end of a term. " * 4,
    ]
    desk.ingest([Upload("leave.pdf", make_pdf(leave, title="Leave Policy"))], "Policies")
    desk.ingest([Upload("msa.pdf", make_pdf(contract, title="Services Contract"))], "Deals")
    results = desk.search("When does the services contract renew?", ["Policies", "Deals"], 3)
    assert results[0].chunk.file_name == "msa.pdf" and "renews" in results[0].chunk.text


def test_vectors_in_memory_are_exact_and_reloaded_only_for_new_chunks(loaded, monkeypatch):
    from knowledge.search import indexes

    store, keywords = loaded.store, loaded.retriever.keywords
    query = loaded.embedder.embed_query("How long must passwords be?")
    ids = [c.id for c in store.collection_chunks("IT")]
    exact = sorted(
        ((i, float(v @ query)) for i, v in store.index.get_vectors("IT", ids).items()),
        key=lambda pair: -pair[1],
    )
    found = keywords.vector_query("IT", query, 3)
    assert [i for i, _ in found] == [i for i, _ in exact[:3]]
    assert all(abs(s - e) < 1e-5 for (_, s), (_, e) in zip(found, exact, strict=False))

    read: list[str] = []
    get_vectors = store.index.get_vectors

    def spy(collection, wanted):
        read.extend(wanted)
        return get_vectors(collection, wanted)

    profiled: list[str] = []
    profile_text = indexes.profile_text

    def spy_profile(chunks, title_weight=2):
        profiled.append(chunks[0].file_name)
        return profile_text(chunks, title_weight)

    monkeypatch.setattr(store.index, "get_vectors", spy)
    monkeypatch.setattr(indexes, "profile_text", spy_profile)
    loaded.ingest([Upload("vpn.pdf", make_pdf(["Use the VPN on public networks."]))], "IT")
    keywords.vector_query("IT", query, 3)  # the revision moved: the indexes are rebuilt
    new = {c.id for c in store.collection_chunks("IT") if c.file_name == "vpn.pdf"}
    assert set(read) == new  # the vectors already held were kept
    assert profiled == ["vpn.pdf"]  # and the profiles of the documents already there
