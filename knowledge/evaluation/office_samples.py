"""Office files written by the formats' own libraries (python-docx, python-pptx, openpyxl): the
benchmark's generated documents and the tests' samples.

``make_docx([("h1", "Travel"), ("p", "Rates apply."), ("table", [["City", "Rate"], ...])])``
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

Block = tuple[str, Any]  # ("title" | "h1".."h3" | "p", text) or ("table", rows)


def make_docx(blocks: Sequence[Block], title: str | None = None) -> bytes:
    import docx

    document = docx.Document()
    if title is not None:
        document.core_properties.title = title
    for kind, value in blocks:
        if kind == "title":
            document.add_heading(value, level=0)
        elif kind.startswith("h"):
            document.add_heading(value, level=int(kind[1:]))
        elif kind == "p":
            document.add_paragraph(value)
        elif kind == "table":
            table = document.add_table(rows=len(value), cols=len(value[0]))
            for r, row in enumerate(value):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = str(cell)
        else:
            raise ValueError(kind)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_pptx(slides: Sequence[tuple[str, Sequence[str]]], notes: Sequence[str] = ()) -> bytes:
    """One slide per (title, bullet lines)."""
    import pptx

    presentation = pptx.Presentation()
    layout = presentation.slide_layouts[1]  # title and content
    for index, (title, bullets) in enumerate(slides):
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0] if bullets else ""
        for line in bullets[1:]:
            body.add_paragraph().text = line
        if index < len(notes) and notes[index]:
            slide.notes_slide.notes_text_frame.text = notes[index]
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def make_xlsx(sheets: dict[str, Sequence[Sequence[object]]], title: str | None = None) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    if title is not None:
        workbook.properties.title = title
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
