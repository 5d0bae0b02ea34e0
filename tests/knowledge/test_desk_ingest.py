"""Ingestion into the real store (SQLite + Chroma + the real embedding model)."""

from knowledge.desk.ingestion import Upload
from tests.pdfs import make_pdf

LEAVE = [
    "Leave Policy\n\nEmployees receive 25 days of paid annual leave each calendar year.",
    "Sick leave requires a medical certificate after three consecutive days of absence.",
    "Parental leave is 26 weeks for birth parents and four weeks for partners.",
]


def test_ingest_reports_pages_chunks_and_status(desk):
    [report] = desk.ingest([Upload("leave.pdf", make_pdf(LEAVE, title="Leave Policy"))], "HR")
    assert report.status == "added"
    assert report.pages == 3
    assert report.chunks >= 1
    assert report.pages_without_text == ()
    [doc] = desk.store.documents(["HR"])
    assert doc.file_name == "leave.pdf" and doc.title == "Leave Policy" and doc.pages == 3


def test_reingesting_the_same_file_is_a_no_op(desk):
    data = make_pdf(LEAVE)
    desk.ingest([Upload("leave.pdf", data)], "HR")
    before = desk.store.collection_chunks("HR")
    [report] = desk.ingest([Upload("leave.pdf", data)], "HR")
    assert report.status == "unchanged"
    assert [c.id for c in desk.store.collection_chunks("HR")] == [c.id for c in before]


def test_changed_file_with_same_name_replaces_old_chunks(desk):
    desk.ingest([Upload("leave.pdf", make_pdf(LEAVE))], "HR")
    changed = [*LEAVE[:2], "Parental leave is 40 weeks for birth parents."]
    [report] = desk.ingest([Upload("leave.pdf", make_pdf(changed))], "HR")
    assert report.status == "replaced"
    texts = " ".join(c.text for c in desk.store.collection_chunks("HR"))
    assert "40 weeks" in texts and "26 weeks" not in texts
    assert len(desk.store.documents(["HR"])) == 1
    hits = desk.search("How long is parental leave for birth parents?", ["HR"], 3)
    assert all("26 weeks" not in h.chunk.text for h in hits)
    assert desk.store.index.count("HR") == len(desk.store.collection_chunks("HR"))


def test_bad_files_fail_with_a_reason_and_lose_nothing(desk):
    desk.ingest([Upload("leave.pdf", make_pdf(LEAVE))], "HR")
    before = desk.store.collection_chunks("HR")
    reports = desk.ingest(
        [
            Upload("notes.pdf", b"just some text, renamed"),
            Upload("empty.pdf", b""),
            Upload("broken.pdf", make_pdf(LEAVE)[:200]),
            Upload("leave.pdf", b"PK\x03\x04 a zip file pretending to be the leave policy"),
        ],
        "HR",
    )
    assert [r.status for r in reports] == ["failed"] * 4
    assert all(r.reason for r in reports)
    assert [c.id for c in desk.store.collection_chunks("HR")] == [c.id for c in before]
    assert desk.search("annual leave days", ["HR"], 1)[0].chunk.file_name == "leave.pdf"


def test_failed_store_write_rolls_back(desk, monkeypatch):
    desk.ingest([Upload("leave.pdf", make_pdf(LEAVE))], "HR")
    before = desk.store.collection_chunks("HR")
    vectors_before = desk.store.index.count("HR")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(desk.store, "_swap_in", boom)
    [report] = desk.ingest([Upload("leave.pdf", make_pdf([*LEAVE, "A new page."]))], "HR")
    assert report.status == "failed" and "disk full" in (report.reason or "")
    assert [c.id for c in desk.store.collection_chunks("HR")] == [c.id for c in before]
    assert desk.store.index.count("HR") == vectors_before


def test_delete_document_removes_chunks_vectors_and_file(desk):
    [report] = desk.ingest([Upload("leave.pdf", make_pdf(LEAVE))], "HR")
    info = desk.store.document(report.doc_id)
    desk.store.delete_document(report.doc_id)
    assert desk.store.documents() == []
    assert desk.store.index.count("HR") == 0
    assert desk.search("annual leave", ["HR"]) == []
    from pathlib import Path

    assert not Path(info.pdf_path).exists()


def test_progress_is_reported_per_file(desk):
    events = []
    desk.ingest(
        [Upload("a.pdf", make_pdf(LEAVE)), Upload("b.pdf", b"nope")], "HR", progress=events.append
    )
    assert {e.file_name for e in events} == {"a.pdf", "b.pdf"}
    assert events[-1].stage == "done" and events[-1].file_index == 1
    assert any(e.stage == "embedding" for e in events)


def test_ingest_paths_expands_folders(desk, tmp_path):
    folder = tmp_path / "docs" / "sub"
    folder.mkdir(parents=True)
    (folder / "leave.pdf").write_bytes(make_pdf(LEAVE))
    (tmp_path / "docs" / "readme.txt").write_text("Read the leave policy first.")
    (tmp_path / "docs" / "setup.exe").write_bytes(b"MZ not a document")
    reports = desk.ingest_paths([tmp_path / "docs"], "HR")
    assert [r.file_name for r in reports] == ["readme.txt", "leave.pdf"]  # sorted by path
    assert all(r.status == "added" for r in reports)


def test_changed_chunking_settings_re_chunk_on_the_next_ingest(desk):
    data = make_pdf(LEAVE)
    desk.ingest([Upload("leave.pdf", data)], "HR")
    desk.settings.chunk_size = 300
    [report] = desk.ingest([Upload("leave.pdf", data)], "HR")
    assert report.status == "replaced"
    [again] = desk.ingest([Upload("leave.pdf", data)], "HR")
    assert again.status == "unchanged"


def test_ingest_can_prepare_the_search_indexes_for_the_next_question(desk, monkeypatch):
    events = []
    upload = Upload("a.pdf", make_pdf(["Expense claims are due within 30 days."], title="A"))
    desk.ingest([upload], "HR", events.append, prepare_search=True)
    assert (events[-1].stage, events[-1].file_name) == ("preparing search", "HR")

    def no_rebuild(collection):
        raise AssertionError("the indexes were built at upload, not at the first question")

    monkeypatch.setattr(desk.store, "collection_chunks", no_rebuild)
    [top] = desk.search("When are expense claims due?", ["HR"], 1)
    assert top.chunk.file_name == "a.pdf"
