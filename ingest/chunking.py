"""Page texts -> overlapping, heading-aware chunks that remember where they came from.

The document text is the page texts joined by ``PAGE_SEPARATOR``; every chunk is an exact
slice of it (``text[c.char_start:c.char_end] == c.text``). The text is cut into *pieces*
(headings, tables, sentences; words only inside over-long sentences), each remembering how
good a place its start is to begin a chunk. Pieces are packed greedily up to ``size``
characters and each chunk is cut at the best boundary available.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum

from ingest.document import Page
from ingest.lines import (
    _KEYWORD_LEVELS,
    _LIST_ITEM,
    _SENTENCE_END,
    MAX_HEADING_DEPTH,
    MIN_TOC_ENTRIES,
    _continues_heading,
    _heading_level_at,
    _is_toc_entry,
    _Layout,
    _Line,
    _lines,
    _table_runs,
    column_header,
    heading_title,
)
from ingest.marked import Headings, cell_table_runs, marked_headings


@dataclass(frozen=True)
class ChunkDraft:
    text: str
    page_start: int
    page_end: int
    heading_path: tuple[str, ...]
    char_start: int  # offset in the document's text (pages joined by "\n\n")
    char_end: int
    content_hash: str
    page_break: int | None = None  # offset in ``text`` where page_end begins (2-page chunks)

    def page_at(self, offset: int) -> int:
        """The page of a character offset within this chunk's text."""
        if self.page_break is not None and offset >= self.page_break:
            return self.page_end
        return self.page_start


# Bump when chunk boundaries change, so stored documents are re-chunked on their next ingest.
CHUNKER_VERSION = 3


def chunk_pages(pages: Sequence[Page], *, size: int = 900, overlap: int = 120) -> list[ChunkDraft]:
    """Split pages into chunks of at most ``size`` characters plus up to ``overlap``
    characters repeated from the end of the previous chunk (whole sentences where possible).

    A chunk never spans more than two pages. Its ``heading_path`` lists the headings in
    effect where its own content (after any overlap) begins, outermost first: numbered
    headings nest by depth ("ARTICLE II" > "2.1 Fees"), an unnumbered one ("FEE SCHEDULE")
    is a leaf that the next heading replaces.
    """
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size (got {size=}, {overlap=})")
    layout = _Layout.of(pages)
    pieces = list(_Segmenter(layout, size, [page.headings for page in pages]).pieces())
    spans = _Packer(pieces, layout, size, overlap).spans()
    return [_draft(layout, pages, span) for span in spans]


# --- the joined text and its pages -------------------------------------------------------


# --- pieces ------------------------------------------------------------------------------


class Boundary(IntEnum):
    """How good the start of a piece is as the start of a chunk (higher is better)."""

    WORD = 0  # inside an over-long sentence
    LINE = 1  # a line break inside an over-long sentence
    CLAUSE = 2  # after ";" or ":" inside an over-long sentence
    TABLE_ROW = 3  # inside a table: only when the table cannot stay whole
    SENTENCE = 4
    BLOCK = 5  # paragraph, list item, table, page
    HEADING = 6


# A chunk is cut at a boundary only if that leaves the chunk at least this full; cutting
# at the best such boundary keeps paragraphs whole and starts chunks at headings.
MIN_FILL = {Boundary.HEADING: 0.25, Boundary.BLOCK: 0.5}


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    boundary: Boundary
    page: int  # index into pages
    heading_path: tuple[str, ...]
    is_heading: bool = False
    starts_section: bool = False  # a marked heading that begins a page (a section, a slide)


# --- line classification -----------------------------------------------------------------

_KEYWORD_LEVELS |= {"annex": 1, "exhibit": 1, "section": 2, "item": 2, "note": 2}


# --- from lines to pieces ----------------------------------------------------------------

_SENTENCE_BREAK = re.compile(r"[.!?][\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9•])")
_CLAUSE_BREAK = re.compile(r"[;:]\s+")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "inc", "ltd", "co", "corp", "no", "nos", "vs", "etc"}
    | {"e.g", "i.e", "al", "st", "sec", "art", "para", "fig", "u.s", "u.k"}
    | {"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
)


