"""PDF bytes -> per-page text, with a specific error for every kind of bad file."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal

from ingest.document import DocumentError, Page, ParsedDocument
from ingest.ocr import OcrOptions, OcrStep
from ingest.pdf_text import choose_title, normalise_page_text, remove_running_lines

if TYPE_CHECKING:
    from PIL import Image

Engine = Literal["pdfium", "pypdf"]


class PdfError(DocumentError):
    """A file that cannot be read as a PDF with text; ``str(err)`` is shown to users."""


class NotAPdfError(PdfError):
    reason = "not-a-pdf"


class EncryptedPdfError(PdfError):
    reason = "password-protected"


class CorruptPdfError(PdfError):
    reason = "corrupt"


class EmptyPdfError(PdfError):
    reason = "empty"


class NoTextError(PdfError):
    """Every page is empty, or an image (a scan) in which OCR found no words."""

    reason = "no-text"


class NeedsOcrError(NoTextError):
    """Every page is an image (a scan) and no OCR engine could read them."""

    reason = "needs-ocr"


class TooLargeError(PdfError):
    reason = "too-large"

    def __init__(self, message: str, *, limit: int = 0, actual: int = 0, unit: str = "") -> None:
        super().__init__(message)
        self.limit = limit
        self.actual = actual
        self.unit = unit  # "bytes" or "pages"


def parse_pdf(
    data: bytes,
    file_name: str,
    *,
    engine: Engine = "pdfium",
    max_bytes: int | None = None,
    max_pages: int | None = None,
    ocr: OcrOptions | None = None,
    progress: Callable[[OcrStep], None] | None = None,
    require_text: bool = True,
) -> ParsedDocument:
    """Extract clean per-page text, a title and a checksum; raise a ``PdfError`` otherwise.

    If the chosen engine finds the file damaged, the other engine gets one try before the
    file is declared corrupt. Pages without a text layer are read by ``ocr`` (``progress``
    hears of each before it is read); ``require_text=False`` returns a document without any
    text rather than raising ``NoTextError``.
    """
    name = _display_name(file_name)
    _check_bytes(data, name, max_bytes)
    raw = _extract_with_fallback(data, name, engine, max_pages)
    if not raw.page_texts:
        raise EmptyPdfError(f'"{name}" is a PDF without any pages.')
    texts = _clean_pages(raw)
    if not any(texts):
        # Rarely one engine reads fonts the other cannot; ask it before calling it a scan.
        raw = _second_opinion(data, name, raw, max_pages)
        texts = _clean_pages(raw)
    pages = [Page(number, text) for number, text in enumerate(texts, start=1)]
    if ocr is not None and ocr.reader is not None and not all(texts):
        pages = _clean_with_ocr(raw, read_by_ocr(data, pages, ocr, progress))
    if require_text and not any(p.text for p in pages):
        raise _no_text_error(name, ocr, len(pages))
    return ParsedDocument(
        title=choose_title(raw.metadata_title, [p.text for p in pages], name),
        pages=tuple(pages),
        sha256=hashlib.sha256(data).hexdigest(),
        engine=raw.engine,
    )


def _no_text_error(name: str, ocr: OcrOptions | None, page_count: int) -> NoTextError:
    if ocr is None or ocr.reader is None:
        why = (ocr or OcrOptions(None)).unavailable
        return NeedsOcrError(f'needs OCR: "{name}" has no text layer (it looks scanned) and {why}.')
    return NoTextError(f'"{name}" has no text: OCR found no words on its {page_count} page(s).')


def _clean_pages(raw: _RawPdf) -> list[str]:
    return remove_running_lines([normalise_page_text(text) for text in raw.page_texts])


def _clean_with_ocr(raw: _RawPdf, pages: list[Page]) -> list[Page]:
    """Running headers and footers found over the text and the OCR'd pages together (a
    scan's header is printed on its page image too)."""
    if not pages or all(p.ocr_confidence is None for p in pages):
        return pages
    texts = [
        page.text if page.ocr_confidence is not None else normalise_page_text(text)
        for page, text in zip(pages, raw.page_texts, strict=True)
    ]
    return [
        Page(page.number, text, ocr_confidence=page.ocr_confidence)
        for page, text in zip(pages, remove_running_lines(texts), strict=True)
    ]


