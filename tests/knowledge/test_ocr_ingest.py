"""Scanned pages through the whole desk: OCR'd at ingest, found by search, cited as OCR, shown
by the page viewer; without an engine a scan needs OCR, a mixed PDF keeps its text pages and
nothing stored is lost."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from ingest.ocr import TesseractReader
from knowledge.core.settings import Settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.jobs import run_job
from knowledge.desk.root import Desk
from knowledge.search.viewer import render_page
from tests.knowledge.test_cli import POLICY as EXPENSES
from tests.knowledge.test_cli import env, run  # noqa: F401 - env: the CLI tests' fixture
from tests.ocr_engine import needs_tesseract
from tests.pdfs import make_pdf

POLICY = [
    "Travel Policy\nEmployees may book economy class flights for trips under six hours.",
    "Hotel rooms are reimbursed up to 180 euros per night in capital cities.",
]
HOTEL_QUESTION = "How much is reimbursed for a hotel room per night in capital cities?"
HINT = "no OCR engine is installed (apt-get install tesseract-ocr)"


@pytest.fixture
def no_engine(tmp_path: Path, embedder, model) -> Desk:
    """A desk on a machine without Tesseract's data: an empty tessdata folder."""
    empty = tmp_path / "no-tessdata"
    empty.mkdir()
    settings = Settings(data_dir=tmp_path / "data", model_backend="ollama", ocr_tessdata=str(empty))
    return Desk(settings, embedder=embedder, model=model)


@needs_tesseract
def test_a_scanned_policy_is_read_found_and_cited_as_ocr(desk: Desk) -> None:
    [report] = desk.ingest([Upload("scan.pdf", make_pdf(POLICY, image_pages=[1, 2]))], "HR")

    assert report.status == "added" and report.ocr_pages == (1, 2)
    assert report.ocr_confidence is not None and report.ocr_confidence > 80
    assert report.pages_without_text == ()
    assert (
        report.reason == f"OCR read 2 page(s): 1, 2 (mean confidence {report.ocr_confidence:.0f}%)"
    )
    [hit, *_] = desk.search(HOTEL_QUESTION, ["HR"], 3)
    assert hit.chunk.page_at(hit.chunk.text.index("180 euros")) == 2
    assert hit.chunk.cited_as(2) == "p. 2 (OCR)"

    answer = desk.ask(HOTEL_QUESTION, ["HR"])
    "".join(answer)
    [citation, *_] = answer.answer.citations
    assert (citation.page, citation.chunk.cited_as(citation.page)) == (2, "p. 2 (OCR)")


@needs_tesseract
def test_a_mixed_pdf_cites_only_its_scanned_page_as_ocr(desk: Desk) -> None:
    [report] = desk.ingest([Upload("mixed.pdf", make_pdf(POLICY, image_pages=[2]))], "HR")
    assert report.ocr_pages == (2,)
    [hit] = desk.search(HOTEL_QUESTION, ["HR"], 1)
    assert hit.chunk.page_at(hit.chunk.text.index("180 euros")) == 2
    assert hit.chunk.page_at(hit.chunk.text.index("economy class")) == 1
    assert (hit.chunk.cited_as(1), hit.chunk.cited_as(2)) == ("p. 1", "p. 2 (OCR)")
    [document] = desk.store.documents(["HR"])
    assert list(document.ocr_pages) == [2]


@needs_tesseract
def test_the_page_viewer_shows_a_scanned_page(desk: Desk) -> None:
    [report] = desk.ingest([Upload("scan.pdf", make_pdf(POLICY, image_pages=[1, 2]))], "HR")
    assert report.doc_id is not None
    png = render_page(desk.store.document(report.doc_id).pdf_path, 2)
    shown = Image.open(io.BytesIO(png))
    assert "180 euros per night" in TesseractReader().read(shown).text  # the scan, not a blank


@needs_tesseract
def test_a_job_reports_each_page_read_by_ocr(desk: Desk, monkeypatch: pytest.MonkeyPatch):
    job = desk.jobs.create(Upload("scan.pdf", make_pdf(POLICY, image_pages=[1, 2])), "HR", "ann")
    seen: list[str] = []
    record = desk.jobs.progress

    def progress(job_id: str, *args: object) -> None:
        record(job_id, *args)  # type: ignore[arg-type]
        seen.append(desk.jobs.get(job_id).describe())

    monkeypatch.setattr(desk.jobs, "progress", progress)
    monkeypatch.setattr("knowledge.desk.jobs.PROGRESS_EVERY_S", 0.0)
    run_job(desk, job.job_id)
    assert "reading text (OCR) 0%, page 1 of 2" in seen
    assert "reading text (OCR) 30%, page 2 of 2" in seen
    ended = desk.jobs.get(job.job_id)
    assert ended.report is not None and ended.report.ocr_pages == (1, 2)  # through the JSON


