"""Small, deterministic PDFs for tests: real text per page, titles, encryption, scans.

``make_pdf(["page one text", "page two text"])`` gives a two-page PDF whose text comes back
from any extractor on the right page. Text must be latin-1 (the built-in Helvetica font).
Long page texts are wrapped; the page grows taller instead of spilling onto a new page, so
page N of the input is always page N of the PDF.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime

from fpdf import FPDF
from fpdf.enums import Align, EncryptionMethod, XPos, YPos
from PIL import Image, ImageDraw

PAGE_WIDTH_MM = 210.0
A4_HEIGHT_MM = 297.0
MARGIN_MM = 20.0
FONT_SIZE_PT = 11
LINE_HEIGHT_MM = 5.5
EDGE_LINE_HEIGHT_MM = 8.0
FIXED_DATE = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def make_pdf(
    pages: Sequence[str],
    title: str | None = None,
    password: str | None = None,
    empty_user_password_encryption: bool = False,
    *,
    header: str | None = None,
    footer: str | None = None,
    scanned_pages: Sequence[int] = (),
    image_pages: Sequence[int] = (),
) -> bytes:
    """Build a PDF with one page per item of ``pages`` (a page may be ``""``).

    ``password`` sets a user password (the file cannot be opened without it);
    ``empty_user_password_encryption`` encrypts with AES-128 and an empty user password,
    like many SEC filings: it opens without a password. ``header`` and ``footer`` are
    printed on every page; ``{page}`` in either is replaced by the page number.
    ``scanned_pages`` (1-based) get a picture instead of text, like a scanned sheet;
    ``image_pages`` (1-based) become a picture of their own text (a scan OCR can read).
    """
    pdf = _new_pdf(title)
    for number, text in enumerate(pages, start=1):
        if number in scanned_pages:
            _add_picture_page(pdf)
            continue
        if number in image_pages:
            _add_image_of_text_page(pdf, text, number, header, footer)
            continue
        _add_text_page(pdf, text, number, header, footer)
    if password is not None:
        pdf.set_encryption(
            owner_password="owner-" + password,
            user_password=password,
            encryption_method=EncryptionMethod.AES_128,
        )
    elif empty_user_password_encryption:
        pdf.set_encryption(
            owner_password="owner-secret",
            user_password="",
            encryption_method=EncryptionMethod.AES_128,
        )
    return bytes(pdf.output())


def make_scanned_pdf(page_count: int = 2, title: str | None = None) -> bytes:
    """A PDF whose pages hold only pictures (no text layer), like an un-OCRed scan."""
    return make_pdf([""] * page_count, title=title, scanned_pages=range(1, page_count + 1))


def make_zero_page_pdf() -> bytes:
    """A syntactically valid PDF whose page tree is empty."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(out)


def _new_pdf(title: str | None) -> FPDF:
    pdf = FPDF(unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_font("Helvetica", size=FONT_SIZE_PT)
    pdf.set_creation_date(FIXED_DATE)  # the same input gives the same bytes
    if title is not None:
        pdf.set_title(title)
    return pdf


def _add_text_page(
    pdf: FPDF, text: str, number: int, header: str | None, footer: str | None
) -> None:
    body_width = PAGE_WIDTH_MM - 2 * MARGIN_MM
    line_count = _wrapped_line_count(body_width, text) if text else 0
    body_height = line_count * LINE_HEIGHT_MM
    height = max(A4_HEIGHT_MM, body_height + 2 * MARGIN_MM + 2 * EDGE_LINE_HEIGHT_MM + 10)
    pdf.add_page(format=(PAGE_WIDTH_MM, height))
    pdf.set_xy(MARGIN_MM, MARGIN_MM / 2)
    if header is not None:
        _edge_line(pdf, header.format(page=number))
    pdf.set_xy(MARGIN_MM, MARGIN_MM + EDGE_LINE_HEIGHT_MM)
    if text:
        pdf.multi_cell(
            body_width,
            LINE_HEIGHT_MM,
            text,
            align=Align.L,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    if footer is not None:
        pdf.set_xy(MARGIN_MM, height - MARGIN_MM / 2 - EDGE_LINE_HEIGHT_MM)
        _edge_line(pdf, footer.format(page=number))


def _wrapped_line_count(width: float, text: str) -> int:
    scratch = _new_pdf(None)  # measuring needs a page; the real one is not added yet
    scratch.add_page()
    lines = scratch.multi_cell(width, LINE_HEIGHT_MM, text, dry_run=True, output="LINES")
    assert isinstance(lines, list)
    return len(lines)


def _edge_line(pdf: FPDF, text: str) -> None:
    pdf.cell(0, EDGE_LINE_HEIGHT_MM, text, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _add_picture_page(pdf: FPDF) -> None:
    pdf.add_page(format=(PAGE_WIDTH_MM, A4_HEIGHT_MM))
    pdf.image(_scan_like_image(), x=MARGIN_MM, y=MARGIN_MM, w=PAGE_WIDTH_MM - 2 * MARGIN_MM)
    pdf.set_draw_color(40, 40, 40)
    pdf.rect(MARGIN_MM / 2, MARGIN_MM / 2, PAGE_WIDTH_MM - MARGIN_MM, A4_HEIGHT_MM - MARGIN_MM)


SCAN_DPI = 200


def _add_image_of_text_page(
    pdf: FPDF, text: str, number: int, header: str | None, footer: str | None
) -> None:
    """The page as printed, then scanned: its text becomes pixels at SCAN_DPI."""
    import pypdfium2 as pdfium

    printed = _new_pdf(None)
    _add_text_page(printed, text, number, header, footer)
    document = pdfium.PdfDocument(bytes(printed.output()))
    try:
        image = document[0].render(scale=SCAN_DPI / 72, grayscale=True).to_pil()
        width_pt, height_pt = document[0].get_size()
    finally:
        document.close()
    width, height = width_pt * 25.4 / 72, height_pt * 25.4 / 72
    pdf.add_page(format=(width, height))
    pdf.image(image, x=0, y=0, w=width, h=height)


def _scan_like_image() -> Image.Image:
    """Grey 'lines of text' on white: pixels only, nothing an extractor can read."""
    image = Image.new("L", (340, 440), color=250)
    draw = ImageDraw.Draw(image)
    for row in range(20, 420, 18):
        draw.rectangle((20, row, 320 - (row * 7) % 90, row + 8), fill=60)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Image.open(io.BytesIO(buffer.getvalue()))
