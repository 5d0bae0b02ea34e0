"""PDF bytes -> per-page text, with a specific error for every kind of bad file."""

from __future__ import annotations

import hashlib
import io
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

Engine = Literal["pdfium", "pypdf"]


class PdfError(Exception):
    """A file that cannot be read as a PDF with text; ``str(err)`` is shown to users."""

    reason = "unreadable"


class NotAPdfError(PdfError):
    reason = "not-a-pdf"


class EncryptedPdfError(PdfError):
    reason = "password-protected"


class CorruptPdfError(PdfError):
    reason = "corrupt"


class EmptyPdfError(PdfError):
    reason = "empty"


class NoTextError(PdfError):
    """Every page is empty or an image (a scan): there is nothing to index."""

    reason = "no-text"


class TooLargeError(PdfError):
    reason = "too-large"

    def __init__(self, message: str, *, limit: int = 0, actual: int = 0, unit: str = "") -> None:
        super().__init__(message)
        self.limit = limit
        self.actual = actual
        self.unit = unit  # "bytes" or "pages"


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    text: str


@dataclass(frozen=True)
class ParsedPdf:
    title: str
    pages: tuple[Page, ...]
    sha256: str
    engine: str = ""  # the engine whose text this is (the other one if the first failed)

    @property
    def page_count(self) -> int:
        return len(self.pages)

    @property
    def pages_without_text(self) -> tuple[int, ...]:
        return tuple(p.number for p in self.pages if not p.text.strip())


def parse_pdf(
    data: bytes,
    file_name: str,
    *,
    engine: Engine = "pdfium",
    max_bytes: int | None = None,
    max_pages: int | None = None,
) -> ParsedPdf:
    """Extract clean per-page text, a title and a checksum; raise a ``PdfError`` otherwise.

    If the chosen engine finds the file damaged, the other engine gets one try before the
    file is declared corrupt.
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
    if not any(texts):
        raise NoTextError(
            f'"{name}" has no extractable text: it looks scanned; OCR is not supported.'
        )
    return ParsedPdf(
        title=choose_title(raw.metadata_title, texts, name),
        pages=tuple(Page(number, text) for number, text in enumerate(texts, start=1)),
        sha256=hashlib.sha256(data).hexdigest(),
        engine=raw.engine,
    )


def _clean_pages(raw: _RawPdf) -> list[str]:
    return remove_running_lines([normalise_page_text(text) for text in raw.page_texts])


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


# --- text clean-up -----------------------------------------------------------------------

# A word broken at a line end: "exam-\nple"; PDFium reports such hyphens as \x02 and joins
# the lines itself ("exam\x02ple"); \xad is a soft hyphen.
_BROKEN_WORD = re.compile(r"(\S*[A-Za-z0-9])(?:-[ \t]*\n[ \t]*|[\x02\xad][ \t]*\n?[ \t]*)(?=\w)")
# Line-end hyphens after these are real ("non-exclusive"), not syllable breaks. Prefixes
# that also start plain words ("anti-cipate", "co-venant", "multi-ple") are left out.
_COMPOUND_PREFIXES = frozenset({"non", "self", "third", "well"})
_DELETED = dict.fromkeys([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F], None)
_TRANSLATION = str.maketrans(
    {
        **_DELETED,
        "\t": " ",
        "\xa0": " ",
        "\u2007": " ",
        "\u202f": " ",
        "\u3000": " ",
        "\x0c": "\n",
        "\x85": "\n",
        "\u2028": "\n",
        "\u2029": "\n",
        "\xad": None,
        "\u200b": None,
        "\u200c": None,
        "\u200d": None,
        "\ufeff": None,
        "\ufffe": None,
        # Symbol-font glyphs that extractors report as private-use characters.
        "\uf0b7": "•",
        "\uf0a7": "▪",
        "\uf0b3": "≥",
        "\uf0a3": "≤",
        "\uf0b1": "±",
        "\uf0b4": "×",
    }
)
_SPACE_RUN = re.compile(r"[ \u2000-\u200a]{2,}|[\u2000-\u200a]")
_BLANK_LINE_RUN = re.compile(r"\n{3,}")


def normalise_page_text(raw: str) -> str:
    """Clean one page's extracted text; line breaks survive (chunking reads structure)."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    text = _BROKEN_WORD.sub(_mend_broken_word, text)
    text = _SPACE_RUN.sub(" ", text.translate(_TRANSLATION))
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINE_RUN.sub("\n\n", text).strip()


