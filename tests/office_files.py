"""Small Office files for tests, written by the formats' own libraries (python-docx,
python-pptx, openpyxl), and the broken ones a reader must refuse clearly.

``make_docx([("h1", "Travel"), ("p", "Rates apply."), ("table", [["City", "Rate"], ...])])``
"""

from __future__ import annotations

import io
import zipfile
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


def encrypted(data: bytes, password: str = "secret") -> bytes:
    """An OOXML file saved with a password: an OLE compound file with an EncryptedPackage."""
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(data)).encrypt(password, out)
    return out.getvalue()


def zip_bomb(main_part: str = "word/document.xml", size: int = 64 * 1024 * 1024) -> bytes:
    """A small ZIP that would unpack to ``size`` bytes of zeros under an Office part name."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open(main_part, "w", force_zip64=True) as member,
    ):
        chunk = b"\0" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            member.write(chunk)
    return buffer.getvalue()


def many_members(count: int = 10_001) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
        for i in range(count):
            archive.writestr(f"x/{i}", "")
    return buffer.getvalue()
