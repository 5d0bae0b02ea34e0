"""The lines of a document's text and what each one is: a heading (numbered, keyword, ALL CAPS or
Title Case) and its level, a table row or label, a table-of-contents entry. Offsets are into the
joined text of all pages (PAGE_SEPARATOR between them)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.document import Page

PAGE_SEPARATOR = "\n\n"


MAX_HEADING_DEPTH = 4


MAX_HEADING_CHARS = 100


def document_text(pages: Sequence[Page]) -> str:
    """The text that chunk offsets point into."""
    return PAGE_SEPARATOR.join(page.text for page in pages)


@dataclass(frozen=True)
class _Layout:
    text: str
    page_starts: list[int]  # offset where each page's text begins

    @staticmethod
    def of(pages: Sequence[Page]) -> _Layout:
        starts, offset = [], 0
        for page in pages:
            starts.append(offset)
            offset += len(page.text) + len(PAGE_SEPARATOR)
        return _Layout(document_text(pages), starts)

    def page_index(self, offset: int) -> int:
        return bisect.bisect_right(self.page_starts, offset) - 1

    def page_end(self, index: int) -> int:
        if index + 1 < len(self.page_starts):
            return self.page_starts[index + 1] - len(PAGE_SEPARATOR)
        return len(self.text)


_NUMBERED_HEADING = re.compile(r"(\d{1,3}(?:\.\d{1,3})*)\.?\s+(\S.*)")


_ROMAN_HEADING = re.compile(r"([IVXLC]{1,6})\.\s+(\S.*)")


_KEYWORD_HEADING = re.compile(
    r"(part|article|chapter|section|item|schedule|appendix|annex|exhibit|note)\s+"
    r"([IVXLC]{1,6}|\d{1,3}[A-Z]?(?:\.\d{1,3})*|[A-Z])\b\.?(.*)",
    re.IGNORECASE,
)


_KEYWORD_LEVELS = {"part": 1, "article": 1, "chapter": 1, "schedule": 1, "appendix": 1}


UNNUMBERED_LEVEL = 99  # ALL CAPS / Title Case headings: a leaf under numbered ones


# A financial statement's title holds its unnumbered headings ("Financing", "Current assets")
# until the next statement or numbered heading.
STATEMENT_LEVEL = 50


_SMALL_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or"}
    | {"per", "the", "to", "vs", "via", "with", "&", "-", "–", "—"}
)


_NUMBER_TOKEN = re.compile(r"[-(]?[$€£]?\(?\d[\d,.]*%?\)?[,;]?")


_DOT_LEADER = re.compile(r"(\.{4,}|…{2,}|(\. ){4,})\s*\S{1,6}$")  # "Scope ........ 12"


_SPACED_COLUMNS = re.compile(r"\S(?: {2,}|\t)\S.*\S(?: {2,}|\t)\S")


_LIST_ITEM = re.compile(r"(\(?[a-z0-9]{1,3}\)|\(?[ivx]{1,5}\)|[•▪●◦*\-–]|\d{1,3}\.)\s")


_DANGLING_END = re.compile(r"(,|&|\b(and|or|of|for|the|in|on|to|with|a|an|by|that))$", re.I)


_TOC_PAGE_NUMBER = re.compile(r"[A-Za-z)’'\"”]\s+\d{1,4}$")


_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*$")


# A line after one ending like this may be a heading; not after ":" (a list follows).
_HEADING_CONTEXT_END = re.compile(r"([.!?][\"'”’)\]]*|\d|\))$")


@dataclass(frozen=True)
class _Line:
    start: int
    end: int
    text: str
    blank_before: bool


def _lines(layout: _Layout, page: int) -> list[_Line]:
    """The non-blank lines of a page, stripped, with absolute offsets."""
    lines: list[_Line] = []
    offset = layout.page_starts[page]
    blank_before = True
    for raw in layout.text[offset : layout.page_end(page)].split("\n"):
        stripped = raw.strip()
        if stripped:
            start = offset + raw.index(stripped[0])
            lines.append(_Line(start, start + len(stripped), stripped, blank_before))
        blank_before = not stripped
        offset += len(raw) + 1
    return lines


def _heading_level(line: str) -> int | None:
    """The nesting level if ``line`` looks like a heading on its own, else None."""
    if len(line) > 120 or "...." in line or line.endswith((",", ";")):
        return None
    keyword = _KEYWORD_HEADING.fullmatch(line)
    if _TOC_PAGE_NUMBER.search(line) and not (keyword and not keyword.group(3).strip()):
        return None  # "Article IX Put Option 19" is a table-of-contents entry
    if keyword and line[0].isupper() and _heading_rest_ok(keyword.group(3), max_words=16):
        depth = keyword.group(2).count(".")
        return _KEYWORD_LEVELS[keyword.group(1).lower()] + depth
    numbered = _NUMBERED_HEADING.fullmatch(line)
    if numbered:
        rest = numbered.group(2)
        if not _heading_rest_ok(rest, max_words=10) or not rest[0].isupper():
            return None
        if rest.endswith(".") and not rest.isupper():
            return None
        bare = rest.removesuffix(":")
        styled = _is_all_caps_heading(bare) or _is_title_case_heading(bare)
        if rest.endswith(":") and not (styled and len(bare.split()) <= 5):
            return None  # "1. The Company shall:" introduces a list
        if not styled and (len(rest.split()) > 5 or _DANGLING_END.search(rest)):
            return None  # a numbered sentence ("3. The Policy ... represent the")
        return 1 + _numbering_depth(numbered.group(1))
    roman = _ROMAN_HEADING.fullmatch(line)
    if roman and _heading_rest_ok(roman.group(2), max_words=10) and roman.group(2)[0].isupper():
        return 1
    if is_statement_title(line):
        return STATEMENT_LEVEL
    if _is_all_caps_heading(line) or _is_title_case_heading(line):
        return UNNUMBERED_LEVEL
    return None


def _numbering_depth(number: str) -> int:
    """ "4" and "4.0" -> 1, "4.2" -> 2, "4.2.1" -> 3."""
    return number.removesuffix(".0").count(".") + 1


def _is_numbered_caps_heading(line: str) -> bool:
    """ "4. PUBLIC HOLIDAYS", "ARTICLE V TERM": a heading wherever it stands."""
    match = _NUMBERED_HEADING.fullmatch(line) or _KEYWORD_HEADING.fullmatch(line)
    return bool(match) and _is_all_caps_heading(line) and _heading_level(line) is not None


def _heading_rest_ok(rest: str, *, max_words: int) -> bool:
    rest = rest.strip(" .:-–—")
    if not rest:
        return True
    words = rest.split()
    if len(words) > max_words or len(rest) > 100:
        return False
    if rest.endswith(".") and len(words) > 6:
        return False
    return rest[0].isupper() or not rest[0].isalpha()


def _is_all_caps_heading(line: str) -> bool:
    letters = [ch for ch in line if ch.isalpha()]
    if len(letters) < 4 or len(line) > 100 or len(line.split()) > 14:
        return False
    if line.endswith((".", "!", "?")):
        return False
    uppercase = sum(ch.isupper() for ch in letters)
    digits = sum(ch.isdigit() for ch in line)
    return uppercase >= 0.9 * len(letters) and digits <= 0.3 * len(letters)


def _is_title_case_heading(line: str) -> bool:
    words = line.split()
    if not 1 <= len(words) <= 10 or len(line) > 80 or not line[0].isupper():
        return False
    if line[-1] in ".,;:!?" or sum(ch.isalpha() for ch in line) < 4:
        return False
    significant = [w for w in words if w.lower() not in _SMALL_WORDS]
    return all(w[0].isupper() or not w[0].isalpha() for w in significant) and not any(
        ch.isdigit() for w in significant for ch in w[:1]
    )


def _is_table_row(line: str) -> bool:
    if len(line) > 160:
        return False
    if _SPACED_COLUMNS.search(line) or _DOT_LEADER.search(line):
        return True
    tokens = line.split()
    numbers = sum(1 for token in tokens if _NUMBER_TOKEN.fullmatch(token))
    if not numbers:
        return False
    return numbers / len(tokens) >= 0.25 or (numbers >= 2 and len(tokens) <= 10)


def _is_table_label(line: str) -> bool:
    """Short row labels between numeric rows ("Current assets:") belong to the table."""
    return len(line) <= 60 and not _SENTENCE_END.search(line)


MIN_TABLE_ROWS = 3


MAX_TABLE_LABELS_IN_A_ROW = 3


def _table_runs(lines: Sequence[_Line]) -> dict[int, int]:
    """Map the index of each table's first line to the index after its last line."""
    runs: dict[int, int] = {}
    i = 0
    while i < len(lines):
        if not _is_table_row(lines[i].text):
            i += 1
            continue
        end, rows, last_row_end = i, 0, i
        while end < len(lines) and end - last_row_end <= MAX_TABLE_LABELS_IN_A_ROW:
            if _is_table_row(lines[end].text):
                rows, last_row_end = rows + 1, end + 1
            elif not _is_table_label(lines[end].text):
                break
            end += 1
        if rows >= MIN_TABLE_ROWS:
            runs[_table_caption_start(lines, i, max(runs.values(), default=0))] = last_row_end
            i = last_row_end
        else:
            i += 1
    return runs


