"""PDF bytes -> per-page text, with a specific error for every kind of bad file."""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    text: str


@dataclass(frozen=True)
class ParsedPdf:
    title: str
    pages: tuple[Page, ...]
    sha256: str

    @property
    def page_count(self) -> int:
        return len(self.pages)

    @property
    def pages_without_text(self) -> tuple[int, ...]:
        return tuple(p.number for p in self.pages if not p.text.strip())
