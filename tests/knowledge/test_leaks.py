"""The leak test: two users whose roles give disjoint collections ask a few hundred generated
questions - many naming the other side's documents, titles, phrases, file names and contract
parties - through the knowledge layer (UserDesk) and through ``kdesk search/ask --user``.
Not one chunk of the other side may appear in a search result, an answer's sources, citations,
text or prompt, a document list, a clause record or its export, or in usage analytics.

Every check is paired with its counter-check: a user holding both sides' roles runs the same
questions and must find the documents they name, so a broken fixture cannot pass vacuously.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from openpyxl import load_workbook

from knowledge.assistant.answering import NOT_FOUND
from knowledge.cli import common
from knowledge.cli import main as cli
from knowledge.contracts.book import ClauseFilter, export_csv, export_xlsx
from knowledge.core.errors import NotFoundError
from knowledge.core.settings import Settings, load_settings
from knowledge.core.types import Answer, ScoredChunk
from knowledge.desk.facade import UserDesk
from knowledge.desk.root import Desk
from knowledge.search.embeddings import Embedder
from knowledge.search.filters import SearchFilter
from knowledge.search.ranking import focus_query
from knowledge.usage.events import UsageFilter
from tests.fake_ollama import FakeOllama
from tests.leaks import (
    ADMIN,
    BOTH,
    NOBODY,
    SIDES,
    Side,
    answer_leaks,
    chunk_leaks,
    furnish,
    leaked_text,
    other,
    probe,
    questions_for,
    questions_naming,
)
from tests.pages.support import MODEL, grounded_reply

# The office: both sides' documents, roles and users in one data dir ---------------------------


@dataclass
class Office:
    data_dir: Path
    desk: Desk
    ollama: FakeOllama
    doc_ids: dict[str, set[str]]  # user -> the doc ids of their side

    def user(self, name: str) -> UserDesk:
        return self.desk.for_user(name, channel="api")


class BatchedEmbedder:
    """The real embedding model, with every generated question embedded up front in one
    batch (hundreds of single-question calls would cost most of the test's time)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.queries: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        return self.embedder.name

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    def prepare(self, texts: Iterable[str]) -> None:
        wanted = list(dict.fromkeys(t.strip() for t in texts if t.strip() not in self.queries))
        for text, vector in zip(wanted, self.embedder.embed_documents(wanted), strict=True):
            self.queries[text] = vector

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.embedder.embed_documents(texts)

    def embed_passages(self, texts, spans):  # type: ignore[no-untyped-def]
        return self.embedder.embed_passages(texts, spans)

    def embed_query(self, text: str) -> np.ndarray:
        found = self.queries.get(text)
        return found if found is not None else self.embedder.embed_query(text)


@pytest.fixture(scope="module")
def batched(embedder) -> BatchedEmbedder:
    batched = BatchedEmbedder(embedder)
    texts = [q.text for side in SIDES for q in questions_for(side)]
    texts += [probe(doc) for side in SIDES for doc in side.docs]
    batched.prepare([*texts, *(focus_query(t) for t in texts)])  # and the focus stage's part
    return batched


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory, batched: BatchedEmbedder) -> Iterator[Office]:
    data_dir = tmp_path_factory.mktemp("leaks") / "data"
    with FakeOllama(reply=grounded_reply, models=[MODEL]) as ollama:
        settings = Settings(
            data_dir=data_dir, model_backend="ollama", ollama_host=ollama.url, ollama_model=MODEL
        )
        desk = Desk(settings, embedder=batched)
        doc_ids = furnish(desk)
        yield Office(data_dir, desk, ollama, doc_ids)