def _table_caption_start(lines: Sequence[_Line], first_row: int, floor: int) -> int:
    """Column headers above the first numeric row ("Three Months Ended") join the table."""
    start = first_row
    while start > max(floor, first_row - MAX_TABLE_LABELS_IN_A_ROW):
        line = lines[start - 1].text
        if not _is_table_label(line) or line.isupper() or _NUMBERED_HEADING.fullmatch(line):
            break
        if is_statement_title(line):  # the statement's title is its heading, not a caption
            break
        start -= 1
    return start


# --- financial statements ------------------------------------------------------------------

# "CONDENSED CONSOLIDATED STATEMENTS OF CASH FLOWS (Unaudited)", "Consolidated Balance Sheets",
# "CASH FLOWS STATEMENTS", "Notes to Condensed Consolidated Financial Statements (Continued)".
_STATEMENT_KIND = (
    r"(?:cash\s+flows?|operations|income|earnings|comprehensive\s+(?:income|loss)"
    r"|financial\s+(?:position|condition)|(?:changes\s+in\s+)?(?:stockholders|shareholders)[’']?"
    r"\s+(?:equity|deficit)|changes\s+in\s+equity|retained\s+earnings)"
)
_STATEMENT_TITLE = re.compile(
    r"(?:(?:notes\s+to\s+(?:the\s+)?)?(?:condensed|consolidated|combined|interim|unaudited"
    r"|financial)\s+)*"
    rf"(?:statements?\s+of\s+{_STATEMENT_KIND}(?:\s+and\s+{_STATEMENT_KIND})?"
    rf"|balance\s+sheets?|(?:{_STATEMENT_KIND}|financial)\s+statements?)"
    r"(?:\s*\((?:unaudited|continued|loss|deficit)\))*",
    re.IGNORECASE,
)


