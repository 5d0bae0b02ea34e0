"""Where a citation points, to show it: pictures of stored PDF pages; for other formats the
cited passage within the text of its page (slide, section, block of rows)."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from pathlib import Path

from knowledge.core.errors import NotFoundError
from knowledge.core.types import Chunk


def page_count(pdf_path: str | Path) -> int:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(pdf_path))
    try:
        return len(document)
    finally:
        document.close()


def render_page(pdf_path: str | Path, page: int, scale: float = 1.4) -> bytes:
    """PNG of a 1-based page."""
    import pypdfium2 as pdfium

    if not Path(pdf_path).is_file():
        raise NotFoundError("The original PDF is no longer stored.")
    if Path(pdf_path).suffix.lower() != ".pdf":  # a Word contract on the Contracts page
        raise NotFoundError("Only PDF pages have a picture; download the original to read it.")
    document = pdfium.PdfDocument(str(pdf_path))
    try:
        if not 1 <= page <= len(document):
            raise NotFoundError(f"The document has no page {page}.")
        image = document[page - 1].render(scale=scale).to_pil()
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    finally:
        document.close()


# --- other formats: the passage within its page's text -----------------------------------


def page_part(chunk: Chunk, page: int) -> tuple[int, int] | None:
    """The document offsets of the part of ``chunk`` on ``page`` (a chunk spans <= 2 pages)."""
    if not chunk.page_start <= page <= chunk.page_end:
        return None
    start, end = chunk.char_start, chunk.char_end
    if chunk.page_break is not None:
        if page == chunk.page_end:
            start += chunk.page_break
        else:
            end = chunk.char_start + len(chunk.text[: chunk.page_break].rstrip())
    return start, end


def page_text(chunks: Sequence[Chunk], page: int, cited: Chunk) -> tuple[str, int, int]:
    """A page's (slide's, section's, block of rows') text pieced together from its stored
    chunks, and where the cited passage is in it: (text, start, end)."""
    parts: list[tuple[int, int, Chunk]] = []
    for chunk in chunks:
        part = page_part(chunk, page)
        if part is not None:
            parts.append((*part, chunk))
    parts.sort(key=lambda item: item[:2])
    pieces: list[str] = []
    length, cursor = 0, None
    highlight = (0, 0)
    for start, end, chunk in parts:
        if cursor is not None and end <= cursor and chunk.id != cited.id:
            continue
        if cursor is not None and start > cursor:
            pieces.append("\n\n")  # only whitespace lies between two chunks
            length += 2
        skip = 0 if cursor is None or start >= cursor else cursor - start
        if chunk.id == cited.id:
            highlight = (length - skip, length - skip + end - start)
        new = chunk.text[start - chunk.char_start + skip : end - chunk.char_start]
        pieces.append(new)
        length += len(new)
        cursor = max(cursor or end, end)
    return "".join(pieces), *highlight


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~:$])")


def highlighted_markdown(text: str, start: int, end: int) -> str:
    """``text`` as Markdown that shows it literally (no markup or HTML of the document's own
    is interpreted), with [start, end) marked."""

    def literal(part: str) -> str:
        escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(part, quote=False))
        return escaped.replace("\n", "  \n")

    marked = literal(text[start:end]).replace("  \n", "</mark>  \n<mark>")
    return f"{literal(text[:start])}<mark>{marked}</mark>{literal(text[end:])}"
