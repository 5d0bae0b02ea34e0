"""Contract text -> sentence/clause segments with exact offsets, pages and section context.

Contracts come as PDF pages (lines broken mid-sentence, headings on lines of their own) or as
plain text (paragraphs separated by blank lines). Both are cut the same way: lines are joined
into blocks (a heading, a numbered item or a blank line starts a new one), blocks into
sentences, and over-long sentences into clauses at semicolons. Every segment is an exact slice
``text[start:end]`` of the document text, so a clause record always quotes the document.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ingest.document import Page
from ingest.lines import PAGE_SEPARATOR, document_text

LONG_SEGMENT_TOKENS = 90  # sentences longer than this are cut at semicolons
MAX_CONTEXT_CHARS = 80

_WORD_TOKEN = re.compile(r"[a-z0-9]+")
_SENTENCE_BREAK = re.compile(r"[.!?][\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_CLAUSE_BREAK = re.compile(r";\s+")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "inc", "ltd", "co", "corp", "no", "nos", "vs", "etc", "l.l.c"}
    | {"e.g", "i.e", "al", "st", "sec", "art", "para", "u.s", "u.k", "n.a", "s.a", "b.v"}
    | {"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
    | {"approx", "dept", "ave", "blvd", "rd", "p.c", "l.p", "n.v", "s.p.a", "a.g", "ex"}
)
_ITEM_START = re.compile(
    r"(?:\(?[a-zA-Z0-9]{1,4}\)|\d{1,2}(?:\.\d{1,2})*\.?\s|[A-Z]\.\s|[•·▪\-–]\s|"
    r"(?:Section|SECTION|Article|ARTICLE|Clause|CLAUSE)\s+[0-9IVXivx]+)"
)
_INLINE_TITLE = re.compile(
    r"^\s*(?:(?:Section|SECTION|Article|ARTICLE)\s+)?[0-9IVX]{1,3}(?:\.\d{1,2})*\.?\s+"
    r"([A-Z][A-Za-z&,'’\- ]{2,60}?)[.:]\s"
)
_TERMINAL = tuple(".!?;:")
_LIST_JOINER = re.compile(r";\s*(?:and|or|and/or)$")


@dataclass(frozen=True)
class Segment:
    start: int  # offset in the document text
    end: int
    page: int  # 1-based page where the segment starts (1 for plain text)
    text: str  # the slice with its whitespace collapsed
    context: str  # the section heading in force ("Governing Law"), lowercased; may be ""
    position: float  # start / document length, 0..1


@dataclass(frozen=True)
class _Line:
    start: int
    end: int
    text: str
    blank_before: bool


def word_tokens(text: str) -> list[str]:
    """Lowercased letter/digit runs: the unit in which clause spans are measured."""
    return _WORD_TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


def segment_pages(pages: Sequence[Page]) -> tuple[str, list[Segment]]:
    """The document text (pages joined as the chunker joins them) and its segments."""
    text = document_text(pages)
    starts, offset = [], 0
    for page in pages:
        starts.append(offset)
        offset += len(page.text) + len(PAGE_SEPARATOR)
    numbers = [page.number for page in pages]
    return text, segment_text(text, starts, numbers)


def segment_text(
    text: str, page_starts: Sequence[int] = (0,), page_numbers: Sequence[int] = (1,)
) -> list[Segment]:
    segments: list[Segment] = []
    heading = ""
    size = max(len(text), 1)
    for block_start, block_end, is_heading in _blocks(text):
        block = text[block_start:block_end]
        if is_heading:
            heading = _context(block)
            continue
        title = _INLINE_TITLE.match(block)
        context = _context(title.group(1)) if title else heading
        for start, end in _sentences(text, block_start, block_end):
            index = max(bisect.bisect_right(page_starts, start) - 1, 0)
            segments.append(
                Segment(
                    start,
                    end,
                    page_numbers[index],
                    " ".join(text[start:end].split()),
                    context,
                    start / size,
                )
            )
    return segments


def _context(heading: str) -> str:
    return " ".join(heading.split()).lower()[:MAX_CONTEXT_CHARS]


# --- lines -> blocks ----------------------------------------------------------------------


def _lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    offset = 0
    blank_before = True
    for raw in text.split("\n"):
        stripped = raw.strip()
        if stripped:
            start = offset + raw.index(stripped[0])
            lines.append(_Line(start, start + len(stripped), stripped, blank_before))
        blank_before = not stripped
        offset += len(raw) + 1
    return lines


def _is_heading(line: str) -> bool:
    """A short line without an end mark, in capitals or title case: a section heading."""
    if len(line) > 90 or line.endswith((",", ";")) or line[-1:] in ".!?" and len(line) > 40:
        return False
    words = re.findall(r"[A-Za-z][A-Za-z'’\-]*", line)
    if not line[:1].isupper() and not line[:1].isdigit() or not words or len(words) > 12:
        return False
    capitalised = sum(w[0].isupper() for w in words if len(w) > 3 or w.isupper())
    long_words = sum(1 for w in words if len(w) > 3 or w.isupper())
    return long_words > 0 and capitalised == long_words


def _continues(previous: _Line, line: _Line) -> bool:
    """Whether ``line`` carries on the sentence of ``previous`` (a wrapped line)."""
    ends_item = previous.text.endswith(_TERMINAL) or _LIST_JOINER.search(previous.text)
    if ends_item and _ITEM_START.match(line.text):
        return False  # "(a) the base fee; and" / "(b) the usage fee."
    if line.blank_before:
        # a paragraph break, unless a sentence clearly runs over it (a page break)
        return not previous.text.endswith(_TERMINAL) and line.text[:1].islower()
    return True


def _blocks(text: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, is_heading) of each paragraph-like block, in order."""
    lines = _lines(text)
    current: list[_Line] = []
    after_heading = True
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else None
        previous = lines[i - 1] if i else None
        heading = (
            _is_heading(line.text)
            and (
                after_heading
                or line.blank_before
                or previous is None
                or previous.text.endswith(_TERMINAL)
            )
            and (
                following is None
                or following.text[:1].isupper()
                or following.text[:1] in "(0123456789"
            )
        )
        if current and (heading or not _continues(current[-1], line)):
            yield current[0].start, current[-1].end, False
            current = []
        after_heading = heading
        if heading:
            yield line.start, line.end, True
            continue
        current.append(line)
    if current:
        yield current[0].start, current[-1].end, False


# --- blocks -> sentences -> clauses ---------------------------------------------------------


def _sentences(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    sentence_start = start
    for match in _SENTENCE_BREAK.finditer(text, start, end):
        if _is_abbreviation(text, sentence_start, match.start()):
            continue
        yield from _clauses(text, sentence_start, match.start() + len(match.group().rstrip()))
        sentence_start = match.end()
    if sentence_start < end:
        yield from _clauses(text, sentence_start, end)


def _is_abbreviation(text: str, sentence_start: int, period_at: int) -> bool:
    if text[period_at] != ".":
        return False
    word_start = period_at
    while word_start > sentence_start and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:period_at].lstrip("(\"'“‘").lower()
    is_initial = len(word) == 1 and word.isalpha()  # "J. Smith", "U.S."
    is_number = word.isdigit() and period_at - word_start <= 2  # "1. Term" at a line start
    return is_initial or is_number or word in _ABBREVIATIONS


def _clauses(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The sentence itself, or its semicolon-separated clauses when it is very long."""
    if len(word_tokens(text[start:end])) <= LONG_SEGMENT_TOKENS:
        yield start, end
        return
    clause_start = start
    for match in _CLAUSE_BREAK.finditer(text, start, end):
        piece = text[clause_start : match.start() + 1]
        if len(word_tokens(piece)) >= 8:
            yield clause_start, match.start() + 1
            clause_start = match.start() + 1
            while clause_start < end and text[clause_start].isspace():
                clause_start += 1
    if clause_start < end:
        yield clause_start, end