def is_statement_title(line: str) -> bool:
    """The title of a financial statement or of its notes (a heading however it is cased)."""
    words = line.split()
    return (
        2 <= len(words) <= 12 and line[0].isupper() and _STATEMENT_TITLE.fullmatch(line) is not None
    )


# What people call each statement, where its title says it otherwise ("cash flow statement"
# for "Statements of Cash Flows"): general financial-statement vocabulary, matched by words.
_COMMON_NAMES = (
    (re.compile(r"\bcash\s+flows?\b", re.I), "cash flow statement"),
    (re.compile(r"statements?\s+of\s+(operations|income|earnings)\b", re.I), "income statement"),
    (re.compile(r"\bcomprehensive\s+(income|loss)\b", re.I), "comprehensive income statement"),
    (re.compile(r"\bfinancial\s+(position|condition)\b", re.I), "balance sheet"),
    (re.compile(r"\b(stockholders|shareholders)[’']?\s+equity\b", re.I), "equity statement"),
    (re.compile(r"\bnotes\s+to\b", re.I), "financial statement notes"),
)


def statement_common_name(title: str) -> str | None:
    """The everyday name of the statement ``title`` names, when the title lacks those words."""
    if not is_statement_title(title):
        return None
    for pattern, name in _COMMON_NAMES:
        if pattern.search(title):
            return None if name.lower() in title.lower() else name
    return None