def test_the_office_holds_two_disjoint_sides(office: Office):
    for side in SIDES:
        me = office.user(side.user)
        assert me.collections() == list(side.collections)
        assert {d.file_name for d in me.documents()} == side.file_names
        assert {c.file_name for c in me.contracts()} == {d.file_name for d in side.docs[-1:]}
    assert office.user(BOTH).collections() == sorted(c for s in SIDES for c in s.collections)
    assert office.user(NOBODY).collections() == []
    for side in SIDES:
        assert not set(side.markers) & set(other(side).markers)
        assert len(questions_for(side)) >= 150


# Searches ------------------------------------------------------------------------------------


def foreign_hits(office: Office, side: Side, hits: list[ScoredChunk], question: str) -> list[str]:
    return chunk_leaks(side, office.doc_ids[side.user], [h.chunk for h in hits], question)


def test_searches_never_return_the_other_sides_chunks(office: Office):
    """Through UserDesk, and through the retriever the answers use (passages and clause
    records) given the user's collections: the permission filter inside retrieval."""
    retriever = office.desk.assistant().retriever
    leaks: list[str] = []
    searched = 0
    for side in SIDES:
        me = office.user(side.user)
        allowed = me.collections()
        foreign = list(other(side).collections)
        their_ids = office.doc_ids[other(side).user]
        names = (*sorted(other(side).file_names), *sorted(their_ids))
        their_docs = (SearchFilter(documents=names), SearchFilter(tags=(other(side).tag,)))
        for i, q in enumerate(questions_for(side)):
            leaks += foreign_hits(office, side, me.search(q.text, k=8), q.text)
            leaks += foreign_hits(office, side, retriever.search(q.text, allowed, 8), q.text)
            searched += 2
            if i % 2 == 0:  # asking for the other side's collections by name changes nothing
                requested = [*foreign, side.library]
                leaks += foreign_hits(office, side, me.search(q.text, requested), q.text)
                assert me.search(q.text, foreign) == [], q.text
                searched += 2
            if i % 4 == 0:  # nor does naming their documents or tag in the metadata filter
                assert me.search(q.text, where=their_docs[i // 4 % 2]) == [], q.text
                searched += 1
    assert not leaks, f"{len(leaks)} foreign chunks, e.g. {leaks[:5]}"
    assert searched >= 1000

    nobody = office.user(NOBODY)
    for side in SIDES:
        for q in questions_for(side)[::4]:
            assert nobody.search(q.text) == [], q.text


def test_the_same_questions_find_the_documents_they_name_for_a_user_holding_both(
    office: Office,
):
    """The counter-check: what the sides may not see is there, and these questions find it."""
    carla = office.user(BOTH)
    for side in SIDES:
        named = questions_naming(side)
        found = [q for q in named if q.target in {h.chunk.file_name for h in carla.search(q.text)}]
        assert len(found) >= 0.8 * len(named), (side.user, len(found), len(named))
        assert {q.target for q in found} == side.file_names
        for doc in side.docs:  # and so do the metadata filters the sides get nothing from
            for where in (SearchFilter(documents=(doc.file_name,)), SearchFilter(tags=(side.tag,))):
                hits = carla.search(probe(doc), where=where)
                assert hits and {h.chunk.file_name for h in hits} <= side.file_names, doc.title


# Answers -------------------------------------------------------------------------------------


def ask(office: Office, me: UserDesk, question: str) -> tuple[Answer, list[dict]]:
    before = len(office.ollama.chats)
    stream = me.ask(question)
    "".join(stream)
    return stream.answer, office.ollama.chats[before:]


def test_answers_never_cite_quote_or_prompt_with_the_other_side(office: Office):
    leaks: list[str] = []
    asked = answered = 0
    for side in SIDES:
        me = office.user(side.user)
        for q in questions_for(side)[::2]:
            answer, prompts = ask(office, me, q.text)
            leaks += answer_leaks(side, office.doc_ids[side.user], answer, prompts)
            asked += 1
            answered += bool(prompts)
        their_docs = SearchFilter(documents=tuple(sorted(other(side).file_names)))
        for q in questions_for(side)[::20]:  # the metadata filter naming their documents
            stream = me.ask(q.text, where=their_docs)
            assert "".join(stream) == NOT_FOUND and stream.answer.sources == [], q.text
    assert not leaks, f"{len(leaks)} leaks, e.g. {leaks[:5]}"
    assert asked >= 150 and answered >= 20, "some questions reach the model, with own sources"

    # the counter-check: the same kind of question, by a user holding both, cites the other side
    carla = office.user(BOTH)
    for side in SIDES:
        for doc in side.docs:
            answer, _ = ask(office, carla, probe(doc))
            assert doc.file_name in {c.chunk.file_name for c in answer.citations}, doc.title
            theirs = office.doc_ids[other(side).user]
            assert answer_leaks(other(side), theirs, answer), "the detector sees them"


# Documents, clause records, exports, analytics -----------------------------------------------


def test_documents_clauses_and_exports_stay_on_their_side(office: Office):
    desk = office.desk
    for side in SIDES:
        me = office.user(side.user)
        mine = office.doc_ids[side.user]
        theirs = office.doc_ids[other(side).user]
        assert {d.doc_id for d in me.documents()} == mine
        for doc_id in theirs:
            with pytest.raises(NotFoundError):
                me.document(doc_id)
            with pytest.raises(NotFoundError):
                me.delete_document(doc_id)
        records = me.clause_records()
        assert records and {r.doc_id for r in records} <= mine
        assert me.clause_records(ClauseFilter(collections=list(other(side).collections))) == []
        assert me.clause_records(ClauseFilter(doc_ids=list(theirs))) == []
        own_law, their_law = (
            s.docs[-1].phrases[2].removeprefix("State of ") for s in (side, other(side))
        )
        assert me.clause_records(ClauseFilter(value_contains=own_law))
        assert me.clause_records(ClauseFilter(value_contains=their_law)) == []
        for record in desk.contracts.records(ClauseFilter(doc_ids=list(theirs))):
            with pytest.raises(NotFoundError):
                me.clause(record.id)
            with pytest.raises(NotFoundError):
                me.review_clause(record.id, "confirm")
        exported = export_csv(records).decode()
        assert not leaked_text(exported, side, ""), exported[:300]
        sheet = load_workbook(io.BytesIO(export_xlsx(records))).active
        cells = " ".join(str(v) for row in sheet.iter_rows(values_only=True) for v in row)
        assert not leaked_text(cells, side, ""), cells[:300]
        assert {row["file"] for row in csv.DictReader(io.StringIO(exported))} <= side.file_names

    # the counter-check: all of it is there for a user holding both
    carla = office.user(BOTH)
    assert {d.doc_id for d in carla.documents()} == set().union(*office.doc_ids.values())
    assert {r.file_name for r in carla.clause_records()} == {s.docs[-1].file_name for s in SIDES}


def test_usage_analytics_and_their_export_stay_on_their_side(office: Office):
    """Each side's questions and cited documents are counted only for viewers of that side."""
    asked: dict[str, set[str]] = {}
    for side in SIDES:
        me = office.user(side.user)
        for doc in side.docs:  # questions that cite the user's own documents
            question = f"Analytics check by {side.user}: {doc.phrases[0]}?"
            answer, _ = ask(office, me, question)
            asked.setdefault(side.user, set()).add(question)
        answer, _ = ask(office, office.user(BOTH), f"Analytics check by {BOTH}: everything?")
    for side in SIDES:
        me = office.user(side.user)
        board = me.dashboard(UsageFilter())
        theirs = other(side)
        cited = set(board.most_cited["document"]) | set(board.never_cited["document"])
        assert cited and cited <= side.file_names, cited
        shown = set(board.top_questions["question"]) | {
            q for examples in board.gaps["examples"] for q in examples.split(" · ")
        }
        assert not {q for q in shown if q.startswith("Analytics check by")} - asked[side.user]
        assert not any(q.startswith(f"Analytics check by {theirs.user}") for q in shown)
        rows = list(csv.DictReader(io.StringIO(me.usage_csv(UsageFilter()).decode())))
        assert rows and {r["user"] for r in rows} == {side.user}
        for row in rows:
            assert set(row["collections"].split("; ")) <= set(side.collections), row
            cited_docs = {d for d in row["cited_documents"].split("; ") if d}
            assert cited_docs <= side.file_names, row
        summary = me.usage_summary(UsageFilter())
        assert summary["questions"] == len(rows) and summary["users"] == 1

    # the counter-check: an admin sees every side's events
    exported = office.user(ADMIN).usage_csv(UsageFilter()).decode()
    assert {s.user for s in SIDES} | {BOTH} <= {
        r["user"] for r in csv.DictReader(io.StringIO(exported))
    }


# The command line ------------------------------------------------------------------------------


@pytest.fixture
def kdesk(office: Office, monkeypatch: pytest.MonkeyPatch, batched: BatchedEmbedder, capsys):
    """`kdesk ARGS...` in-process over the office's data dir; returns (code, parsed JSON)."""
    monkeypatch.setenv("KDESK_DATA_DIR", str(office.data_dir))
    monkeypatch.setenv("KDESK_MODEL_BACKEND", "ollama")
    monkeypatch.setenv("KDESK_OLLAMA_HOST", office.ollama.url)
    monkeypatch.setenv("KDESK_OLLAMA_MODEL", MODEL)
    monkeypatch.setattr(common, "open_desk", lambda: Desk(load_settings(), embedder=batched))

    def run(*args: str) -> tuple[int, dict]:
        capsys.readouterr()
        code = cli.main([*args, "--json"])
        out = capsys.readouterr().out
        return code, json.loads(out)

    return run


def test_the_command_line_applies_exactly_the_users_permissions(office: Office, kdesk):
    leaks: list[str] = []
    runs = 0
    for side in SIDES:
        theirs = other(side)
        for q in questions_for(side)[::9]:
            code, out = kdesk("search", q.text, "--user", side.user, "-k", "8")
            assert code == 0
            leaks += [
                f"search {q.text!r}: {r['doc']}"
                for r in out["results"]
                if r["doc"] not in side.file_names or leaked_text(r["text"], side, q.text)
            ]
            code, out = kdesk("search", q.text, "--user", side.user, "--collection", theirs.library)
            assert code == 0 and out == {"results": []}, q.text
            their_doc = theirs.docs[runs % len(theirs.docs)].file_name
            code, out = kdesk("search", q.text, "--user", side.user, "--doc", their_doc)
            assert code == 0 and out == {"results": []}, q.text
            code, out = kdesk("ask", q.text, "--user", side.user)
            assert code == 0
            leaks += [
                f"ask {q.text!r}: {c['doc']}"
                for c in out["citations"]
                if c["doc"] not in side.file_names
            ]
            shown = " ".join([out["answer"], *(c["text"] for c in out["citations"])])
            leaks += [f"ask {q.text!r}: {t}" for t in leaked_text(shown, side, q.text)]
            runs += 4
    assert not leaks, f"{len(leaks)} leaks, e.g. {leaks[:5]}"
    assert runs >= 160
    for side in SIDES:  # usage figures: only the events of the user's side
        code, out = kdesk("usage", "--user", side.user)
        assert code == 0 and out["users"] == 1 and set(out["by_role"]) == {side.role}

    # the counter-check: the same command finds the other side for a user holding both
    for side in SIDES:
        for doc in side.docs[::3]:
            _, out = kdesk("search", probe(doc), "--user", BOTH)
            assert doc.file_name in {r["doc"] for r in out["results"]}
            _, out = kdesk("ask", probe(doc), "--user", BOTH)
            assert doc.file_name in {c["doc"] for c in out["citations"]}
