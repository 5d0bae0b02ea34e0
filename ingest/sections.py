"""Documents whose structure is known -> pages the chunker reads exactly.

Headings, paragraphs and tables (DOCX, HTML, Markdown) become one page per top-level section,
labelled by its heading, with the headings marked on the page (``Page.headings``). A table is
one line per row, its cells separated by ``CELL_SEPARATOR``, cut into blocks of rows that each
begin with the header row, so every chunk holding rows holds their header. Rows of a sheet
(XLSX, CSV) become pages of their own: a block of rows sized to fit a chunk, header on top,
labelled by sheet and rows ("Rates, rows 2-41")."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ingest.document import Page
from ingest.marked import CELL_SEPARATOR

PREAMBLE_LABEL = "beginning"  # the text before a document's first heading
MAX_LABEL_CHARS = 80


@dataclass(frozen=True)
class Heading:
    level: int  # 1 is outermost
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    rows: tuple[tuple[str, ...], ...]  # the first is the header


Block = Heading | Paragraph | Table


def one_line(text: str) -> str:
    return " ".join(text.split())


def paragraph_text(text: str) -> str:
    """Lines kept, blank lines dropped (a blank line would end the paragraph)."""
    return "\n".join(line for line in (one_line(raw) for raw in text.splitlines()) if line)


def row_line(cells: Sequence[str]) -> str:
    return CELL_SEPARATOR.join(one_line(cell) for cell in cells)


def table_blocks(rows: Sequence[Sequence[str]], block_chars: int) -> list[str]:
    """The rows as lines, in blocks of at most ``block_chars`` that each start with the header."""
    lines = [row_line(row) for row in rows if any(cell.strip() for cell in row)]
    if not lines:
        return []
    header, blocks = lines[0], []
    block = [header]
    for line in lines[1:]:
        if len(block) > 1 and sum(len(x) + 1 for x in block) + len(line) > block_chars:
            blocks.append("\n".join(block))
            block = [header]
        block.append(line)
    blocks.append("\n".join(block))
    return blocks


def section_pages(blocks: Iterable[Block], block_chars: int) -> list[Page]:
    """One page per section at the shallowest heading level used more than once (else the
    shallowest), so a single title heading does not make the whole document one section."""
    items = [b for b in blocks if not isinstance(b, Paragraph | Heading) or b.text]
    split_level = _split_level([b.level for b in items if isinstance(b, Heading)])
    sections: list[list[Block]] = [[]]
    for block in items:
        if isinstance(block, Heading) and block.level <= split_level and sections[-1]:
            sections.append([])
        sections[-1].append(block)
    pages = []
    for number, section in enumerate((s for s in sections if s), start=1):
        first = section[0]
        label = first.text if isinstance(first, Heading) else PREAMBLE_LABEL
        pages.append(blocks_page(number, section, block_chars, short_label(label)))
    return pages


def blocks_page(number: int, blocks: Sequence[Block], block_chars: int, label: str) -> Page:
    """A page of blocks separated by blank lines, its headings marked."""
    texts: list[str] = []
    for block in blocks:
        if isinstance(block, Table):
            texts.extend(table_blocks(block.rows, block_chars))
        elif block.text:
            texts.append(block.text)
    headings = tuple((b.level, b.text) for b in blocks if isinstance(b, Heading) and b.text)
    return Page(number, "\n\n".join(texts), label, headings=headings)


def short_label(label: str) -> str:
    if len(label) <= MAX_LABEL_CHARS:
        return label
    return label[:MAX_LABEL_CHARS].rsplit(" ", 1)[0] + "…"


def _split_level(levels: list[int]) -> int:
    repeated = [level for level in set(levels) if levels.count(level) > 1]
    return min(repeated or levels or [0])


def sheet_pages(
    sheet: str, rows: Iterable[tuple[int, Sequence[str]]], block_chars: int, first_number: int
) -> Iterator[Page]:
    """Pages of ``(row number, cells)``: blocks of rows under the sheet's first non-empty row
    (the header), each no longer than ``block_chars`` (at least one row)."""
    header: str | None = None
    block: list[tuple[int, str]] = []
    size, number = 0, first_number
    for row_number, cells in rows:
        if not any(str(cell).strip() for cell in cells):
            continue
        line = row_line(_without_trailing_blanks([str(cell) for cell in cells]))
        if header is None:
            header, size = line, len(line) + 1
            continue
        if block and size + len(line) + 1 > block_chars:
            yield _sheet_page(number, sheet, header, block)
            block, size, number = [], len(header) + 1, number + 1
        block.append((row_number, line))
        size += len(line) + 1
    if header is not None:
        yield _sheet_page(number, sheet, header, block)


def _without_trailing_blanks(cells: list[str]) -> list[str]:
    while cells and not cells[-1].strip():
        cells.pop()
    return cells


def _sheet_page(number: int, sheet: str, header: str, block: list[tuple[int, str]]) -> Page:
    text = "\n".join([header, *(line for _, line in block)])
    if not block:
        rows = "header row only"
    elif block[0][0] == block[-1][0]:
        rows = f"row {block[0][0]}"
    else:
        rows = f"rows {block[0][0]}-{block[-1][0]}"
    return Page(number, text, f"{sheet}, {rows}" if sheet else rows, headings=())