# --- column headers -------------------------------------------------------------------------

# The column header of a table: its first lines, up to the first that holds an amount (a number
# other than a year or a day of a month: "Three Months Ended September 30, 2024 2023" is a header).
MAX_HEADER_ROWS = 8
MAX_HEADER_CHARS = 200
_DATE_PART = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}\b,?"
    r"|\b(19|20)\d\d\b|\bQ[1-4]\b",
    re.IGNORECASE,
)
_AMOUNT = re.compile(r"\d")


def header_rows(rows: Sequence[_Line]) -> int:
    """How many of a table's first lines are its column header."""
    for index, row in enumerate(rows[:MAX_HEADER_ROWS]):
        if _AMOUNT.search(_DATE_PART.sub(" ", row.text)):
            return index
    return 0  # no amounts at all, or a header too long to be one: no header


def column_header(rows: Sequence[_Line]) -> tuple[str, int]:
    """The column header of a table as one line ("" when it has none) and the index of the
    row after it. A split table's rows carry it in their heading path: embedded and
    keyword-indexed with them, while the chunk text stays an exact slice of the page."""
    end = header_rows(rows)
    return _shortened(" ".join(row.text for row in rows[:end]), MAX_HEADER_CHARS), end


def heading_title(title: str) -> str:
    """A heading as its path shows it: shortened, and a statement with its everyday name
    ("Statements of Cash Flows" is what a "cash flow statement" query means)."""
    common_name = statement_common_name(title)
    title = _shortened(title, MAX_HEADING_CHARS).removesuffix(":").rstrip()
    return f"{title} · {common_name}" if common_name else title


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


MIN_TOC_ENTRIES = 5


def _is_toc_entry(line: str) -> bool:
    return bool(_DOT_LEADER.search(line) or _TOC_PAGE_NUMBER.search(line))


def _heading_context(previous: _Line | None, line: _Line) -> bool:
    """Headings follow a blank line, a page start, or a line that ends a sentence/row."""
    if previous is None or line.blank_before:
        return True
    return _HEADING_CONTEXT_END.search(previous.text) is not None or _is_all_caps_heading(
        previous.text
    )


def _continues_heading(previous: str, following: str) -> bool:
    """ "MANAGING PUBLIC" + "SECTOR RECORDS" are one heading."""
    if len(previous) + len(following) > MAX_HEADING_CHARS:
        return False
    if _heading_level(following) not in (UNNUMBERED_LEVEL,):
        return False
    both_caps = previous.isupper() and following.isupper()
    return both_caps or previous.endswith((",", "&", " and", " of", " for", " the"))


def _heading_level_at(lines: Sequence[_Line], i: int, after_heading: bool) -> int | None:
    line, previous = lines[i], (lines[i - 1] if i else None)
    plausible = (
        after_heading or _heading_context(previous, line) or _is_numbered_caps_heading(line.text)
    )
    return _heading_level(line.text) if plausible else None