def _second_opinion(data: bytes, name: str, raw: _RawPdf, max_pages: int | None) -> _RawPdf:
    other = _extract_pypdf if raw.engine == "pdfium" else _extract_pdfium
    try:
        return other(data, name, max_pages)
    except PdfError:
        return raw


# --- byte-level checks -------------------------------------------------------------------

PDF_MAGIC = b"%PDF-"
SNIFF_BYTES = 1024


def _display_name(file_name: str) -> str:
    return PurePosixPath(file_name.replace("\\", "/")).name or file_name or "file"


def _check_bytes(data: bytes, name: str, max_bytes: int | None) -> None:
    if not data:
        raise EmptyPdfError(f'"{name}" is empty (0 bytes).')
    if max_bytes is not None and len(data) > max_bytes:
        raise TooLargeError(
            f'"{name}" is {_human_size(len(data))}; the limit is {_human_size(max_bytes)}.',
            limit=max_bytes,
            actual=len(data),
            unit="bytes",
        )
    if PDF_MAGIC not in data[:SNIFF_BYTES]:
        raise NotAPdfError(f'"{name}" is not a PDF: {_describe_non_pdf(data[:SNIFF_BYTES])}.')


def _human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} bytes"


_MAGIC_DESCRIPTIONS: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "it looks like a ZIP archive or an Office file (.docx, .xlsx, .pptx)"),
    (b"\xd0\xcf\x11\xe0", "it looks like an old Office file (.doc, .xls, .ppt)"),
    (b"{\\rtf", "it looks like an RTF document"),
    (b"\x89PNG", "it looks like a PNG image"),
    (b"\xff\xd8\xff", "it looks like a JPEG image"),
    (b"GIF8", "it looks like a GIF image"),
    (b"II*\x00", "it looks like a TIFF image"),
    (b"MM\x00*", "it looks like a TIFF image"),
)


def _describe_non_pdf(head: bytes) -> str:
    for magic, description in _MAGIC_DESCRIPTIONS:
        if head.startswith(magic):
            return description
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n").lower()
    if text.startswith(("<!doctype html", "<html")):
        return "it looks like a web page (HTML)"
    if _looks_like_text(text):
        return "it looks like plain text"
    return "it does not start with a PDF header"


def _looks_like_text(text: str) -> bool:
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\r\n\t")
    return bool(text) and printable / len(text) > 0.95


# --- engines -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _RawPdf:
    metadata_title: str
    page_texts: list[str]
    engine: Engine


class _UnreadableError(CorruptPdfError):
    """One engine could not read the file; ``password_hint`` if it blamed a password."""

    def __init__(self, message: str, *, password_hint: bool = False) -> None:
        super().__init__(message)
        self.password_hint = password_hint


def _extract_with_fallback(
    data: bytes, name: str, engine: Engine, max_pages: int | None
) -> _RawPdf:
    first, second = (_extract_pdfium, _extract_pypdf)
    if engine == "pypdf":
        first, second = second, first
    try:
        return first(data, name, max_pages)
    except _UnreadableError as first_error:
        try:
            return second(data, name, max_pages)
        except _UnreadableError as second_error:
            # pdfium's error codes are process-global and can be stale, so a password
            # complaint only decides the verdict when neither engine could read the file.
            if first_error.password_hint or second_error.password_hint:
                raise _password_error(name) from None
            raise CorruptPdfError(
                f'"{name}" is damaged or truncated and cannot be read as a PDF.'
            ) from first_error


def _password_error(name: str) -> EncryptedPdfError:
    return EncryptedPdfError(
        f'"{name}" is password-protected; remove the password (or re-save it without one) '
        "and upload it again."
    )


