"""One way in for every supported format: the file's content is checked against its name,
then the format's reader turns it into a ParsedDocument (or raises a DocumentError that says
exactly what is wrong with the file)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from ingest import markup, office
from ingest.containers import OLE_MAGIC, ZIP_MAGIC, is_encrypted_ooxml, office_kind
from ingest.document import PDF, DocumentError, Page, ParsedDocument
from ingest.format_errors import (
    CorruptDocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    LegacyFormatError,
    MismatchedContentError,
    NoTextDocumentError,
    TooLargeDocumentError,
    UnsupportedTypeError,
)
from ingest.ocr import OcrOptions, OcrStep
from ingest.pdf import PDF_MAGIC, SNIFF_BYTES, Engine, parse_pdf
from ingest.pdf_text import choose_title


@dataclass(frozen=True)
class Format:
    name: str  # as users know it
    media_type: str
    suffixes: tuple[str, ...]


FORMATS = (
    Format("PDF", PDF, (".pdf",)),
    Format("Word document", office.DOCX, (".docx",)),
    Format("PowerPoint presentation", office.PPTX, (".pptx",)),
    Format("Excel workbook", office.XLSX, (".xlsx",)),
    Format("CSV file", markup.CSV, (".csv",)),
    Format("web page", markup.HTML, (".html", ".htm")),
    Format("Markdown file", markup.MARKDOWN, (".md", ".markdown")),
    Format("text file", markup.TEXT, (".txt",)),
)
SUPPORTED_SUFFIXES = tuple(suffix for f in FORMATS for suffix in f.suffixes)
# Old binary Office files: not read, but named in the error so that users know what to do.
LEGACY_SUFFIXES = {".doc": ".docx", ".xls": ".xlsx", ".ppt": ".pptx", ".dot": ".docx"}
_BY_SUFFIX = {suffix: f for f in FORMATS for suffix in f.suffixes}
_BY_OFFICE_KIND = {"docx": _BY_SUFFIX[".docx"], "pptx": _BY_SUFFIX[".pptx"]}
_BY_OFFICE_KIND["xlsx"] = _BY_SUFFIX[".xlsx"]


def format_of(file_name: str) -> Format | None:
    return _BY_SUFFIX.get(PurePosixPath(file_name.lower()).suffix)


def media_type_of(file_name: str) -> str:
    found = format_of(file_name)
    return found.media_type if found else "application/octet-stream"


def suffix_for(media_type: str) -> str:
    """The suffix a stored original of this media type gets."""
    found = next((f for f in FORMATS if f.media_type == media_type), None)
    return found.suffixes[0] if found else ".bin"


def read_document(
    data: bytes,
    file_name: str,
    *,
    max_bytes: int | None = None,
    max_pages: int | None = None,
    block_chars: int = 900,
    pdf_engine: Engine = "pdfium",
    ocr: OcrOptions | None = None,
    ocr_progress: Callable[[OcrStep], None] | None = None,
    require_text: bool = True,
) -> ParsedDocument:
    """Read any supported file. ``block_chars`` sizes table blocks and sheet pages (the chunk
    size, so that a block of rows with its header fits one chunk). A PDF's pages without a
    text layer are read by ``ocr`` (``parse_pdf``)."""
    name = PurePosixPath(file_name.replace("\\", "/")).name or file_name or "file"
    found = _format_for_name(name)
    if found.media_type == PDF:
        return parse_pdf(
            data,
            name,
            engine=pdf_engine,
            max_bytes=max_bytes,
            max_pages=max_pages,
            ocr=ocr,
            progress=ocr_progress,
            require_text=require_text,
        )
    if not data:
        raise EmptyDocumentError(f'"{name}" is empty (0 bytes).')
    if max_bytes is not None and len(data) > max_bytes:
        raise TooLargeDocumentError(
            f'"{name}" is {len(data) / 1024**2:.1f} MB; the limit is {max_bytes / 1024**2:.1f} MB.'
        )
    _check_content(data, name, found)
    try:
        title, pages = _READERS[found.media_type](data, name, block_chars, max_pages)
    except DocumentError:
        raise
    except Exception as exc:  # the parsers raise many kinds of errors on damaged files
        raise CorruptDocumentError(
            f'"{name}" is damaged and cannot be read as {_a(found.name)} ({type(exc).__name__}).'
        ) from exc
    if max_pages is not None and len(pages) > max_pages:
        raise TooLargeDocumentError(
            f'"{name}" makes more than {max_pages} pages (slides, sections or blocks of rows); '
            f"the limit is {max_pages}."
        )
    if not any(page.text.strip() for page in pages):
        raise NoTextDocumentError(f'"{name}" has no text to index.')
    return ParsedDocument(
        title=_title(title, pages, name, found.media_type == markup.TEXT),
        pages=tuple(replace(page, number=n) for n, page in enumerate(pages, start=1)),
        sha256=hashlib.sha256(data).hexdigest(),
        engine=_ENGINES[found.media_type],
        media_type=found.media_type,
    )


def supported_list() -> str:
    return ", ".join(SUPPORTED_SUFFIXES)


def _format_for_name(name: str) -> Format:
    suffix = PurePosixPath(name.lower()).suffix
    if suffix in LEGACY_SUFFIXES:
        modern = LEGACY_SUFFIXES[suffix]
        raise LegacyFormatError(
            f'"{name}" is in the old Office format ({suffix}), which is not read; open it in '
            f"Office (or LibreOffice), save it as {modern} and upload that."
        )
    found = _BY_SUFFIX.get(suffix)
    if suffix == ".zip":
        raise UnsupportedTypeError(
            f'"{name}" is a ZIP archive, which is not read; unpack it and upload the files '
            f"inside ({supported_list()})."
        )
    if found is None:
        kind = f"{suffix} files are" if suffix else "files without an extension are"
        raise UnsupportedTypeError(
            f'"{name}": {kind} not supported. Supported: {supported_list()}.'
        )
    return found


def _check_content(data: bytes, name: str, expected: Format) -> None:
    """Raise unless the content is what the name says."""
    head = data[:SNIFF_BYTES]
    if expected.media_type in _OFFICE_TYPES:
        if head.startswith(OLE_MAGIC):
            if is_encrypted_ooxml(data):
                raise EncryptedDocumentError(
                    f'"{name}" is password-protected; remove the password (or save a copy '
                    "without one) and upload it again."
                )
            raise LegacyFormatError(
                f'"{name}" is an old-format Office file (.doc, .xls or .ppt) with a new '
                f"name; save it as {expected.suffixes[0]} and upload that."
            )
        if not head.startswith(ZIP_MAGIC):
            raise _mismatch(name, expected, _describe(head))
        kind = office_kind(data, name)
        if kind is None:
            raise _mismatch(name, expected, "a ZIP archive that holds no Office document")
        actual = _BY_OFFICE_KIND[kind]
        if actual is not expected:
            raise _mismatch(name, expected, f"{_a(actual.name)}; rename it to {actual.suffixes[0]}")
        return
    described = _describe_binary(head)
    if described:
        raise _mismatch(name, expected, described)


_OFFICE_TYPES = frozenset({office.DOCX, office.PPTX, office.XLSX})


def _mismatch(name: str, expected: Format, what: str) -> MismatchedContentError:
    return MismatchedContentError(f'"{name}" is not {_a(expected.name)}: it is {what}.')


def _a(noun: str) -> str:
    return f"{'an' if noun[0].lower() in 'aeiou' else 'a'} {noun}"


_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (ZIP_MAGIC, "a ZIP archive or an Office file (.docx, .xlsx, .pptx)"),
    (OLE_MAGIC, "an old Office file (.doc, .xls, .ppt)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"MZ", "a program (.exe)"),
    (b"\x7fELF", "a program"),
    (b"\x1f\x8b", "a gzip archive"),
)


def _describe_binary(head: bytes) -> str | None:
    if PDF_MAGIC in head[:16]:
        return "a PDF; rename it to .pdf"
    for magic, description in _BINARY_MAGIC:
        if head.startswith(magic):
            return description
    return None


def _describe(head: bytes) -> str:
    return _describe_binary(head) or "text or another kind of file"


# --- the readers -------------------------------------------------------------------------

Reader = Callable[[bytes, str, int, int | None], tuple[str, list[Page]]]


def _text(data: bytes, name: str) -> str:
    return markup.decode_text(data, name)


_READERS: dict[str, Reader] = {
    office.DOCX: lambda data, name, chars, most: office.read_docx(data, chars),
    office.PPTX: lambda data, name, chars, most: office.read_pptx(data, chars),
    office.XLSX: lambda data, name, chars, most: office.read_xlsx(data, chars, most),
    markup.HTML: lambda data, name, chars, most: markup.read_html(_text(data, name), chars),
    markup.MARKDOWN: lambda data, name, chars, most: markup.read_markdown(_text(data, name), chars),
    markup.TEXT: lambda data, name, chars, most: ("", markup.read_text(_text(data, name))),
    markup.CSV: lambda data, name, chars, most: (
        "",
        markup.read_csv(_text(data, name), chars, most),
    ),
}
_ENGINES = {
    office.DOCX: "python-docx",
    office.PPTX: "python-pptx",
    office.XLSX: "openpyxl",
    markup.HTML: "beautifulsoup4",
    markup.MARKDOWN: "markdown-it-py",
    markup.TEXT: "text",
    markup.CSV: "csv",
}


def _title(metadata_title: str, pages: list[Page], name: str, plain: bool) -> str:
    """The document's own title, else its first heading (of plain text: a title-like first
    line), else a title from the file name."""
    heading = next((text for page in pages for _, text in page.headings or ()), "")
    first_page = [pages[0].text] if plain else []
    return choose_title(metadata_title or heading, first_page, PurePosixPath(name).stem)