class _Segmenter:
    """Walks the document line by line and yields pieces in order."""

    def __init__(self, layout: _Layout, size: int, marked: Sequence[Headings | None] = ()) -> None:
        self.layout = layout
        self.text = layout.text
        self.size = size
        self.headings: list[tuple[int, str]] = []  # (level, text), outermost first
        self.marked = list(marked)  # per page: the headings its format marks, else None

    def pieces(self) -> Iterator[_Piece]:
        for page in range(len(self.layout.page_starts)):
            yield from self._page_pieces(page)

    def _page_pieces(self, page: int) -> Iterator[_Piece]:
        lines = _lines(self.layout, page)
        marked = self._marked(page)
        tables = _table_runs(lines) if marked is None else cell_table_runs(lines)
        levels = {} if marked is None else marked_headings(lines, marked)
        # Entries of a table of contents look like headings but must not become the path.
        toc_page = sum(1 for line in lines if _is_toc_entry(line.text)) >= MIN_TOC_ENTRIES
        paragraph = _Paragraph()
        i, after_heading = 0, False
        while i < len(lines):
            if i in tables:
                yield from self._paragraph(paragraph.take(), page)
                yield from self._table(lines[i : tables[i]], page)
                i, after_heading = tables[i], False
                continue
            level = None if toc_page else _heading_level_at(lines, i, after_heading)
            if marked is not None:
                level = levels.get(i)
            if level is not None:
                yield from self._paragraph(paragraph.take(), page)
                i = yield from self._heading(lines, i, level, page)
                after_heading = True
                continue
            if paragraph.ends_before(lines[i]):
                yield from self._paragraph(paragraph.take(), page)
            paragraph.add(lines[i])
            i, after_heading = i + 1, False
        yield from self._paragraph(paragraph.take(), page)

    def _heading(
        self, lines: list[_Line], i: int, level: int, page: int
    ) -> Generator[_Piece, None, int]:
        """Yield one heading piece (wrapped heading lines merged); return the next index."""
        end = i + 1
        while (
            end < len(lines)
            and end - i < 3
            and not lines[end].blank_before
            and _continues_heading(lines[end - 1].text, lines[end].text)
        ):
            end += 1
        first, last = lines[i], lines[end - 1]
        title = " ".join(line.text for line in lines[i:end])
        self._push_heading(level, title)
        starts = i == 0 and page > 0 and self._marked(page) is not None  # chunks of its own
        yield _Piece(first.start, last.end, Boundary.HEADING, page, self.path(), True, starts)
        return end

    def _marked(self, page: int) -> Headings | None:
        return self.marked[page] if page < len(self.marked) else None

    def _push_heading(self, level: int, title: str) -> None:
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, heading_title(title)))

    def path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self.headings[-MAX_HEADING_DEPTH:])

    def _table(self, rows: list[_Line], page: int) -> Iterator[_Piece]:
        start, end = rows[0].start, rows[-1].end
        if end - start <= self.size:
            yield _Piece(start, end, Boundary.BLOCK, page, self.path())
            return
        header, header_end = column_header(rows)  # in the path of the rows after it
        for index, row in enumerate(rows):
            boundary = Boundary.BLOCK if index == 0 else Boundary.TABLE_ROW
            extra = (header,) if header and index >= header_end else ()
            yield from self._bounded(row.start, row.end, boundary, page, extra)

    def _paragraph(self, lines: list[_Line], page: int) -> Iterator[_Piece]:
        if not lines:
            return
        start, end = lines[0].start, lines[-1].end
        boundary = Boundary.BLOCK
        for sentence_start, sentence_end in _sentences(self.text, start, end):
            yield from self._bounded(sentence_start, sentence_end, boundary, page)
            boundary = Boundary.SENTENCE

    def _bounded(
        self, start: int, end: int, boundary: Boundary, page: int, context: tuple[str, ...] = ()
    ) -> Iterator[_Piece]:
        """Yield [start, end) as pieces no longer than ``size``: clauses, words, characters."""
        path = self.path() + context
        for piece_start, piece_end, piece_boundary in _split_long(
            self.text, start, end, self.size, boundary
        ):
            yield _Piece(piece_start, piece_end, piece_boundary, page, path)


