"""The built-in tools: a document summarised with cited passages (through the model, or its
key sentences), documents listed by filter, clause records looked up - each seeing only what
the calling user may."""

from __future__ import annotations

import re

from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.tools.base import ToolCall
from knowledge.tools.builtin import key_sentences, summarise
from tests.conftest import ScriptedChatModel
from tests.contract_samples import contract_pdf


def call(desk: Desk, user: str, name: str, **arguments: object):
    return desk.for_user(user).tools().call(ToolCall(name, arguments))


def copy_first_sentence(messages) -> str:
    """A model that summarises by quoting each group's first passage, cited as it was shown."""
    first = re.search(r"\[(\d+)\] (.+?[.!?])\s", messages[-1]["content"], re.S)
    assert first is not None
    return f"{' '.join(first.group(2).split())} [{first.group(1)}]"


def test_a_summary_cites_the_documents_own_chunks_through_the_model(office: Desk):
    office._model = ScriptedChatModel(copy_first_sentence)
    outcome = call(office, "hanna", "summarise_document", document="leave.pdf")
    assert outcome.outcome == "ok", outcome.message
    result = outcome.result
    assert result is not None and result.data["method"] == "model"
    chunks = office.for_user("hanna").document_chunks(result.data["doc_id"])
    assert result.citations and set(result.citations) <= set(chunks)
    assert "[1]" in result.text and "25 working days" in result.text
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", result.text)}
    assert numbers == set(range(1, len(result.citations) + 1))


def test_an_unsupported_model_summary_falls_back_to_cited_key_sentences(office: Desk):
    office._model = ScriptedChatModel("The company was founded on the moon in 1802 [1].")
    outcome = call(office, "hanna", "summarise_document", document="Leave Policy")
    assert outcome.result is not None and outcome.result.data["method"] == "extractive"
    assert "moon" not in outcome.result.text
    for n, chunk in enumerate(outcome.result.citations, start=1):
        assert f"[{n}]" in outcome.result.text and chunk.file_name == "leave.pdf"


def test_the_embedded_model_gets_the_extractive_summary_without_being_called(office: Desk):
    embedded = ScriptedChatModel("anything", name="embedded · smollm2-135m")
    chunks = office.for_user("hanna").document_chunks(office.store.documents(["HR"])[0].doc_id)
    summary, method = summarise(chunks, "", embedded)
    assert method == "extractive" and embedded.calls == []
    assert summary.cited and summary.text == key_sentences(chunks).text
    assert "[" in summary.text


def test_list_documents_filters_by_collection_tag_and_title_words(office: Desk):
    office.set_tags(office.store.documents(["HR"])[0].doc_id, ["policy"])
    assert "leave.pdf" in call(office, "root", "list_documents", tag="policy").result.text
    assert call(office, "root", "list_documents", tag="nope").result.data == []
    rows = call(office, "root", "list_documents", title="settlement memo").result.data
    assert [r["file_name"] for r in rows] == ["memo.pdf"]
    rows = call(office, "root", "list_documents", collection="hr").result.data
    assert [r["file_name"] for r in rows] == ["leave.pdf"]


def test_tools_find_nothing_in_collections_the_user_may_not_search(office: Desk):
    rows = call(office, "hanna", "list_documents").result.data
    assert [r["file_name"] for r in rows] == ["leave.pdf"]
    assert call(office, "hanna", "list_documents", collection="Legal").result.data == []
    outcome = call(office, "hanna", "summarise_document", document="memo.pdf")
    assert outcome.outcome == "failed" and outcome.result is None
    assert outcome.message == "No document 'memo.pdf' among those you may read."
    assert "Initech" not in outcome.message


def test_clause_records_by_category_document_and_status_within_the_users_collections(
    office: Desk,
):
    office.ingest([Upload("supply.pdf", contract_pdf())], "Legal", contracts=True)
    everything = call(office, "root", "clause_records").result.data
    assert everything and {r["file_name"] for r in everything} == {"supply.pdf"}
    category = everything[0]["category"]
    some = call(office, "root", "clause_records", category=category.upper(), document="supply.pdf")
    assert some.result.data and {r["category"] for r in some.result.data} == {category}
    assert call(office, "root", "clause_records", status="confirmed").result.data == []
    assert call(office, "hanna", "clause_records").result.data == []  # Legal is not hers