def test_without_an_engine_a_scan_needs_ocr_and_loses_nothing(no_engine: Desk) -> None:
    no_engine.ingest([Upload("travel.pdf", make_pdf(POLICY))], "HR")
    before = no_engine.store.collection_chunks("HR")

    reports = no_engine.ingest(
        [
            Upload("scan.pdf", make_pdf(POLICY, image_pages=[1, 2])),
            Upload("travel.pdf", make_pdf(POLICY, image_pages=[1, 2])),  # a scan replacing it
        ],
        "HR",
    )

    for report in reports:
        assert report.status == "failed"
        assert report.reason == (
            f'needs OCR: "{report.file_name}" has no text layer (it looks scanned) and {HINT}.'
        )
    assert [c.id for c in no_engine.store.collection_chunks("HR")] == [c.id for c in before]


def test_without_an_engine_a_mixed_pdf_indexes_its_text_pages(no_engine: Desk) -> None:
    [report] = no_engine.ingest([Upload("mixed.pdf", make_pdf(POLICY, image_pages=[2]))], "HR")
    assert report.status == "added" and report.ocr_pages == ()
    assert report.pages_without_text == (2,)
    assert report.reason == (
        f"needs OCR: 1 page(s) without a text layer (2) are not indexed; {HINT}"
    )
    [hit] = no_engine.search("economy class flights under six hours", ["HR"], 1)
    assert (hit.chunk.page_start, hit.chunk.page_end) == (1, 1)


@needs_tesseract
def test_installing_the_engine_reads_what_was_missing_and_removing_it_keeps_it(
    no_engine: Desk,
) -> None:
    """A mixed PDF stored without OCR is read again once OCR is there; the same file uploaded
    again without an engine is unchanged, its OCR'd page kept."""
    data = make_pdf(POLICY, image_pages=[2])
    no_engine.ingest([Upload("mixed.pdf", data)], "HR")
    missing = no_engine.settings
    no_engine.settings = missing.model_copy(update={"ocr_tessdata": ""})  # installed

    [again] = no_engine.ingest([Upload("mixed.pdf", data)], "HR")
    assert (again.status, again.ocr_pages) == ("replaced", (2,))
    no_engine.settings = missing  # and gone again
    [unchanged] = no_engine.ingest([Upload("mixed.pdf", data)], "HR")
    assert unchanged.status == "unchanged"
    [hit] = no_engine.search(HOTEL_QUESTION, ["HR"], 1)
    assert hit.chunk.cited_as(2) == "p. 2 (OCR)"


@needs_tesseract
@pytest.mark.usefixtures("env")
def test_kdesk_search_and_ask_say_ocr(tmp_path: Path, capsys) -> None:
    scan = tmp_path / "expenses.pdf"
    scan.write_bytes(make_pdf(EXPENSES, image_pages=[1, 2]))
    code, out = run(capsys, "ingest", str(scan), "--json")
    assert code == 0 and out["reports"][0]["ocr_pages"] == [1, 2]

    code, out = run(capsys, "search", "hotel limit per night", "-k", "1")
    assert code == 0 and out["text"].startswith("[1] expenses.pdf p. 1 (OCR) (score ")
    code, out = run(capsys, "ask", "What is the hotel limit per night in capital cities?")
    assert code == 0 and "  [1] expenses.pdf, p. 2 (OCR)\n" in out["text"]
    code, out = run(capsys, "ask", "What is the hotel limit per night in capital cities?", "--json")
    [citation] = out["citations"]
    assert (citation["page"], citation["location"], citation["ocr"]) == (2, "p. 2 (OCR)", True)


def test_ocr_off_indexes_text_pages_and_says_so(tmp_path: Path, embedder, model) -> None:
    settings = Settings(data_dir=tmp_path / "data", model_backend="ollama", ocr="off")
    desk = Desk(settings, embedder=embedder, model=model)
    [report] = desk.ingest([Upload("mixed.pdf", make_pdf(POLICY, image_pages=[2]))], "HR")
    assert report.status == "added" and report.ocr_pages == ()
    assert report.reason == (
        "needs OCR: 1 page(s) without a text layer (2) are not indexed; OCR is off (KDESK_OCR=off)"
    )


@pytest.mark.parametrize("languages", ["", "eng deu", "eng;rm", "+eng"])
def test_ocr_languages_are_tesseract_names_joined_by_plus(languages: str) -> None:
    with pytest.raises(ValueError, match="ocr_languages"):
        Settings(ocr_languages=languages)
    assert Settings(ocr_languages="eng+deu").ocr_languages == "eng+deu"