def _check_page_count(count: int, name: str, max_pages: int | None) -> None:
    if max_pages is not None and count > max_pages:
        raise TooLargeError(
            f'"{name}" has {count} pages; the limit is {max_pages} pages.',
            limit=max_pages,
            actual=count,
            unit="pages",
        )


# PDFium keeps global state and is not thread-safe; the app may ingest from several threads.
_PDFIUM_LOCK = threading.Lock()
_PDFIUM_PASSWORD_ERRORS = {4, 5}  # FPDF_ERR_PASSWORD, FPDF_ERR_SECURITY


def _extract_pdfium(data: bytes, name: str, max_pages: int | None) -> _RawPdf:
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            hint = getattr(exc, "err_code", None) in _PDFIUM_PASSWORD_ERRORS
            raise _UnreadableError(f"pdfium: {exc}", password_hint=hint) from exc
        try:
            count = len(document)
            _check_page_count(count, name, max_pages)
            title = document.get_metadata_value("Title") or ""
            texts = [_pdfium_page_text(document, index) for index in range(count)]
        except PdfError:
            raise
        except Exception as exc:  # anything PDFium chokes on is a damaged file
            raise _UnreadableError(f"pdfium: {exc}") from exc
        finally:
            document.close()
    return _RawPdf(str(title), texts, "pdfium")


def _pdfium_page_text(document: object, index: int) -> str:
    page = document[index]  # type: ignore[index]
    try:
        text_page = page.get_textpage()
        try:
            return str(text_page.get_text_bounded())
        finally:
            text_page.close()
    finally:
        page.close()


def _extract_pypdf(data: bytes, name: str, max_pages: int | None) -> _RawPdf:
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            _unlock_with_empty_password(reader, name)
        count = len(reader.pages)
        _check_page_count(count, name, max_pages)
        metadata = reader.metadata
        title = (metadata.title if metadata else None) or ""
        texts = [page.extract_text() or "" for page in reader.pages]
    except PdfError:
        raise
    except Exception as exc:  # pypdf raises many kinds of errors on damaged files
        raise _UnreadableError(f"pypdf: {exc}") from exc
    return _RawPdf(str(title), texts, "pypdf")


def _unlock_with_empty_password(reader: object, name: str) -> None:
    """Files encrypted with an empty user password (common in SEC filings) open freely."""
    from pypdf import PasswordType

    if reader.decrypt("") == PasswordType.NOT_DECRYPTED:  # type: ignore[attr-defined]
        raise _password_error(name)


# --- OCR of pages without a text layer ---------------------------------------------------

MAX_OCR_PIXELS = 60_000_000  # a poster-sized page is read at a lower resolution, not refused


def read_by_ocr(
    data: bytes,
    pages: list[Page],
    ocr: OcrOptions,
    progress: Callable[[OcrStep], None] | None = None,
) -> list[Page]:
    """``pages`` with each empty one read from its image by ``ocr.reader``; a page PDFium
    cannot render stays empty."""
    assert ocr.reader is not None
    todo = [p.number for p in pages if not p.text]
    read = list(pages)
    for done, number in enumerate(todo):
        if progress:
            progress(OcrStep(number, done, len(todo), len(pages)))
        image = _render_page(data, number, ocr.dpi)
        if image is None:
            continue
        found = ocr.reader.read(image)
        text = normalise_page_text(found.text)
        if text:  # a blank page stays a page without text, not an OCR'd one
            read[number - 1] = Page(number, text, ocr_confidence=round(found.confidence, 1))
    return read


def _render_page(data: bytes, number: int, dpi: int) -> Image.Image | None:
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError:
            return None
        try:
            page = document[number - 1]
            width, height = page.get_size()  # in points, 1/72 inch
            scale = min(dpi / 72, (MAX_OCR_PIXELS / max(width * height, 1.0)) ** 0.5)
            return page.render(scale=scale, grayscale=True).to_pil()
        except Exception:  # noqa: BLE001 - a page that does not render is left without text
            return None
        finally:
            document.close()


# --- text clean-up -----------------------------------------------------------------------


# --- running headers and footers ---------------------------------------------------------


# --- title -------------------------------------------------------------------------------