def _mend_broken_word(match: re.Match[str]) -> str:
    left = match.group(1)
    next_char = match.string[match.end()]
    last_word = re.split(r"[^A-Za-z]", left)[-1].lower()
    keeps_hyphen = (
        not next_char.islower()
        or left[-1].isdigit()  # "60-\nday", "2019-\n2020"
        or "-" in left  # "person-to-\nperson"
        or last_word in _COMPOUND_PREFIXES
    )
    return left + "-" if keeps_hyphen else left


# --- running headers and footers ---------------------------------------------------------

EDGE_LINES = 3  # how many lines at the top and bottom of a page can be header/footer
MIN_PAGES_FOR_RUNNING_LINES = 3
# Covers, exhibits and appendices often lack the running footer, so "most pages" is 40%.
RUNNING_LINE_MIN_SHARE = 0.4
_PAGE_NUMBER_KEY = "<page number>"
_PAGE_NUMBER = re.compile(
    r"(?:page\s*)?[-–—(\[]?\s*(\d{1,4}|[ivxlc]{1,7})\s*[-–—)\]]?(?:\s*(?:of|/)\s*\d{1,4})?",
    re.IGNORECASE,
)
# Only a number at either end of a line is masked ("Acme | Q1 2023 Report | 7"): a page
# counter sits there, while numbers inside a line are content.
_EDGE_NUMBER = re.compile(r"^\d+\b|\b\d+$")


def remove_running_lines(page_texts: Sequence[str]) -> list[str]:
    """Drop header/footer lines and page numbers that repeat at the edges of most pages.

    Lines are compared with a leading or trailing number masked ("Acme | 3" ~ "Acme | 4");
    a line only counts, and is only removed, within the first or last ``EDGE_LINES`` lines
    of a page.
    """
    pages_with_text = sum(1 for text in page_texts if text)
    if pages_with_text < MIN_PAGES_FOR_RUNNING_LINES:
        return list(page_texts)
    key_of = _running_key_function(len(page_texts))
    counts: Counter[str] = Counter()
    for text in page_texts:
        counts.update({key_of(line) for line in _edge_lines(text.split("\n"))} - {""})
    needed = max(MIN_PAGES_FOR_RUNNING_LINES, RUNNING_LINE_MIN_SHARE * pages_with_text)
    running = {key for key, count in counts.items() if count >= needed}
    if not running:
        return list(page_texts)
    return [_without_running_lines(text, running, key_of) for text in page_texts]


def _edge_lines(lines: list[str]) -> list[str]:
    return lines[:EDGE_LINES] + lines[-EDGE_LINES:]


def _running_key_function(page_count: int) -> Callable[[str], str]:
    # Front matter shifts printed numbers, but a "page number" far beyond the page count
    # is a value (a year, an amount), not a page number.
    highest_page_number = page_count + 100

    def key_of(line: str) -> str:
        if not line or len(line) > 150:
            return ""
        match = _PAGE_NUMBER.fullmatch(line)
        if match:
            number = match.group(1)
            if not number.isdigit() or int(number) <= highest_page_number:
                return _PAGE_NUMBER_KEY
        return _EDGE_NUMBER.sub("#", " ".join(line.lower().split()))

    return key_of


def _without_running_lines(text: str, running: set[str], key_of: Callable[[str], str]) -> str:
    lines = text.split("\n")
    edge = set(range(min(EDGE_LINES, len(lines)))) | set(
        range(max(0, len(lines) - EDGE_LINES), len(lines))
    )
    kept = [line for i, line in enumerate(lines) if i not in edge or key_of(line) not in running]
    return _BLANK_LINE_RUN.sub("\n\n", "\n".join(kept)).strip()


# --- title -------------------------------------------------------------------------------

TITLE_MAX_CHARS = 120
TITLE_MAX_WORDS = 12
_JUNK_TITLES = frozenset(
    {
        "untitled",
        "untitled document",
        "document",
        "new document",
        "title",
        "no title",
        "none",
        "null",
        "unknown",
        "print",
        "pdf",
        "slide 1",
        "powerpoint presentation",
        "presentation",
    }
)
_OFFICE_PREFIX = re.compile(r"^(microsoft\s+)?(word|excel|powerpoint|office)\s*-\s", re.I)
_FILE_EXTENSION = re.compile(r"\.(docx?|xlsx?|pptx?|pdf|rtf|txt|odt|indd|qxd|html?|tmp)$", re.I)
_NUMBERED_JUNK = re.compile(r"^(document|doc|untitled|slide|microsoft word)\s*\d*$", re.I)


