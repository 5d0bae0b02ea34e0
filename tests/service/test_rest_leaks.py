"""The leak test through the REST API: each side of tests/leaks.py asks many questions (those
naming the other side's documents, mixed and generic ones) through ``/api/search``,
``/api/ask`` and ``/v1/chat/completions``; no passage, citation, answer text or prompt sent
to the model holds the other side's documents, and none of those documents' pages or
originals can be opened."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.leaks import BOTH, SIDES, Question, Side, leaked_text, other, probe, questions_for
from tests.pages.support import sources_and_question
from tests.service.conftest import Served

EVERY = 3  # a deterministic third of each side's ~200 questions


def sample(side: Side) -> list[Question]:
    return questions_for(side)[::EVERY]


def foreign_places(
    side: Side, mine: set[str], items: list[dict[str, Any]], asked: str
) -> list[str]:
    """Passages or citations that are not ``side``'s own documents."""
    return [
        f"{asked!r} -> {item['collection']}/{item['document']}"
        for item in items
        if item["doc_id"] not in mine or item["collection"] not in side.collections
    ]


def prompt_leaks(side: Side, chats: list[dict[str, Any]], asked: str) -> list[str]:
    found = []
    for chat in chats:
        sources, _ = sources_and_question(chat["messages"])
        for text in sources.values():
            found += [f"{asked!r}: prompt {t}" for t in leaked_text(text, side, asked)]
    return found


@pytest.mark.parametrize("side", SIDES, ids=lambda s: s.user)
def test_no_foreign_passage_or_citation_through_the_apis(served: Served, side: Side):
    mine = served.doc_ids[side.user]
    questions = sample(side)
    assert len(questions) >= 60
    leaks: list[str] = []
    answered = 0
    with served.client(served.key(side.user)) as client:
        for question in questions:
            asked = question.text
            found = client.post("/api/search", json={"query": asked}).json()["passages"]
            leaks += foreign_places(side, mine, found, asked)
            for passage in found:
                leaks += [
                    f"{asked!r}: passage {t}" for t in leaked_text(passage["text"], side, asked)
                ]
            before = len(served.ollama.chats)
            answer = client.post("/api/ask", json={"question": asked}).json()
            answered += not answer["abstained"]
            leaks += foreign_places(side, mine, answer["citations"], asked)
            shown = " ".join([answer["answer"], *(c["passage"] for c in answer["citations"])])
            leaks += [f"{asked!r}: text {t}" for t in leaked_text(shown, side, asked)]
            chat = {"model": "kdesk", "messages": [{"role": "user", "content": asked}]}
            completion = client.post("/v1/chat/completions", json=chat).json()
            leaks += foreign_places(side, mine, completion["citations"], asked)
            text = completion["choices"][0]["message"]["content"]
            shown = " ".join([text, *(c["passage"] for c in completion["citations"])])
            leaks += [f"{asked!r}: chat text {t}" for t in leaked_text(shown, side, asked)]
            leaks += prompt_leaks(side, served.ollama.chats[before:], asked)
    assert leaks == []
    assert answered > 0  # the mixed questions find the side's own documents


@pytest.mark.parametrize("side", SIDES, ids=lambda s: s.user)
def test_foreign_documents_pages_and_originals_are_404(served: Served, side: Side):
    theirs = served.doc_ids[other(side).user]
    with served.client(served.key(side.user, ("read", "upload"))) as client:
        listed = {d["doc_id"] for d in client.get("/api/documents").json()["documents"]}
        assert listed == served.doc_ids[side.user]
        for doc_id in sorted(theirs):
            pages = served.desk.store.document(doc_id).pages
            paths = [f"/pages/{n}" for n in range(1, pages + 1)] + ["", "/original"]
            for path in paths:
                assert_not_found(client.get(f"/api/documents/{doc_id}{path}"))
            assert_not_found(client.get(f"/api/documents/{doc_id}/pages/1?format=png"))
            assert_not_found(client.delete(f"/api/documents/{doc_id}"))
    assert all(served.desk.store.document(doc_id) for doc_id in theirs)  # none was deleted


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("side", SIDES, ids=lambda s: s.user)
def test_the_check_finds_the_other_side_for_someone_who_may_read_both(served: Served, side: Side):
    mine = served.doc_ids[side.user]
    with served.client(served.key(BOTH)) as client:
        for doc in other(side).docs:
            asked = probe(doc)
            found = client.post("/api/search", json={"query": asked}).json()["passages"]
            assert foreign_places(side, mine, found, asked), asked
            answer = client.post("/api/ask", json={"question": asked}).json()
            assert foreign_places(side, mine, answer["citations"], asked), asked


@pytest.mark.parametrize("side", SIDES, ids=lambda s: s.user)
def test_naming_foreign_collections_or_documents_widens_nothing(served: Served, side: Side):
    mine = served.doc_ids[side.user]
    theirs = other(side)
    named = sorted(served.doc_ids[theirs.user]) + sorted(theirs.file_names)
    scope = {
        "collections": list(theirs.collections),
        "filter": {"documents": named, "include_earlier": True},
    }
    with served.client(served.key(side.user)) as client:
        for doc in theirs.docs:
            asked = probe(doc)
            found = client.post("/api/search", json={"query": asked, **scope}).json()
            assert found["passages"] == []
            answer = client.post("/api/ask", json={"question": asked, **scope}).json()
            assert foreign_places(side, mine, answer["citations"], asked) == []
            assert leaked_text(answer["answer"], side, asked) == []
