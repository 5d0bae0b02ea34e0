"""Pictures of stored PDF pages, so a citation can open its source at the right page."""

from __future__ import annotations

import io
from pathlib import Path

from knowledge.core.errors import NotFoundError


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
