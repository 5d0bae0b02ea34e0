"""OCR of pages without a text layer: Tesseract reads pages rendered from known text, only
those pages are read, and without an engine a scan says it needs OCR and how to get it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ingest.ocr import (
    OcrOptions,
    OcrStep,
    PageText,
    TesseractReader,
    joined_paragraphs,
    ocr_options,
)
from ingest.pdf import NeedsOcrError, NoTextError, parse_pdf
from tests.ocr_engine import needs_tesseract
from tests.pdfs import make_pdf

POLICY = [
    "Travel Policy\nEmployees may book economy class flights for trips under six hours.",
    "Hotel rooms are reimbursed up to 180 euros per night in capital cities.",
    "Meals are covered up to 45 euros per day with receipts.",
]


def _words(text: str) -> str:
    return " ".join(text.split())


class CountingReader:
    """A reader that records which images it was given; it reads nothing."""

    name = "counting"

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def read(self, image: Image.Image) -> PageText:
        self.sizes.append(image.size)
        return PageText("", 0.0)


@pytest.fixture(scope="module")
def tesseract() -> OcrOptions:
    return OcrOptions(TesseractReader("eng"), dpi=300)


@needs_tesseract
def test_scanned_pages_are_read_with_their_confidence(tesseract: OcrOptions) -> None:
    data = make_pdf(POLICY, image_pages=[1, 2, 3])
    assert parse_pdf(data, "scan.pdf", require_text=False).pages_without_text == (1, 2, 3)

    parsed = parse_pdf(data, "scan.pdf", ocr=tesseract)

    for page, sentence in zip(parsed.pages, POLICY, strict=True):
        assert _words(sentence.splitlines()[-1]) in _words(page.text)
        assert page.ocr_confidence is not None and 80 < page.ocr_confidence <= 100
    assert sorted(parsed.ocr_pages) == [1, 2, 3]
    assert parsed.pages_without_text == ()
    assert parsed.title == "Travel Policy"  # the first line of the OCR'd text


@needs_tesseract
def test_a_mixed_pdf_reads_only_its_scanned_page(tesseract: OcrOptions) -> None:
    data = make_pdf(POLICY, image_pages=[2])
    without = parse_pdf(data, "mixed.pdf")

    parsed = parse_pdf(data, "mixed.pdf", ocr=tesseract)

    assert list(parsed.ocr_pages) == [2]
    assert "180 euros per night" in _words(parsed.pages[1].text)
    assert [parsed.pages[0], parsed.pages[2]] == [without.pages[0], without.pages[2]]


def test_a_text_pdf_is_never_rendered_for_ocr() -> None:
    reader = CountingReader()
    data = make_pdf(POLICY)
    parsed = parse_pdf(data, "text.pdf", ocr=OcrOptions(reader))
    assert reader.sizes == []
    assert parsed == parse_pdf(data, "text.pdf")


def test_each_page_to_read_is_announced_and_rendered_at_the_dpi() -> None:
    reader = CountingReader()
    steps: list[OcrStep] = []
    data = make_pdf(["Typed page.", "", ""], image_pages=[2], scanned_pages=[3])

    parsed = parse_pdf(data, "m.pdf", ocr=OcrOptions(reader, dpi=100), progress=steps.append)

    assert steps == [OcrStep(2, 0, 2, 3), OcrStep(3, 1, 2, 3)]
    assert reader.sizes == [(827, 1170)] * 2  # A4 (210 x 297 mm) at 100 dpi, rounded up
    assert parsed.pages_without_text == (2, 3)  # the reader found nothing


def test_without_an_engine_a_scan_needs_ocr_and_says_how(tmp_path: Path) -> None:
    missing = ocr_options(True, "eng", 300, tessdata=str(tmp_path))
    assert missing.reader is None
    assert missing.unavailable == "no OCR engine is installed (apt-get install tesseract-ocr)"

    with pytest.raises(NeedsOcrError) as caught:
        parse_pdf(make_pdf(POLICY, image_pages=[1, 2, 3]), "scan.pdf", ocr=missing)
    assert str(caught.value) == (
        'needs OCR: "scan.pdf" has no text layer (it looks scanned) and no OCR engine is '
        "installed (apt-get install tesseract-ocr)."
    )
    mixed = parse_pdf(make_pdf(POLICY, image_pages=[2]), "mixed.pdf", ocr=missing)
    assert mixed.pages_without_text == (2,) and "180 euros" not in mixed.pages[1].text
    assert _words(mixed.pages[0].text).endswith("under six hours.")


def test_ocr_off_says_so() -> None:
    off = ocr_options(False, "eng", 300)
    with pytest.raises(NeedsOcrError, match=r"needs OCR: .*OCR is off \(KDESK_OCR=off\)"):
        parse_pdf(make_pdf(POLICY[:1], image_pages=[1]), "scan.pdf", ocr=off)


@needs_tesseract
def test_a_missing_language_names_its_package() -> None:
    options = ocr_options(True, "eng+xyz", 300)
    assert options.reader is None
    assert options.unavailable == (
        "the OCR language data for eng+xyz is not installed "
        "(apt-get install tesseract-ocr-eng tesseract-ocr-xyz)"
    )


@needs_tesseract
def test_blank_pages_read_by_ocr_are_still_no_text(tesseract: OcrOptions) -> None:
    with pytest.raises(NoTextError, match=r'"blank\.pdf" has no text: OCR found no words'):
        parse_pdf(make_pdf(["", ""]), "blank.pdf", ocr=tesseract)


@needs_tesseract
def test_running_headers_and_footers_of_scanned_pages_are_removed(
    tesseract: OcrOptions,
) -> None:
    bodies = [
        "Employees may book economy class flights for trips under six hours.",
        "Hotel rooms are reimbursed up to 180 euros per night in capital cities.",
        "Meals are covered up to 45 euros per day with receipts.",
        "Taxis are reimbursed when no public transport runs after ten at night.",
    ]
    style = {"header": "Northwind Traders - Travel Policy", "footer": "Page {page} of 4"}
    parsed = parse_pdf(make_pdf(bodies, image_pages=[2, 3, 4], **style), "s.pdf", ocr=tesseract)
    assert list(parsed.ocr_pages) == [2, 3, 4]
    for page, body in zip(parsed.pages, bodies, strict=True):
        assert _words(page.text) == body


@needs_tesseract
def test_a_blank_page_of_a_text_pdf_is_not_counted_as_ocr(tesseract: OcrOptions) -> None:
    parsed = parse_pdf(make_pdf(["Typed first page.", ""]), "blank-end.pdf", ocr=tesseract)
    assert parsed.ocr_pages == {} and parsed.pages_without_text == (2,)


def test_a_paragraph_broken_inside_a_sentence_is_joined() -> None:
    read = "Hotel costs are reimbursed\n\nup to 140 euros per night.\n\nMeals are covered."
    assert joined_paragraphs(read) == (
        "Hotel costs are reimbursed\nup to 140 euros per night.\n\nMeals are covered."
    )


@needs_tesseract
def test_a_scanned_paragraph_stays_one_paragraph(tesseract: OcrOptions) -> None:
    from tests.pages.support import HANDBOOK

    parsed = parse_pdf(make_pdf(HANDBOOK, image_pages=[3]), "h.pdf", ocr=tesseract)
    assert parsed.pages[2].text == parse_pdf(make_pdf(HANDBOOK), "h.pdf").pages[2].text
