"""The passage viewer of formats without page pictures: a page's text from its stored chunks,
the cited passage marked, nothing of the document's own markup interpreted."""

from __future__ import annotations

import pytest

from ingest.chunking import chunk_pages
from ingest.document import Page
from ingest.lines import document_text
from knowledge.core.errors import KdeskError
from knowledge.core.types import Chunk
from knowledge.search.viewer import highlighted_markdown, page_text, render_page


def stored(pages: list[Page], size: int = 200, overlap: int = 60) -> list[Chunk]:
    drafts = chunk_pages(pages, size=size, overlap=overlap)
    return [
        Chunk(
            id=f"c{i}",
            doc_id="d",
            collection="C",
            file_name="f.docx",
            title="T",
            page_start=d.page_start,
            page_end=d.page_end,
            heading_path=d.heading_path,
            char_start=d.char_start,
            char_end=d.char_end,
            text=d.text,
            content_hash=d.content_hash,
            page_break=d.page_break,
        )
        for i, d in enumerate(drafts)
    ]


SENTENCES = [f"Sentence number {i} says something about the policy." for i in range(30)]
PAGES = [
    Page(1, "Intro\n\n" + " ".join(SENTENCES[:12]), "Intro", headings=((1, "Intro"),)),
    Page(2, "Rules\n\n" + " ".join(SENTENCES[12:]), "Rules", headings=((1, "Rules"),)),
]


def test_a_page_is_pieced_together_from_overlapping_chunks():
    chunks = stored(PAGES)
    assert len(chunks) > 4  # several chunks per page, overlapping
    for page in PAGES:
        for cited in (c for c in chunks if c.page_start <= page.number <= c.page_end):
            text, start, end = page_text(chunks, page.number, cited)
            assert text == page.text
            part = cited.text if cited.page_break is None else None
            if part is not None:
                assert text[start:end] == part


def test_the_text_between_pages_is_not_mixed_in():
    pages = [Page(1, " ".join(SENTENCES[:5])), Page(2, " ".join(SENTENCES[5:9]))]
    chunks = stored(pages, size=2000, overlap=0)
    [whole] = chunks  # one chunk over both pages
    assert whole.page_break is not None
    text, start, end = page_text(chunks, 2, whole)
    assert text == pages[1].text and (start, end) == (0, len(pages[1].text))
    assert document_text(pages).endswith(text)
    text, start, end = page_text(chunks, 1, whole)
    assert text == pages[0].text and (start, end) == (0, len(pages[0].text))


def test_markup_in_the_document_is_shown_literally():
    text = "<script>alert(1)</script> **bold** [link](http://x) # not a heading\nnext line"
    shown = highlighted_markdown(text, 26, 34)
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert "<mark>\\*\\*bold\\*\\*</mark>" in shown
    assert "\\[link\\]\\(http" in shown and "\\# not" in shown
    assert shown.endswith("heading  \nnext line")


def test_only_pdf_pages_have_a_picture(tmp_path):
    original = tmp_path / "d-v1.docx"
    original.write_bytes(b"PK\x03\x04 a Word file")
    with pytest.raises(KdeskError, match="Only PDF pages"):
        render_page(original, 1)
