"""Word, PowerPoint and Excel files -> ParsedDocument, each with its format's own library.

DOCX: paragraphs and tables in body order, Word's heading styles as headings, one page per
top-level section (ingest/sections.py). PPTX: one page per slide ("slide 3"), its title the
heading. XLSX: each sheet's rows in blocks that fit a chunk, header row on top
("Rates, rows 2-41"). The package was checked (ingest/containers.py) before these run."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from typing import Any

from ingest.document import Page
from ingest.sections import (
    Block,
    Heading,
    Paragraph,
    Table,
    blocks_page,
    one_line,
    paragraph_text,
    section_pages,
    sheet_pages,
)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_HEADING_STYLE = re.compile(r"heading (\d)", re.IGNORECASE)


# --- DOCX --------------------------------------------------------------------------------


def read_docx(data: bytes, block_chars: int) -> tuple[str, list[Page]]:
    """(the document's title property, its pages)."""
    import docx

    document = docx.Document(io.BytesIO(data))
    styles = {style.style_id: style for style in document.styles}
    levels: dict[str | None, int | None] = {None: None}  # by style id, looked up once each
    blocks: list[Block] = []
    for item in document.iter_inner_content():
        if isinstance(item, docx.table.Table):
            blocks.append(Table(tuple(_docx_row(row, item) for row in item._tbl.tr_lst)))
            continue
        style_id = item._p.style
        if style_id not in levels:
            levels[style_id] = _docx_heading_level(styles.get(style_id))
        level = levels[style_id]
        if level is not None:
            blocks.append(Heading(level, one_line(item.text)))
        else:
            blocks.append(Paragraph(paragraph_text(item.text)))
    title = one_line(document.core_properties.title or "")
    return title, section_pages(blocks, block_chars)


def _docx_heading_level(style: Any) -> int | None:
    """Title is outermost, then Heading 1, 2, ... (a style based on one counts as it)."""
    for _ in range(4):  # custom heading styles are usually based on the built-in ones
        if style is None:
            return None
        name = style.name or ""
        if name.lower() == "title":
            return 1
        match = _HEADING_STYLE.fullmatch(name)
        if match:
            return int(match.group(1)) + 1
        style = style.base_style
    return None


def _docx_row(row: Any, table: Any) -> tuple[str, ...]:
    """The row's cells, a merged one once (python-docx's ``row.cells`` is far slower)."""
    from docx.table import _Cell

    return tuple(_Cell(tc, table).text for tc in row.tc_lst)


# --- PPTX --------------------------------------------------------------------------------


def read_pptx(data: bytes, block_chars: int) -> tuple[str, list[Page]]:
    import pptx

    presentation = pptx.Presentation(io.BytesIO(data))
    pages = []
    for number, slide in enumerate(presentation.slides, start=1):
        blocks: list[Block] = []
        title_shape = slide.shapes.title
        if title_shape is not None and one_line(title_shape.text_frame.text):
            blocks.append(Heading(1, one_line(title_shape.text_frame.text)))
        for shape in slide.shapes:
            if title_shape is None or shape.shape_id != title_shape.shape_id:
                blocks.extend(_shape_blocks(shape))
        if slide.has_notes_slide:
            notes = paragraph_text(slide.notes_slide.notes_text_frame.text)
            if notes:
                blocks.append(Paragraph(f"Notes: {notes}"))
        pages.append(blocks_page(number, blocks, block_chars, f"slide {number}"))
    return one_line(presentation.core_properties.title or ""), pages


def _shape_blocks(shape: Any) -> Iterator[Block]:
    if getattr(shape, "shapes", None) is not None:  # a group
        for inner in shape.shapes:
            yield from _shape_blocks(inner)
    elif getattr(shape, "has_table", False) and shape.has_table:
        rows = shape.table.rows
        yield Table(tuple(tuple(cell.text for cell in row.cells) for row in rows))
    elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        text = paragraph_text("\n".join(p.text for p in shape.text_frame.paragraphs))
        if text:
            yield Paragraph(text)


# --- XLSX --------------------------------------------------------------------------------


def read_xlsx(data: bytes, block_chars: int, max_pages: int | None) -> tuple[str, list[Page]]:
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        pages: list[Page] = []
        for sheet in workbook.worksheets:
            values = sheet.iter_rows(min_col=sheet.min_column or 1, values_only=True)
            rows = (
                (number, [_cell_text(v) for v in row]) for number, row in enumerate(values, start=1)
            )
            for page in sheet_pages(sheet.title, rows, block_chars, len(pages) + 1):
                pages.append(page)
                if max_pages is not None and len(pages) > max_pages:
                    return "", pages  # the reader reports it as too large
        title = one_line(workbook.properties.title or "")
    finally:
        workbook.close()
    return title, pages


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