class _Paragraph:
    """Consecutive text lines that belong together."""

    def __init__(self) -> None:
        self.lines: list[_Line] = []
        self.widest = 0

    def add(self, line: _Line) -> None:
        self.lines.append(line)
        self.widest = max(self.widest, len(line.text))

    def take(self) -> list[_Line]:
        lines, self.lines, self.widest = self.lines, [], 0
        return lines

    def ends_before(self, line: _Line) -> bool:
        if not self.lines:
            return False
        return line.blank_before or _LIST_ITEM.match(line.text) is not None or self._ended()

    def _ended(self) -> bool:
        """A line that ends a sentence well short of the paragraph's width ends it."""
        last = self.lines[-1].text
        short = len(self.lines) >= 2 and len(last) < 0.7 * self.widest
        return short and _SENTENCE_END.search(last) is not None


def _sentences(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    sentence_start = start
    for match in _SENTENCE_BREAK.finditer(text, start, end):
        if _is_abbreviation(text, sentence_start, match.start()):
            continue
        yield sentence_start, match.start() + len(match.group().rstrip())
        sentence_start = match.end()
    if sentence_start < end:
        yield sentence_start, end


def _is_abbreviation(text: str, sentence_start: int, period_at: int) -> bool:
    word_start = period_at
    while word_start > sentence_start and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:period_at].lstrip("(\"'“‘").lower()
    is_initial = len(word) == 1 and word.isalpha()  # "J. Smith", "U.S."
    return text[period_at] == "." and (is_initial or word in _ABBREVIATIONS)


def _split_long(
    text: str, start: int, end: int, size: int, boundary: Boundary
) -> Iterator[tuple[int, int, Boundary]]:
    """Cut [start, end) into spans <= size, at clause ends, else spaces, else anywhere."""
    while end - start > size:
        cut, kind = _last_break(text, start, start + size)
        piece_end = cut
        while piece_end > start and text[piece_end - 1].isspace():
            piece_end -= 1
        yield start, piece_end, boundary
        start, boundary = cut, kind
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        yield start, end, boundary


def _last_break(text: str, start: int, limit: int) -> tuple[int, Boundary]:
    """The last good place to cut before ``limit``: after a clause, at a line break, at a
    space, or (a giant "word") at the limit itself."""
    floor = start + (limit - start) // 2  # do not leave a tiny first piece
    clause = None
    for match in _CLAUSE_BREAK.finditer(text, floor, limit):
        clause = match.end()
    if clause is not None:
        return clause, Boundary.CLAUSE
    line_break = text.rfind("\n", floor, limit)
    if line_break > start:
        return line_break + 1, Boundary.LINE
    space = text.rfind(" ", floor, limit)
    if space > start:
        return space + 1, Boundary.WORD
    return limit, Boundary.WORD


# --- packing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    heading_path: tuple[str, ...]


