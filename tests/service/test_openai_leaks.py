"""The leak test through the OpenAI-compatible API: two keys of two users with disjoint
collections ask the generated questions (many naming the other side's documents), streamed
and not; no answer's text, citation or prompt holds anything of the other side. The
counter-check: a key of the user holding both roles finds what the questions name."""

from __future__ import annotations

from typing import Any

from openai import OpenAI

from tests.leaks import BOTH, SIDES, Side, leaked_text, other, probe, questions_for
from tests.pages.support import sources_and_question
from tests.service.conftest import Served


def client(served: Served, user: str) -> OpenAI:
    return OpenAI(base_url=served.url + "/v1", api_key=served.key(user), max_retries=0)


def answered(openai_client: OpenAI, question: str, *, stream: bool, model: str = "kdesk"):
    """The answer's text and citations, read from a stream's chunks or the completion."""
    messages: Any = [{"role": "user", "content": question}]
    if not stream:
        completion = openai_client.chat.completions.create(model=model, messages=messages)
        return completion.choices[0].message.content, completion.citations
    events = openai_client.chat.completions.create(model=model, messages=messages, stream=True)
    chunks = list(events)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks[-1].citations


def foreign(side: Side, mine: set[str], question: str, text: str, citations: list) -> list[str]:
    found = [
        f"{question!r} cites {c['collection']}/{c['document']}"
        for c in citations
        if c["doc_id"] not in mine or c["collection"] not in side.collections
    ]
    shown = " ".join([text, *(c["passage"] for c in citations)])
    return found + [f"{question!r}: text {t}" for t in leaked_text(shown, side, question)]


def test_answers_through_the_api_never_hold_the_other_side(served: Served):
    checked = 0
    for side in SIDES:
        api = client(served, side.user)
        mine = served.doc_ids[side.user]
        before = len(served.ollama.chats)
        leaks: list[str] = []
        for i, q in enumerate(questions_for(side)[::4]):
            text, citations = answered(api, q.text, stream=i % 2 == 1)
            leaks += foreign(side, mine, q.text, text, citations)
            checked += 1
        for chat in served.ollama.chats[before:]:  # what the model was shown
            sources, question = sources_and_question(chat["messages"])
            for source in sources.values():
                leaks += [f"{question!r}: prompt {t}" for t in leaked_text(source, side, question)]
        assert leaks == [], leaks[:10]
    assert checked >= 100


def test_the_user_holding_both_roles_finds_what_the_questions_name(served: Served):
    """The counter-check: the office is not empty for the API, each side's documents are
    cited when asked in that side's persona."""
    api = client(served, BOTH)
    for side in SIDES:
        for doc in other(side).docs:
            model = f"kdesk:{other(side).role}"
            text, citations = answered(api, probe(doc), stream=False, model=model)
            assert doc.file_name in {c["document"] for c in citations}, (probe(doc), text)