def choose_title(metadata_title: str, page_texts: Sequence[str], file_name: str) -> str:
    """The metadata title if meaningful, else a title-like first line, else the file name."""
    return (
        _meaningful_metadata_title(metadata_title)
        or _title_from_first_page(page_texts)
        or title_from_file_name(file_name)
    )


def _meaningful_metadata_title(title: str) -> str | None:
    title = " ".join(title.replace("\x00", "").split())
    letters = sum(ch.isalpha() for ch in title)
    digits = sum(ch.isdigit() for ch in title)
    if letters < 3 or digits > letters or len(title) > 200:
        return None  # "", "0000320193-23-000006"
    if title.lower() in _JUNK_TITLES or _NUMBERED_JUNK.match(title):
        return None
    if _OFFICE_PREFIX.match(title) or _FILE_EXTENSION.search(title) or "\\" in title:
        return None
    return title[:TITLE_MAX_CHARS]


_FRONT_MATTER = [
    re.compile(p, re.I)
    for p in (
        r"(exhibit|annex|schedule|appendix|attachment)\s+[\w.\-()]+",
        r"(strictly\s+)?(private\s+(and|&)\s+)?confidential|execution (version|copy)|draft",
        r"(table of )?contents",
        r"(united states )?securities and exchange commission|united states",
        r"washington,? d\.? ?c\.?.*",
        r"form [\w\-]+",
        r"\S+\.(com|org|net|gov|edu|io|co)(\.\w\w)?(/\S*)?|www\.\S+|\S+@\S+",
        r"\d+\s+[\w\s]+\b(street|st|road|rd|avenue|ave|drive|lane|boulevard|blvd|suite)\.?",
    )
]
_DATE = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d|"
    r"\d\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b|"
    r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b",
    re.I,
)
_LONG_NUMBER_END = re.compile(r"\b(?!(19|20)\d\d$)\d{4,}$")  # postcode, phone; not a year
_NUMBERED_LINE = re.compile(r"([IVXLC]+|\d+(\.\d+)*|[A-Z])[.)]\s")
_DANGLING_END = re.compile(r"(,|&|\b(and|or|of|for|the|in|on|to|with|a|an))$", re.I)
FIRST_PAGE_LINES_TO_SCAN = 8


def _title_from_first_page(page_texts: Sequence[str]) -> str | None:
    first_text = next((text for text in page_texts[:3] if text), "")
    lines = [line for line in first_text.split("\n") if line][:FIRST_PAGE_LINES_TO_SCAN]
    for index, line in enumerate(lines):
        if _is_front_matter(line):
            continue
        title = _with_continuation_lines(line, lines[index + 1 :])
        return title if _looks_like_title(title) else None
    return None


def _is_front_matter(line: str) -> bool:
    if sum(ch.isalpha() for ch in line) < 3:
        return True
    if _DATE.search(line) and len(line.split()) <= 6:
        return True
    return any(pattern.fullmatch(line) for pattern in _FRONT_MATTER)


def _with_continuation_lines(line: str, following: list[str]) -> str:
    """Titles wrap: "RISK MANAGEMENT GUIDELINES FOR" + "BANKS AND ..." is one title."""
    title = line
    for next_line in following[:2]:
        continues = _DANGLING_END.search(title) or (title.isupper() and next_line.isupper())
        if not continues or len(title) + len(next_line) > TITLE_MAX_CHARS:
            break
        if _is_front_matter(next_line) or _NUMBERED_LINE.match(next_line):
            break
        title = f"{title} {next_line}"
    return title


def _looks_like_title(line: str) -> bool:
    if not 3 <= len(line) <= TITLE_MAX_CHARS or len(line.split()) > TITLE_MAX_WORDS:
        return False
    if _LONG_NUMBER_END.search(line):
        return False
    if not (line[0].isupper() or line[0].isdigit()):
        return False
    return not line.endswith((".", ",", ";", ":")) and not _DANGLING_END.search(line)


def title_from_file_name(file_name: str) -> str:
    stem = PurePosixPath(file_name.replace("\\", "/")).name
    stem = re.sub(r"\.pdf$", "", stem, flags=re.I)
    pretty = " ".join(stem.replace("_", " ").split())
    return pretty or "Untitled document"
