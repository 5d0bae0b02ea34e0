"""Metadata filters on the real stack (SQLite, Chroma, the embedding model): document tags
(normalised, kept on replace, changed later), search and answers narrowed by tag, document and
ingestion date inside every vector and keyword query, never beyond a user's permissions, and
the in-place migration that adds the tags column to an existing database."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, update
from sqlalchemy.orm import Session

from knowledge.access.roles import Role
from knowledge.assistant.answering import NOT_FOUND
from knowledge.core.db import downgrade
from knowledge.core.errors import KdeskError, NotFoundError
from knowledge.core.settings import Settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.search import indexes
from knowledge.search.filters import (
    SearchFilter,
    document_choices,
    document_tags,
    normalise_tags,
    tags_from_text,
)
from knowledge.search.retrieval import Retriever
from knowledge.search.schema import DocumentRow
from knowledge.search.vectors import ChromaIndex, ExactIndex
from tests.pdfs import make_pdf

EXPENSES = [
    "Travel and Expenses Policy\n\nExpense claims must be submitted within 30 days with receipts.",
    "The daily meal allowance is 60 euros. Hotel rooms are limited to 180 euros per night.",
]
TRAVEL_FAQ = [
    "Travel FAQ\n\nTrain tickets are booked through the travel portal. Taxis need a receipt."
]
SECURITY = [
    "IT Security Policy\n\nPasswords must be at least 14 characters long.",
    "Lost laptops must be reported to the security team within one hour.",
]
HOTEL_QUESTION = "How much may a hotel room cost per night?"
PASSWORD = "a long test password"


def pdf(pages: list[str], title: str) -> bytes:
    return make_pdf(pages, title=title)


@pytest.fixture
def library(desk: Desk) -> Desk:
    desk.ingest(
        [
            Upload("expenses.pdf", pdf(EXPENSES, "Expenses Policy"), ("Finance", "travel")),
            Upload("travel-faq.pdf", pdf(TRAVEL_FAQ, "Travel FAQ"), ("travel",)),
        ],
        "Finance",
    )
    desk.ingest([Upload("security.pdf", pdf(SECURITY, "Security Policy"))], "IT", tags=["IT"])
    return desk


def doc_id(desk: Desk, collection: str, file_name: str) -> str:
    found = desk.store.find_document(collection, file_name)
    assert found is not None
    return found.doc_id


def files(results) -> set[str]:
    return {r.chunk.file_name for r in results}


def set_ingested_at(desk: Desk, doc: str, when: datetime) -> None:
    with Session(desk.engine) as session, session.begin():
        session.execute(
            update(DocumentRow).where(DocumentRow.doc_id == doc).values(ingested_at=when)
        )


# Tags --------------------------------------------------------------------------------------------


def test_tags_are_normalised_stored_and_reported(desk: Desk):
    [report] = desk.ingest(
        [Upload("expenses.pdf", pdf(EXPENSES, "Expenses Policy"))],
        "Finance",
        tags=["  Travel ", "TRAVEL", "Expense   Claims", "travel"],
    )
    assert report.status == "added"
    assert report.tags == ("travel", "expense claims")
    [doc] = desk.store.documents()
    assert doc.tags == ("travel", "expense claims")
    assert tags_from_text(" HR, policy ,, Policy,") == ("hr", "policy")
    assert normalise_tags([]) == ()


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (["   "], "cannot be empty"),
        (["x" * 41], "limited to 40 characters"),
        (["a,b"], "cannot contain a comma"),
        ([f"t{i}" for i in range(21)], "at most 20 tags"),
    ],
)
def test_bad_tags_are_refused_before_anything_is_stored(desk: Desk, tags, message):
    upload = Upload("expenses.pdf", pdf(EXPENSES, "Expenses Policy"))
    with pytest.raises(KdeskError, match=message):
        desk.ingest([upload], "Finance", tags=tags)
    with pytest.raises(KdeskError, match=message):
        desk.ingest([Upload(upload.file_name, upload.data, tuple(tags))], "Finance")
    assert desk.store.documents() == []


def test_a_replaced_document_keeps_its_tags_unless_new_ones_are_given(desk: Desk):
    def ingest(pages: list[str], tags: list[str] | None = None):
        [report] = desk.ingest(
            [Upload("expenses.pdf", pdf(pages, "Expenses"))], "Finance", tags=tags
        )
        [doc] = desk.store.documents()
        assert report.tags == doc.tags
        return report.status, doc.tags

    assert ingest(EXPENSES, ["travel", "finance"]) == ("added", ("travel", "finance"))
    changed = [EXPENSES[0], EXPENSES[1].replace("60 euros", "65 euros")]
    assert ingest(changed) == ("replaced", ("travel", "finance"))
    assert ingest(EXPENSES, ["Policy"]) == ("replaced", ("policy",))
    assert ingest(EXPENSES) == ("unchanged", ("policy",))
    assert ingest(EXPENSES, ["policy", "2024"]) == ("unchanged", ("policy", "2024"))
    assert ingest(EXPENSES, []) == ("unchanged", ())


def test_ingest_paths_tags_every_file(desk: Desk, tmp_path: Path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "expenses.pdf").write_bytes(pdf(EXPENSES, "Expenses Policy"))
    (folder / "security.pdf").write_bytes(pdf(SECURITY, "Security Policy"))
    reports = desk.ingest_paths([folder], "Policies", tags=["Policy"])
    assert [r.tags for r in reports] == [("policy",), ("policy",)]
    assert [d.tags for d in desk.store.documents()] == [("policy",), ("policy",)]


def test_tags_are_changed_later_without_re_embedding(library: Desk):
    doc = doc_id(library, "IT", "security.pdf")
    chunks = library.store.chunk_ids("IT", [doc])
    revision = library.store.revision("IT")
    vectors = library.store.index.get_vectors("IT", chunks)

    changed = library.set_tags(doc, [" Onboarding", "it", "IT "])
    assert changed.tags == ("onboarding", "it")
    assert library.store.document(doc).tags == ("onboarding", "it")
    assert library.store.chunk_ids("IT", [doc]) == chunks, "the same chunks"
    assert library.store.revision("IT") == revision, "the keyword index stays valid"
    after = library.store.index.get_vectors("IT", chunks)
    assert all(np.array_equal(vectors[i], after[i]) for i in chunks), "the same vectors"
    hits = library.search("passwords", None, 5, where=SearchFilter(tags=("onboarding",)))
    assert hits and files(hits) == {"security.pdf"}

    assert library.set_tags(doc, []).tags == ()
    assert library.search("passwords", None, 5, where=SearchFilter(tags=("onboarding",))) == []
    with pytest.raises(NotFoundError):
        library.set_tags("no-such-document", ["x"])
    with pytest.raises(KdeskError, match="cannot be empty"):
        library.set_tags(doc, [""])


def test_choices_for_a_filter_come_from_the_given_collections(library: Desk):
    documents = library.store.documents()
    assert document_tags(documents) == ["finance", "it", "travel"]
    assert document_tags(documents, ["IT"]) == ["it"]
    assert list(document_choices(documents, ["Finance"])) == [
        "Finance / expenses.pdf",
        "Finance / travel-faq.pdf",
    ]
    assert document_choices(documents, ["IT"]) == {
        "IT / security.pdf": doc_id(library, "IT", "security.pdf")
    }


# Filtered search ---------------------------------------------------------------------------------


def test_search_by_tag_returns_only_the_tagged_documents(library: Desk):
    [top, *_] = library.search(HOTEL_QUESTION, None, 5)
    assert top.chunk.file_name == "expenses.pdf", "unfiltered, the hotel limit wins"

    hits = library.search(HOTEL_QUESTION, None, 5, where=SearchFilter(tags=("IT",)))
    assert hits and files(hits) == {"security.pdf"}
    hits = library.search(HOTEL_QUESTION, None, 5, where=SearchFilter(tags=("travel",)))
    assert files(hits) == {"expenses.pdf", "travel-faq.pdf"}
    hits = library.search(HOTEL_QUESTION, None, 5, where=SearchFilter(tags=("finance", "it")))
    assert files(hits) == {"expenses.pdf", "security.pdf"}, "any of the tags"


def test_search_by_document_name_or_id(library: Desk):
    by_name = library.search(HOTEL_QUESTION, None, 5, where=SearchFilter(("travel-faq.pdf",)))
    assert by_name and files(by_name) == {"travel-faq.pdf"}
    security = doc_id(library, "IT", "security.pdf")
    by_id = library.search("14 characters", None, 5, where=SearchFilter((security,)))
    assert by_id and files(by_id) == {"security.pdf"}
    both = SearchFilter(("travel-faq.pdf",), tags=("travel",))
    assert files(library.search(HOTEL_QUESTION, None, 5, where=both)) == {"travel-faq.pdf"}
    # the filter narrows the collections searched, never adds to them
    assert library.search("passwords", ["Finance"], 5, where=SearchFilter((security,))) == []


def test_search_by_ingestion_dates_includes_both_days(library: Desk):
    expenses = doc_id(library, "Finance", "expenses.pdf")
    faq = doc_id(library, "Finance", "travel-faq.pdf")
    security = doc_id(library, "IT", "security.pdf")
    set_ingested_at(library, expenses, datetime(2024, 1, 10, 23, 59, tzinfo=UTC))
    set_ingested_at(library, faq, datetime(2024, 2, 1, 0, 0, tzinfo=UTC))
    set_ingested_at(library, security, datetime(2024, 3, 5, 12, 0, tzinfo=UTC))

    def found(since: str | None, until: str | None) -> set[str]:
        where = SearchFilter.parse(since=since, until=until)
        return files(library.search(HOTEL_QUESTION, None, 10, where=where))

    assert found("2024-01-10", "2024-01-10") == {"expenses.pdf"}
    assert found("2024-01-11", "2024-02-01") == {"travel-faq.pdf"}
    assert found("2024-02-01", None) == {"travel-faq.pdf", "security.pdf"}
    assert found(None, "2024-01-31") == {"expenses.pdf"}
    assert found("2024-03-06", None) == set()
    where = SearchFilter(tags=("travel",), ingested_since=date(2024, 1, 11))
    assert files(library.search(HOTEL_QUESTION, None, 5, where=where)) == {"travel-faq.pdf"}


def test_bad_dates_are_clear_errors():
    with pytest.raises(KdeskError, match="--since: '2024-02-30' is not a date"):
        SearchFilter.parse(since="2024-02-30")
    with pytest.raises(KdeskError, match="comes after the last day"):
        SearchFilter.parse(since="2024-03-01", until="2024-02-01")
    assert SearchFilter.parse(["a.pdf", " ", "a.pdf"], [" X "], "", None) == SearchFilter(
        ("a.pdf",), ("x",)
    )
    assert SearchFilter().empty and not SearchFilter(tags=("x",)).empty


def test_a_filter_that_matches_nothing_finds_nothing(library: Desk, model):
    for where in (
        SearchFilter(tags=("no such tag",)),
        SearchFilter(("missing.pdf",)),
        SearchFilter(ingested_since=date(2999, 1, 1)),
        SearchFilter(("security.pdf",), tags=("travel",)),  # each field must hold
    ):
        assert library.search(HOTEL_QUESTION, None, 5, where=where) == []
        stream = library.ask(HOTEL_QUESTION, where=where)
        assert "".join(stream) == NOT_FOUND
        assert stream.answer.sources == [] and stream.answer.abstained
    assert model.calls == [], "no evidence: the model is not asked"


def test_ask_answers_within_the_filter(library: Desk, model):
    stream = library.ask(HOTEL_QUESTION, where=SearchFilter(tags=("travel",)))
    "".join(stream)
    assert stream.answer.sources
    assert files(stream.answer.sources) <= {"expenses.pdf", "travel-faq.pdf"}
    stream = library.ask("How long must passwords be?", where=SearchFilter(("expenses.pdf",)))
    "".join(stream)
    assert files(stream.answer.sources) <= {"expenses.pdf"}


# Inside the queries, not after them --------------------------------------------------------------

HOTELS = [
    f"Hotel Rules {city}\n\nHotel rooms in {city} cost at most {price} euros per night."
    for city, price in [("Paris", 190), ("Rome", 170), ("Berlin", 150), ("Madrid", 160)]
]


@pytest.fixture
def crowded(desk: Desk) -> Desk:
    """Four hotel documents that beat the travel FAQ on any hotel question, in one collection."""
    uploads = [
        Upload(f"hotels-{i}.pdf", pdf([text], f"Hotel rules {i}")) for i, text in enumerate(HOTELS)
    ]
    uploads.append(Upload("travel-faq.pdf", pdf(TRAVEL_FAQ, "Travel FAQ"), ("faq",)))
    desk.ingest(uploads, "Travel")
    return desk


def test_the_vector_query_itself_is_filtered(crowded: Desk):
    # one candidate per query: a filter applied after the query would find nothing
    vector_only = Retriever(crowded.store, crowded.embedder, candidates=1, hybrid=False)
    [top] = vector_only.search(HOTEL_QUESTION, ["Travel"], 1)
    assert top.chunk.file_name.startswith("hotels-")
    faq = [doc_id(crowded, "Travel", "travel-faq.pdf")]
    [hit] = vector_only.search(HOTEL_QUESTION, ["Travel"], 3, doc_ids=faq)
    assert hit.chunk.file_name == "travel-faq.pdf" and hit.score > 0


def test_the_keyword_query_itself_is_filtered(crowded: Desk, monkeypatch):
    retriever = Retriever(crowded.store, crowded.embedder, candidates=1, hybrid=True)
    monkeypatch.setattr(crowded.store.index, "query", lambda *args, **kwargs: [])  # BM25 only
    question = "hotel rooms cost euros per night booked"  # only "booked" is in the FAQ
    [top] = retriever.search(question, ["Travel"], 1)
    assert top.chunk.file_name.startswith("hotels-")
    faq = [doc_id(crowded, "Travel", "travel-faq.pdf")]
    [hit] = retriever.search(question, ["Travel"], 3, doc_ids=faq)
    assert hit.chunk.file_name == "travel-faq.pdf"


@pytest.mark.parametrize("vectors", ["exact in memory", "vector index"])
def test_every_query_of_every_stage_gets_the_filter(library: Desk, monkeypatch, vectors: str):
    if vectors == "vector index":  # a collection too large to hold its vectors in memory
        monkeypatch.setattr(indexes, "EXACT_SEARCH_MAX", 0)
        library.retriever.keywords = indexes.MemoryIndexes(library.store)
    allowed_docs = set(
        library.store.filtered_doc_ids(["Finance", "IT"], SearchFilter(tags=("it",)))
    )
    allowed_chunks = set(library.store.chunk_ids("IT", list(allowed_docs)))
    vector_calls: list = []
    keyword_calls: list = []
    exact_hits: list = []
    index_query = library.store.index.query
    exact_query = library.retriever.keywords.vector_query
    keyword_query = library.retriever.keywords.query

    def spy_vector(collection, vector, k, ids=None):
        vector_calls.append((collection, ids))
        return index_query(collection, vector, k, ids)

    def spy_exact(collection, vector, k, doc_ids=None):
        found = exact_query(collection, vector, k, doc_ids)
        exact_hits.append((collection, doc_ids, found))
        return found

    def spy_keyword(collection, text, k, doc_ids=None):
        keyword_calls.append((collection, doc_ids))
        return keyword_query(collection, text, k, doc_ids)

    monkeypatch.setattr(library.store.index, "query", spy_vector)
    monkeypatch.setattr(library.retriever.keywords, "vector_query", spy_exact)
    monkeypatch.setattr(library.retriever.keywords, "query", spy_keyword)
    # a question in two parts runs the focus stage too; it names the expenses policy
    question = "Consider the Travel and Expenses Policy; what is the hotel limit per night?"
    hits = library.search(question, ["Finance", "IT"], 5, where=SearchFilter(tags=("it",)))
    assert hits and files(hits) == {"security.pdf"}
    assert all(set(d) <= allowed_docs for _, d, _ in exact_hits)
    if vectors == "vector index":
        # Finance holds none of the documents: it is not even queried
        assert [c for c, _ in vector_calls] == ["IT"] and set(vector_calls[0][1]) == allowed_chunks
    else:
        assert vector_calls == []  # every vector query was the exact one, filtered
        found = {i for _, _, hits in exact_hits for i, _ in hits}
        assert found and found <= allowed_chunks
    assert len(keyword_calls) >= 2, "first stage and focus stage"
    assert all(c == "IT" and set(d) <= allowed_docs for c, d in keyword_calls)


def test_vector_indexes_search_among_given_ids(tmp_path: Path):
    vectors = np.eye(4, dtype=np.float32)
    ids = ["a", "b", "c", "d"]
    for index in (ExactIndex(), ChromaIndex(tmp_path / "chroma")):
        index.add("c", ids, vectors)
        query = np.asarray([1.0, 0.5, 0.0, 0.0], dtype=np.float32)
        query /= np.linalg.norm(query)
        assert [i for i, _ in index.query("c", query, 2)] == ["a", "b"]
        assert [i for i, _ in index.query("c", query, 2, ["c", "b"])] == ["b", "c"]
        assert index.query("c", query, 2, []) == []
        # an id deleted meanwhile (a replaced document) is skipped, not an error
        assert [i for i, _ in index.query("c", query, 5, ["gone", "d"])] == ["d"]
        assert index.query("c", query, 5, ["gone"]) == []


# Permissions -------------------------------------------------------------------------------------


def test_a_filter_never_widens_what_a_user_may_see(library: Desk, model):
    library.roles.save(Role("finance", pages=("chat",), collections=("Finance",)), "test")
    library.accounts.add("fiona", ["finance"], "test", password=PASSWORD)
    fiona = library.for_user("fiona")
    security = doc_id(library, "IT", "security.pdf")
    foreign = [
        SearchFilter((security,)),
        SearchFilter(("security.pdf",)),
        SearchFilter(tags=("it",)),
        SearchFilter(("security.pdf", security), tags=("it",), ingested_since=date(2000, 1, 1)),
    ]
    for where in foreign:
        assert fiona.search("passwords 14 characters", None, 5, where=where) == []
        assert fiona.search("passwords", ["IT", "Finance"], 5, where=where) == []
        stream = fiona.ask("How long must passwords be?", ["IT"], where=where)
        assert "".join(stream) == NOT_FOUND and stream.answer.sources == []
    assert model.calls == []

    # within her collections the filter narrows as usual
    hits = fiona.search(HOTEL_QUESTION, None, 5, where=SearchFilter(("travel-faq.pdf",)))
    assert hits and files(hits) == {"travel-faq.pdf"}
    stream = fiona.ask(HOTEL_QUESTION, where=SearchFilter(tags=("travel", "it")))
    "".join(stream)
    assert stream.answer.sources
    assert {s.chunk.collection for s in stream.answer.sources} == {"Finance"}


def test_an_admin_filter_reaches_every_allowed_collection(library: Desk):
    library.accounts.add("root", ["admin"], "test", password=PASSWORD)
    root = library.for_user("root")
    hits = root.search("passwords", None, 5, where=SearchFilter(tags=("it",)))
    assert hits and files(hits) == {"security.pdf"}


# Migration ---------------------------------------------------------------------------------------


def test_the_tags_column_is_added_to_an_existing_database(settings: Settings, embedder, model):
    old = Desk(settings, embedder=embedder, model=model)
    old.ingest([Upload("security.pdf", pdf(SECURITY, "Security Policy"))], "IT")
    downgrade(old.engine, "2")  # the tables and columns of later revisions gone
    old.engine.dispose()
    with sqlite3.connect(settings.database_path) as db:  # the schema of an earlier release
        db.execute("ALTER TABLE documents DROP COLUMN tags")
        db.execute("DROP TABLE alembic_version")  # made before the schema had migrations
    with sqlite3.connect(settings.database_path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(documents)")}
    assert "tags" not in columns and "doc_id" in columns

    desk = Desk(settings, embedder=embedder, model=model)
    assert "tags" in {c["name"] for c in inspect(desk.engine).get_columns("documents")}
    [doc] = desk.store.documents()
    assert doc.file_name == "security.pdf" and doc.tags == ()
    assert files(desk.search("passwords", None, 3)) == {"security.pdf"}
    assert desk.search("passwords", None, 3, where=SearchFilter(tags=("it",))) == []
    desk.set_tags(doc.doc_id, ["IT"])
    hits = desk.search("passwords", None, 3, where=SearchFilter(tags=("it",)))
    assert files(hits) == {"security.pdf"}
    [report] = desk.ingest([Upload("security.pdf", pdf(SECURITY[:1], "Security Policy"))], "IT")
    assert report.status == "replaced" and report.tags == ("it",)
