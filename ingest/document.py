"""A document read from any format: its title, its pages (or slides, sheets' row blocks,
sections) of clean text, and where each came from. Every reader in ``ingest`` returns one."""

from __future__ import annotations

from dataclasses import dataclass

PDF = "application/pdf"


class DocumentError(Exception):
    """A file that cannot be read as a document with text; ``str(err)`` is shown to users."""

    reason = "unreadable"


@dataclass(frozen=True)
class Page:
    """One citable unit of a document. ``number`` is 1-based and is what chunks and citations
    refer to; ``label`` says what it is where it is not a PDF page ("slide 3", "Rates, rows
    2-41"); ``ocr_confidence`` (0-100) is set when its text was read from the page image."""

    number: int
    text: str
    label: str = ""
    ocr_confidence: float | None = None
    # (level, text) of the page's heading lines, in order, where the format marks them (Word
    # styles, h1-h6, #, slide titles); None: the chunker finds headings in the text itself
    headings: tuple[tuple[int, str], ...] | None = None


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    pages: tuple[Page, ...]
    sha256: str
    engine: str = ""  # what read the text (a PDF engine, "python-docx", ...)
    media_type: str = PDF

    @property
    def page_count(self) -> int:
        return len(self.pages)

    @property
    def pages_without_text(self) -> tuple[int, ...]:
        return tuple(p.number for p in self.pages if not p.text.strip())

    @property
    def page_labels(self) -> dict[int, str]:
        return {p.number: p.label for p in self.pages if p.label}

    @property
    def ocr_pages(self) -> dict[int, float]:
        """The pages read by OCR, with their mean word confidence (0-100)."""
        return {p.number: p.ocr_confidence for p in self.pages if p.ocr_confidence is not None}
