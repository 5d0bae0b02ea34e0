"""Duplicates (issue 14): a stored document's content under another file name is reported as
a duplicate and not indexed twice; search never shows two copies of one passage."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.core import metrics
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.search.duplicates import NEAR_JACCARD, Duplicate, jaccard, shingles
from tests.knowledge.test_jobs import wait_until_ended
from tests.pdfs import make_pdf

TOPICS = ["annual leave", "sick leave", "parental leave", "remote work", "expense claims"]
TOPICS += ["business travel", "laptops and phones", "training budgets"]


def policy_page(n: int, topic: str) -> str:
    rules = " ".join(
        f"Rule {n}.{i}: the {topic} policy requires form {n * 10 + i} to be approved by the "
        f"manager within {i + 2} working days of the request."
        for i in range(8)
    )
    return f"{topic.title()}\n\n{rules}"


HANDBOOK = [policy_page(n, t) for n, t in enumerate(TOPICS)]
ORIGINAL = "Rule 3.4: the remote work policy requires form 34"
CHANGED = "Rule 3.4: anyone working remotely must fill in form 34"  # no new names or figures
EDITED = [page.replace(ORIGINAL, CHANGED) for page in HANDBOOK]
# a figure changed: a new version of the policy, not a copy
AMENDED = [HANDBOOK[0], HANDBOOK[1], HANDBOOK[2].replace("within 3 working", "within 120 working")]
AMENDED += HANDBOOK[3:]
# another handbook in the same house style: the same first page, header and footer
OTHER = [HANDBOOK[0], *(policy_page(n, t) for n, t in enumerate(["pensions", "canteen", "gym"]))]
STYLE = {"header": "ACME Corp - internal", "footer": "Page {page} - confidential"}


def counts(desk: Desk, collection: str) -> tuple[int, int, int, int]:
    files = len(list(Path(desk.store.files_dir).glob("*.pdf")))
    return (
        len(desk.store.documents([collection])),
        len(desk.store.collection_chunks(collection)),
        desk.store.index.count(collection),
        files,
    )


@pytest.fixture
def handbook(desk: Desk) -> str:
    [report] = desk.ingest([Upload("handbook.pdf", make_pdf(HANDBOOK, title="Handbook"))], "HR")
    assert report.status == "added" and report.doc_id
    return report.doc_id


def test_the_same_file_under_another_name_is_a_duplicate_and_stored_once(desk, handbook):
    before = counts(desk, "HR")
    seen = metrics.INGESTED_FILES.labels("duplicate")._value.get()
    [report] = desk.ingest([Upload("copy.pdf", make_pdf(HANDBOOK, title="Handbook"))], "HR")
    assert report.status == "duplicate" and report.doc_id == handbook
    assert report.reason == "duplicate of handbook.pdf in HR (same file)"
    assert report.chunks == 0 and report.pages == len(HANDBOOK)
    assert counts(desk, "HR") == before
    assert metrics.INGESTED_FILES.labels("duplicate")._value.get() == seen + 1


def test_these_are_contracts_on_a_duplicate_applies_to_the_stored_document(desk, handbook):
    assert desk.contracts.contracts() == []
    [report] = desk.ingest([Upload("signed.pdf", make_pdf(EDITED))], "HR", contracts=True)
    assert report.status == "duplicate"
    assert [(c.doc_id, c.detected_by) for c in desk.contracts.contracts()] == [(handbook, "upload")]


def test_the_same_text_in_other_bytes_is_a_duplicate(desk, handbook):
    before = counts(desk, "HR")
    regenerated = make_pdf(HANDBOOK, title="Employee Handbook (exported again)")
    assert regenerated != make_pdf(HANDBOOK, title="Handbook")
    [report] = desk.ingest([Upload("handbook-2024.pdf", regenerated)], "HR")
    assert (report.status, report.doc_id) == ("duplicate", handbook)
    assert report.reason == "duplicate of handbook.pdf in HR (same text)"
    assert counts(desk, "HR") == before


def test_a_near_identical_copy_is_a_duplicate(desk, handbook):
    before = counts(desk, "HR")
    [report] = desk.ingest([Upload("handbook-edited.pdf", make_pdf(EDITED))], "HR")
    assert (report.status, report.doc_id) == ("duplicate", handbook)
    assert report.reason and report.reason.startswith(
        "duplicate of handbook.pdf in HR (near-identical text, "
    )
    assert counts(desk, "HR") == before


def test_a_copy_with_another_figure_or_other_parties_is_indexed(desk, handbook):
    from tests.contract_samples import contract_pdf

    assert AMENDED != HANDBOOK
    [amended] = desk.ingest([Upload("handbook-amended.pdf", make_pdf(AMENDED))], "HR")
    assert amended.status == "added"
    desk.ingest([Upload("acme.pdf", contract_pdf(law="New York"))], "Contracts")
    other = contract_pdf(buyer="Globex Corporation", law="California")  # shingles: 0.90
    [globex] = desk.ingest([Upload("globex.pdf", other)], "Contracts")
    assert globex.status == "added"


def test_shingle_similarity_separates_an_edit_from_a_house_style():
    def text(pages: list[str]) -> set[int]:
        return shingles(pages)

    assert jaccard(text(HANDBOOK), text(EDITED)) >= NEAR_JACCARD
    assert jaccard(text(HANDBOOK), text(OTHER)) < 0.5
    assert jaccard(set(), set()) == 1.0 and shingles(["Two words"]) == shingles(["two, WORDS"])


def test_the_reason_names_the_stored_document_and_never_rounds_up_to_100(desk, handbook):
    stored = desk.store.document(handbook)
    near = Duplicate(stored, "near-identical text", 0.9996)
    assert near.reason() == "duplicate of handbook.pdf in HR (near-identical text, 99% similar)"


def test_a_different_document_sharing_boilerplate_is_indexed(desk):
    desk.ingest([Upload("handbook.pdf", make_pdf(HANDBOOK, **STYLE))], "HR")
    [report] = desk.ingest([Upload("benefits.pdf", make_pdf(OTHER, **STYLE))], "HR")
    assert report.status == "added" and report.chunks >= 1
    assert len(desk.store.documents(["HR"])) == 2


def test_scans_without_text_are_not_duplicates_of_each_other(desk):
    from tests.pdfs import make_scanned_pdf

    first = desk.ingest([Upload("scan-1.pdf", make_scanned_pdf(2, title="one"))], "HR")
    second = desk.ingest([Upload("scan-2.pdf", make_scanned_pdf(3, title="two"))], "HR")
    assert first[0].status != "duplicate" and second[0].status != "duplicate"


def test_the_same_name_keeps_unchanged_and_replaced(desk, handbook):
    desk.ingest([Upload("benefits.pdf", make_pdf(OTHER))], "HR")
    [again] = desk.ingest([Upload("handbook.pdf", make_pdf(HANDBOOK, title="Handbook"))], "HR")
    assert (again.status, again.doc_id) == ("unchanged", handbook)
    # a file replaced under its own name is replaced, even by another document's content
    [replaced] = desk.ingest([Upload("benefits.pdf", make_pdf(HANDBOOK))], "HR")
    assert replaced.status == "replaced"


def test_a_copy_in_another_collection_is_indexed_there_and_found_once(desk, handbook):
    [there] = desk.ingest([Upload("copy.pdf", make_pdf(HANDBOOK, title="Handbook"))], "Managers")
    assert there.status == "added" and there.doc_id != handbook
    hits = desk.search("Who approves remote work requests and how fast?", ["HR", "Managers"], 10)
    texts = [" ".join(h.chunk.text.split()) for h in hits]
    assert len(texts) == len(set(texts)) and len(hits) >= 5
    assert desk.search("remote work form", ["Managers"], 3)  # its own scope finds it


def test_search_shows_one_copy_of_documents_stored_twice(desk, monkeypatch):
    import knowledge.desk.ingestion as ingestion

    # as stored before duplicates were checked: two copies in one collection
    monkeypatch.setattr(ingestion, "find_duplicate", lambda *args: None)
    for name in ("handbook.pdf", "copy.pdf"):
        [report] = desk.ingest([Upload(name, make_pdf(HANDBOOK))], "HR")
        assert report.status == "added"
    question = "How many working days does the manager have to approve parental leave?"
    vector = desk.embedder.embed_query(question)
    raw = desk.store.index.query("HR", vector, 40, None)
    raw_texts = [c.text for c in desk.store.chunks([i for i, _ in raw]).values()]
    assert len(raw_texts) > len(set(raw_texts))  # the index holds both copies
    hits = desk.search(question, ["HR"], 10)
    texts = [h.chunk.text for h in hits]
    assert len(hits) >= 5 and len(texts) == len(set(texts))


def test_a_duplicate_upload_is_a_done_job_and_kdesk_ingest_prints_it(
    desk: Desk,
    handbook: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    [job] = desk.submit([Upload("copy.pdf", make_pdf(HANDBOOK, title="Handbook"))], "HR")
    ended = wait_until_ended(desk, job.job_id)
    assert ended.state == "done" and ended.report and ended.report.status == "duplicate"
    assert ended.describe() == "duplicate: duplicate of handbook.pdf in HR (same file)"

    from knowledge.cli import common
    from knowledge.cli.main import main

    monkeypatch.setattr(common, "open_desk", lambda: desk)
    (tmp_path / "again.pdf").write_bytes(make_pdf(EDITED))
    assert main(["ingest", str(tmp_path / "again.pdf"), "--collection", "HR"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("duplicate again.pdf (8 pages, 0 chunks, ")
    assert "duplicate of handbook.pdf in HR (near-identical text" in out
