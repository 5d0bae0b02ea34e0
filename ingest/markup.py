"""Text formats -> ParsedDocument pages: HTML (BeautifulSoup; scripts, styles and other code
dropped, never run), Markdown (markdown-it-py, then as HTML), plain text and CSV (stdlib csv,
rows in blocks like a sheet). HTML h1-h6 and Markdown # are the headings."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator

from ingest.document import Page
from ingest.format_errors import MismatchedContentError
from ingest.sections import (
    Block,
    Heading,
    Paragraph,
    Table,
    one_line,
    paragraph_text,
    section_pages,
    sheet_pages,
)

HTML = "text/html"
MARKDOWN = "text/markdown"
TEXT = "text/plain"
CSV = "text/csv"

_DROPPED = ["script", "style", "noscript", "template", "iframe", "object", "embed", "svg"]
_DROPPED += ["canvas", "head", "select", "button", "nav"]  # code, controls, menus
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = frozenset(
    {"p", "div", "li", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "section"}
    | {"article", "header", "footer", "main", "aside", "nav", "figure", "figcaption"}
    | {"address", "form", "fieldset", "details", "summary", "hr", "body", "caption"}
)


def decode_text(data: bytes, name: str) -> str:
    """Text from UTF-8 (with or without a BOM), UTF-16 with a BOM, else Windows-1252."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16")):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if data.startswith(codecs.BOM_UTF16_BE):
        return data.decode("utf-16", errors="replace")
    if b"\x00" in data[:8192]:
        raise MismatchedContentError(f'"{name}" is not a text file: it holds binary data.')
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


# --- HTML --------------------------------------------------------------------------------


def read_html(text: str, block_chars: int) -> tuple[str, list[Page]]:
    """(the <title> or "", the pages)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "lxml")
    title = one_line(soup.title.get_text(" ")) if soup.title else ""
    for tag in soup.find_all(_DROPPED):
        tag.decompose()
    walker = _HtmlBlocks()
    blocks = [*walker.walk(soup), *walker.flush()]
    return title, section_pages(blocks, block_chars)


class _HtmlBlocks:
    """Walks the tree in order: headings, tables and block elements end the running text."""

    def __init__(self) -> None:
        self.inline: list[str] = []

    def walk(self, node: object) -> Iterator[Block]:
        from bs4.element import NavigableString, PreformattedString, Tag

        for child in getattr(node, "children", ()):
            if isinstance(child, PreformattedString):  # comments, doctype, CDATA
                continue
            if isinstance(child, NavigableString):
                self.inline.append(str(child))
            elif isinstance(child, Tag):
                yield from self._tag(child)

    def _tag(self, tag: object) -> Iterator[Block]:
        name = getattr(tag, "name", "")
        if name == "br":
            self.inline.append("\n")
        elif name in _HEADINGS:
            yield from self.flush()
            yield Heading(_HEADINGS[name], one_line(tag.get_text(" ")))  # type: ignore[attr-defined]
        elif name == "table":
            yield from self.flush()
            yield Table(_html_rows(tag))
        elif name in _BLOCKS:
            yield from self.flush()
            yield from self.walk(tag)
            yield from self.flush()
        else:
            yield from self.walk(tag)

    def flush(self) -> Iterator[Block]:
        text = paragraph_text("".join(self.inline).replace("\xa0", " "))
        self.inline = []
        if text:
            yield Paragraph(text)


def _html_rows(table: object) -> tuple[tuple[str, ...], ...]:
    rows = []
    for row in table.find_all("tr"):  # type: ignore[attr-defined]
        if row.find_parent("table") is not table:
            continue  # a row of a table nested in a cell: part of that cell's text
        cells = row.find_all(["th", "td"], recursive=False)
        rows.append(tuple(one_line(cell.get_text(" ")) for cell in cells))
    return tuple(rows)


# --- Markdown, text, CSV -----------------------------------------------------------------


def read_markdown(text: str, block_chars: int) -> tuple[str, list[Page]]:
    from markdown_it import MarkdownIt

    # html=True: raw HTML in the file goes through the HTML reader, which drops scripts
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    _, pages = read_html(html, block_chars)
    return "", pages


def read_text(text: str) -> list[Page]:
    """Form feeds separate pages; the chunker finds headings as it does in PDFs."""
    parts = [part.strip("\n") for part in text.replace("\r\n", "\n").split("\f")]
    return [Page(number, part) for number, part in enumerate(parts, start=1)]


def read_csv(text: str, block_chars: int, max_pages: int | None) -> list[Page]:
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = enumerate(csv.reader(io.StringIO(text), dialect), start=1)
    pages: list[Page] = []
    for page in sheet_pages("", rows, block_chars, 1):
        pages.append(page)
        if max_pages is not None and len(pages) > max_pages:
            break  # the reader reports it as too large
    return pages