class _Packer:
    def __init__(self, pieces: list[_Piece], layout: _Layout, size: int, overlap: int) -> None:
        self.pieces = pieces
        self.layout = layout
        self.size = size
        self.overlap = overlap

    def spans(self) -> list[_Span]:
        spans: list[_Span] = []
        first = 0
        previous_first = None
        while first < len(self.pieces):
            start = self.pieces[first].start
            if previous_first is not None:
                start = self._overlap_start(previous_first, first)
            end = self._fill(start, first)
            spans.append(_Span(start, self.pieces[end - 1].end, self._path(first, end)))
            previous_first, first = first, end
        return spans

    @property
    def min_chunk(self) -> int:
        """Content shorter than this would hardly stand alone (or would be all overlap)."""
        return max(self.overlap, self.size // 8)

    def _fill(self, start: int, first: int) -> int:
        """Index after the last piece of the chunk that begins at ``start`` (overlap
        included) and whose own content begins with pieces[first]."""
        pieces = self.pieces
        first_page = self.layout.page_index(start)
        # Content gets ``size`` characters. A chunk that starts at a heading has no overlap,
        # so it may use that room, and so may content too small to stand alone.
        widest_end = start + self.size + self.overlap
        budget_end = widest_end if pieces[first].is_heading else pieces[first].start + self.size
        end = first + 1
        while end < len(pieces):
            piece = pieces[end]
            if piece.page > first_page + 1:
                return self._best_cut(first, end)
            if piece.end > budget_end:
                if piece.end > widest_end or not self._too_small(first, end):
                    return self._best_cut(first, end)
                budget_end = widest_end
            if piece.is_heading and (
                piece.starts_section or self._heading_may_start_chunk(first, end)
            ):
                return end
            end += 1
        return end

    def _too_small(self, first: int, end: int) -> bool:
        return self.pieces[end - 1].end - self.pieces[first].start < self.min_chunk

    def _heading_may_start_chunk(self, first: int, heading: int) -> bool:
        filled = self.pieces[heading].start - self.pieces[first].start
        enough = filled >= MIN_FILL[Boundary.HEADING] * self.size
        return enough and not self.pieces[heading - 1].is_heading

    def _best_cut(self, first: int, end: int) -> int:
        """Where to end a chunk holding pieces[first:end]: the strongest boundary that
        leaves it full enough (latest on ties), never right after a heading; if there is
        none, after all of them."""
        best, best_key = end, (-1, -1)
        for cut in range(first + 1, end + 1):
            if self.pieces[cut - 1].is_heading:
                continue
            boundary = self.pieces[cut].boundary
            filled = self.pieces[cut - 1].end - self.pieces[first].start
            if filled < max(MIN_FILL.get(boundary, 0.0) * self.size, self.min_chunk):
                continue
            if (boundary, cut) > best_key:
                best, best_key = cut, (boundary, cut)
        return best

    def _overlap_start(self, previous_first: int, first: int) -> int:
        """Where the chunk starting at pieces[first] begins, repeating the end of the
        previous chunk: its trailing whole sentences that fit in ``overlap`` characters."""
        pieces, content_start = self.pieces, self.pieces[first].start
        if not self.overlap or pieces[first].boundary == Boundary.HEADING:
            return content_start
        previous_end = pieces[first - 1].end
        # Overlap never reaches back into the previous page: a chunk's first page is where its
        # own content is, so citations open the page that holds it.
        lowest_page = pieces[first].page
        for index in range(previous_first, first):
            piece = pieces[index]
            if previous_end - piece.start > self.overlap or piece.page < lowest_page:
                continue
            if piece.boundary >= Boundary.SENTENCE:
                return piece.start
        if pieces[first].boundary <= Boundary.CLAUSE:  # cut mid-sentence: repeat a few words
            start = self._word_overlap_start(pieces[previous_first].start, previous_end)
            if start is not None and self.layout.page_index(start) >= lowest_page:
                return start
        return content_start

    def _word_overlap_start(self, previous_start: int, previous_end: int) -> int | None:
        text = self.layout.text
        window_start = max(previous_start, previous_end - self.overlap)
        space = text.find(" ", window_start, previous_end)
        if space < 0:
            return None
        start = space + 1
        while start < previous_end and text[start].isspace():
            start += 1
        return start if start < previous_end else None

    def _path(self, first: int, end: int) -> tuple[str, ...]:
        content = next((p for p in self.pieces[first:end] if not p.is_heading), None)
        return (content or self.pieces[end - 1]).heading_path


def _draft(layout: _Layout, pages: Sequence[Page], span: _Span) -> ChunkDraft:
    text = layout.text[span.start : span.end]
    first, last = layout.page_index(span.start), layout.page_index(span.end - 1)
    return ChunkDraft(
        text=text,
        page_start=pages[first].number,
        page_end=pages[last].number,
        page_break=layout.page_starts[last] - span.start if last != first else None,
        heading_path=span.heading_path,
        char_start=span.start,
        char_end=span.end,
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )
