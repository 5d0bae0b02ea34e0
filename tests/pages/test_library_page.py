"""The Knowledge page through AppTest: upload, report, documents table, delete."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from knowledge.core.settings import load_settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.fake_ollama import FakeOllama
from tests.pages.conftest import TESTER, Configure, finish_jobs, ingest_handbook, open_page
from tests.pages.support import FILE_NAME, HANDBOOK, TITLE, handbook_pdf
from tests.pdfs import make_pdf

NEW = "➕ New collection…"
PDF = "application/pdf"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def knowledge(data_dir: Path, ollama: FakeOllama, configure: Configure):
    """A function that opens the Knowledge page over ``data_dir`` (after any set-up)."""

    def open_it() -> AppTest:
        configure(data_dir, ollama.url)
        at = open_page("pages/library.py").run()
        assert not at.exception
        return at

    return open_it


def stored(data_dir: Path) -> Desk:
    return Desk(load_settings(data_dir=data_dir, model_backend="ollama"))


def upload(
    at: AppTest,
    files: list[tuple[str, bytes]],
    collection: str,
    tags: str = "",
    *,
    wait: bool = True,
) -> AppTest:
    picker = at.selectbox(key="collection_choice")
    if collection in picker.options:
        picker.select(collection)
    else:
        picker.select(NEW)
        at.text_input(key="new_collection").input(collection)
    at.text_input(key="upload_tags").input(tags)
    at.file_uploader(key="files").set_value([(name, data, PDF) for name, data in files])
    at.form_submit_button[0].click().run()
    assert not at.exception
    return finish_jobs(at) if wait else at


def table(at: AppTest, index: int) -> dict[str, list]:
    return at.dataframe[index].value.to_dict(orient="list")


def test_empty_knowledge_base(knowledge):
    at = knowledge()
    assert [i.value for i in at.info] == ["No documents yet."]
    assert at.selectbox(key="collection_choice").options == [NEW]
    assert not at.dataframe and not at.multiselect
    assert [s.value for s in at.subheader] == ["Documents"], "no report yet"


def test_upload_into_a_new_collection_reports_each_file_and_lists_the_document(
    knowledge, data_dir: Path
):
    files = [(FILE_NAME, handbook_pdf()), ("notes.pdf", b"just some notes")]
    at = upload(knowledge(), files, "HR", wait=False)
    assert [s.value for s in at.success] == ["Queued 2 file(s) for HR."], "returns at once"
    at = finish_jobs(at)

    assert [w.value for w in at.warning] == ["1 indexed, 1 failed (latest 2 uploads)"]
    report = table(at, 0)  # newest first
    assert report["file"] == ["notes.pdf", FILE_NAME]
    assert report["status"] == ["failed", "added"]
    assert report["pages"] == [0, 3] and report["chunks"] == [0, 3]
    assert report["note"][1] == "" and "not a PDF" in report["note"][0]

    documents = table(at, 1)
    assert documents["collection"] == ["HR"] and documents["file"] == [FILE_NAME]
    assert documents["title"] == [TITLE]
    assert documents["pages"] == [3] and documents["chunks"] == [3]
    assert "HR" in at.selectbox(key="collection_choice").options, "the new collection is listed"
    assert at.multiselect(key="delete_choice").options == [f"HR / {FILE_NAME}"]

    [doc] = stored(data_dir).store.documents(["HR"])
    assert (doc.file_name, doc.pages, doc.chunks) == (FILE_NAME, 3, 3)

    # the same file again, into the now existing collection: nothing changes
    upload(at, [(FILE_NAME, handbook_pdf())], "HR")
    assert table(at, 0)["status"] == ["unchanged", "failed", "added"]
    assert len(stored(data_dir).store.documents()) == 1

    # the same file under another name: a duplicate of the stored one, not indexed again
    upload(at, [("copy.pdf", handbook_pdf())], "HR")
    assert [w.value for w in at.warning] == [
        "2 indexed, 1 duplicate(s) not indexed again, 1 failed (latest 4 uploads)"
    ]
    assert table(at, 0)["status"][0] == "duplicate"
    assert table(at, 0)["note"][0] == f"duplicate of {FILE_NAME} in HR (same file)"
    assert len(stored(data_dir).store.documents()) == 1


def test_upload_needs_a_collection_name_and_a_file(knowledge, data_dir: Path):
    at = knowledge()
    upload(at, [(FILE_NAME, handbook_pdf())], "  ", wait=False)
    assert [e.value for e in at.error] == ["Give the new collection a name."]

    upload(at, [], "HR", wait=False)
    assert [e.value for e in at.error] == ["Choose at least one file."]
    assert stored(data_dir).store.documents() == []


def test_only_failed_files_is_an_error(knowledge):
    at = upload(knowledge(), [("scan.pdf", b"")], "HR")
    assert [w.value for w in at.warning] == ["0 indexed, 1 failed (latest 1 uploads)"]
    assert table(at, 0)["status"] == ["failed"]
    assert [i.value for i in at.info] == ["No documents yet."]


def test_delete_needs_a_choice_and_a_confirmation_and_removes_the_document(
    knowledge, data_dir: Path
):
    ingest_handbook(data_dir, "HR")
    ingest_handbook(data_dir, "Legal")
    at = knowledge()
    assert table(at, 0)["collection"] == ["HR", "Legal"]
    delete = at.button[-1]
    assert delete.label == "Delete" and delete.disabled

    at.multiselect(key="delete_choice").select(f"HR / {FILE_NAME}").run()
    assert at.button[-1].disabled, "not without the confirmation"
    at.checkbox(key="confirm").check().run()
    assert not at.button[-1].disabled
    at.button[-1].click().run()
    assert not at.exception

    assert [s.value for s in at.success] == ["Deleted 1 document(s)."]
    assert table(at, 0)["collection"] == ["Legal"]
    assert at.multiselect(key="delete_choice").value == []
    assert at.checkbox(key="confirm").value is False, "the next deletion asks again"
    assert at.button[-1].disabled

    desk = stored(data_dir)
    assert [d.collection for d in desk.store.documents()] == ["Legal"]
    assert desk.store.collection_chunks("HR") == []
    assert desk.store.index.count("HR") == 0
    assert desk.store.index.count("Legal") == 3

    at.multiselect(key="delete_choice").select(f"Legal / {FILE_NAME}").run()
    at.checkbox(key="confirm").check().run()
    at.button[-1].click().run()
    assert [i.value for i in at.info] == ["No documents yet."]
    assert stored(data_dir).store.documents() == []


def test_tags_given_at_upload_are_shown_and_kept_when_the_file_is_replaced(
    knowledge, data_dir: Path
):
    at = upload(knowledge(), [(FILE_NAME, handbook_pdf())], "HR", tags=" Policy, HR ,policy,")
    assert [s.value for s in at.success] == ["1 indexed, 0 failed (latest 1 uploads)"]
    assert table(at, 0)["tags"] == ["policy, hr"], "the report"
    assert table(at, 1)["tags"] == ["policy, hr"], "the documents table"
    [doc] = stored(data_dir).store.documents()
    assert doc.tags == ("policy", "hr")

    upload(at, [(FILE_NAME, make_pdf(HANDBOOK[:2], title=TITLE))], "HR")  # no tags typed
    assert table(at, 0)["status"][0] == "replaced"
    assert table(at, 1)["tags"] == ["policy, hr"]
    upload(at, [(FILE_NAME, handbook_pdf())], "HR", tags="handbook")
    assert table(at, 0)["status"][0] == "replaced" and table(at, 1)["tags"] == ["handbook"]
    [doc] = stored(data_dir).store.documents()
    assert doc.tags == ("handbook",) and doc.pages == 3


def test_a_bad_tag_stops_the_upload_with_a_clear_message(knowledge, data_dir: Path):
    at = upload(
        knowledge(), [(FILE_NAME, handbook_pdf())], "HR", tags="policy, " + "x" * 41, wait=False
    )
    [error] = at.error
    assert "limited to 40 characters" in error.value
    assert stored(data_dir).store.documents() == []
    assert [i.value for i in at.info] == ["No documents yet."]


def test_uploads_in_progress_are_shown_to_their_owner_in_every_new_session(
    knowledge, data_dir: Path
):
    at = knowledge()
    desk = stored(data_dir)
    waiting = desk.jobs.create(Upload(FILE_NAME, handbook_pdf()), "HR", TESTER)  # no runner has it
    desk.jobs.create(Upload("other.pdf", handbook_pdf()), "HR", "somebody else")

    for session in (at.run(), open_page("pages/library.py").run()):  # a reload, a new sign-in
        [bar] = session.get("progress")
        assert bar.proto.text == f"HR / {FILE_NAME}: waiting for a worker"
        assert bar.proto.value == 0
    assert desk.jobs.get(waiting.job_id).state == "queued"


def test_the_uploader_takes_office_files(knowledge, data_dir: Path):
    from tests.office_files import make_docx

    at = knowledge()
    accepted = at.file_uploader(key="files").proto.type
    assert {".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".html", ".md", ".txt"} <= set(accepted)
    handbook = make_docx(
        [
            ("h1", "Leave"),
            ("p", "Employees receive 25 days of paid annual leave."),
            ("h1", "Travel"),
            ("p", "Trains are booked in second class."),
        ]
    )
    at = upload(at, [("handbook.docx", handbook), ("old.doc", b"\xd0\xcf\x11\xe0")], "HR")
    report = table(at, 0)
    assert report["status"] == ["failed", "added"]
    assert "save it as .docx" in report["note"][0]
    assert table(at, 1)["file"] == ["handbook.docx"] and table(at, 1)["pages"] == [2]
    [doc] = stored(data_dir).store.documents(["HR"])
    assert doc.page_labels == {1: "Leave", 2: "Travel"}
    assert Path(doc.pdf_path).suffix == ".docx" and Path(doc.pdf_path).read_bytes() == handbook
