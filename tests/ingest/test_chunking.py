"""chunk_pages: exact offsets, honest page spans, headings, sizes, overlap, speed."""

from __future__ import annotations

import hashlib
import random
import re
import statistics
from collections.abc import Sequence

import pytest

from ingest.chunking import ChunkDraft, chunk_pages
from ingest.document import Page
from ingest.lines import document_text, statement_common_name
from ingest.pdf import parse_pdf
from tests.pdfs import make_pdf

SIZE, OVERLAP = 900, 120
WORDS = [
    *("the", "supplier", "shall", "deliver", "goods", "services", "and", "reports", "to"),
    *("the", "customer", "within", "thirty", "days", "of", "any", "written", "request"),
    *("including", "all", "updates", "maintenance", "and", "support", "for", "every"),
]


def _sentence(rng: random.Random, words: int | None = None) -> str:
    count = words if words is not None else rng.randint(6, 28)
    return " ".join(rng.choice(WORDS) for _ in range(count)).capitalize() + "."


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng) for _ in range(sentences))


def _wrapped(text: str, width: int = 90) -> str:
    """Lines as a PDF extractor gives them: hard-wrapped, no blank lines."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*lines, line])


def _document(pages: int = 30, seed: int = 1) -> list[Page]:
    rng = random.Random(seed)
    result = []
    for number in range(1, pages + 1):
        parts = [f"{number}. Section Number {number}"]
        for _ in range(rng.randint(1, 4)):
            parts.append(_wrapped(_paragraph(rng, rng.randint(1, 9))))
        result.append(Page(number, "\n".join(parts)))
    return result


def _page_of(pages: Sequence[Page], offset: int) -> int:
    position = 0
    for page in pages:
        if offset < position + len(page.text) + 2:
            return page.number
        position += len(page.text) + 2
    raise AssertionError("offset beyond the document")


def _assert_well_formed(
    pages: Sequence[Page], chunks: list[ChunkDraft], size: int, overlap: int
) -> None:
    joined = document_text(pages)
    for chunk in chunks:
        assert joined[chunk.char_start : chunk.char_end] == chunk.text
        assert chunk.text.strip() == chunk.text and chunk.text
        assert len(chunk.text) <= size + overlap
        assert chunk.page_start == _page_of(pages, chunk.char_start)
        assert chunk.page_end == _page_of(pages, chunk.char_end - 1)
        assert 0 <= chunk.page_end - chunk.page_start <= 1
        assert chunk.content_hash == hashlib.sha256(chunk.text.encode()).hexdigest()
    starts = [c.char_start for c in chunks]
    assert starts == sorted(starts)


# --- offsets, pages, sizes ----------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("size", "overlap"), [(900, 120), (300, 50), (2000, 0)])
def test_chunks_are_exact_slices_within_limits(seed: int, size: int, overlap: int) -> None:
    pages = _document(seed=seed)
    chunks = chunk_pages(pages, size=size, overlap=overlap)
    _assert_well_formed(pages, chunks, size, overlap)


def test_every_word_of_the_document_is_in_some_chunk() -> None:
    pages = _document(12)
    chunks = chunk_pages(pages, size=SIZE, overlap=OVERLAP)
    joined = document_text(pages)
    covered = bytearray(len(joined))
    for chunk in chunks:
        covered[chunk.char_start : chunk.char_end] = b"\x01" * len(chunk.text)
    uncovered = "".join(ch for ch, hit in zip(joined, covered, strict=True) if not hit)
    assert uncovered.strip() == ""


def test_mean_chunk_length_stays_reasonable_at_defaults() -> None:
    chunks = chunk_pages(_document(60))
    assert statistics.mean(len(c.text) for c in chunks) <= 1200
    assert max(len(c.text) for c in chunks) <= SIZE + OVERLAP


def test_a_chunk_never_spans_more_than_two_pages() -> None:
    tiny_pages = [Page(n, f"Tiny page {n} says hello.") for n in range(1, 41)]
    chunks = chunk_pages(tiny_pages, size=SIZE, overlap=OVERLAP)
    _assert_well_formed(tiny_pages, chunks, SIZE, OVERLAP)
    assert {c.page_end - c.page_start for c in chunks} == {1}


def test_known_sentence_is_attributed_to_its_page() -> None:
    rng = random.Random(5)
    marker = "The vault combination changes every Tuesday at noon."
    pages = [
        Page(
            n,
            _wrapped(_paragraph(rng, 6) + (f" {marker} " if n == 3 else " ") + _paragraph(rng, 6)),
        )
        for n in range(1, 6)
    ]
    chunks = chunk_pages(pages, size=SIZE, overlap=OVERLAP)
    holders = [c for c in chunks if marker in " ".join(c.text.split())]
    assert holders
    assert all(c.page_start <= 3 <= c.page_end for c in holders)


def test_parsed_pdf_pages_chunk_back_to_the_right_page() -> None:
    sentences = [f"Unique fact number {n} lives on page {n} only." for n in range(1, 5)]
    filler = " ".join(f"Padding sentence {k} adds some bulk to the page." for k in range(25))
    parsed = parse_pdf(make_pdf([f"{filler} {s} {filler}" for s in sentences]), "p.pdf")
    chunks = chunk_pages(parsed.pages)
    for number, sentence in enumerate(sentences, start=1):
        holders = [c for c in chunks if sentence in " ".join(c.text.split())]
        assert holders and all(c.page_start <= number <= c.page_end for c in holders)


def test_empty_and_blank_pages_give_no_chunks() -> None:
    assert chunk_pages([]) == []
    assert chunk_pages([Page(1, ""), Page(2, "   \n  ")]) == []
    chunks = chunk_pages([Page(1, ""), Page(2, "Only page two has text."), Page(3, "")])
    assert [(c.text, c.page_start, c.page_end) for c in chunks] == [
        ("Only page two has text.", 2, 2)
    ]


def test_invalid_sizes_are_rejected() -> None:
    with pytest.raises(ValueError):
        chunk_pages([Page(1, "x")], size=100, overlap=100)
    with pytest.raises(ValueError):
        chunk_pages([Page(1, "x")], size=0, overlap=0)


# --- headings -----------------------------------------------------------------------------


def _contract(rng: random.Random) -> list[Page]:
    def section(heading: str, paragraphs: int) -> str:
        body = "\n".join(_wrapped(_paragraph(rng, 5)) for _ in range(paragraphs))
        return f"{heading}\n{body}"

    page_one = "\n".join(
        [
            "ARTICLE I DEFINITIONS",
            section("1.1 Scope of Services", 2),
            section("1.2 Delivery Terms", 2),
        ]
    )
    page_two = "\n".join(
        [
            "ARTICLE II PAYMENT",
            section("2.1 Fees", 2),
            "FEE SCHEDULE",
            _wrapped("Invoices are payable within thirty days. " + _paragraph(rng, 3)),
        ]
    )
    return [Page(1, page_one), Page(2, page_two)]


def test_heading_path_follows_numbering_depth() -> None:
    chunks = chunk_pages(_contract(random.Random(2)), size=SIZE, overlap=OVERLAP)
    paths = {c.heading_path for c in chunks}
    assert ("ARTICLE I DEFINITIONS", "1.1 Scope of Services") in paths
    assert ("ARTICLE I DEFINITIONS", "1.2 Delivery Terms") in paths
    assert ("ARTICLE II PAYMENT", "2.1 Fees") in paths
    invoices = next(c for c in chunks if "Invoices are payable" in c.text)
    assert invoices.heading_path == ("ARTICLE II PAYMENT", "2.1 Fees", "FEE SCHEDULE")


def test_chunks_prefer_to_start_at_headings() -> None:
    chunks = chunk_pages(_contract(random.Random(2)), size=SIZE, overlap=OVERLAP)
    for heading in ("1.2 Delivery Terms", "ARTICLE II PAYMENT", "2.1 Fees"):
        holder = next(c for c in chunks if heading in c.text)
        assert holder.text.startswith(heading) or holder.text.startswith("ARTICLE II")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Section 4 Termination", ("Section 4 Termination",)),
        ("Article 12", ("Article 12",)),
        ("ARTICLE V", ("ARTICLE V",)),
        ("3. CONFIDENTIALITY", ("3. CONFIDENTIALITY",)),
        ("Governing Law", ("Governing Law",)),
        (
            "Item 2. Management's Discussion and Analysis",
            ("Item 2. Management's Discussion and Analysis",),
        ),
    ],
)
def test_heading_styles_are_recognised(line: str, expected: tuple[str, ...]) -> None:
    text = f"{line}\nThe clause text follows here in full."
    chunks = chunk_pages([Page(1, text)])
    assert chunks[0].heading_path == expected


@pytest.mark.parametrize(
    "line",
    [
        "the parties agree that the",  # a wrapped sentence fragment
        "Article IX Put Option 19",  # a table-of-contents entry
        "1. The Company shall:",  # the start of a list
    ],
)
def test_ordinary_lines_are_not_headings(line: str) -> None:
    text = f"{line}\nmore words end the sentence here."
    assert chunk_pages([Page(1, text)])[0].heading_path == ()


def test_heading_path_is_the_one_in_effect_where_the_content_begins() -> None:
    text = "Closing words of an earlier part.\nGoverning Law\nThis agreement is governed by law."
    assert chunk_pages([Page(1, text)])[0].heading_path == ()
    pages = [Page(1, "Governing Law\nThis agreement is governed by law."), Page(2, "More text.")]
    assert [c.heading_path for c in chunk_pages(pages)] == [("Governing Law",)]


# --- splitting and overlap ----------------------------------------------------------------


def test_huge_paragraph_is_split_at_sentence_ends() -> None:
    rng = random.Random(9)
    paragraph = _wrapped(_paragraph(rng, 80))
    chunks = chunk_pages([Page(1, paragraph)], size=SIZE, overlap=OVERLAP)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.text.endswith(".")
        assert chunk.text[0].isupper()


def test_overlap_repeats_whole_trailing_sentences() -> None:
    rng = random.Random(4)
    sentences = [_sentence(rng, rng.randint(5, 9)) for _ in range(120)]
    text = " ".join(sentences)
    chunks = chunk_pages([Page(1, text)], size=SIZE, overlap=OVERLAP)
    overlaps = 0
    for previous, chunk in zip(chunks, chunks[1:], strict=False):
        shared = previous.char_end - chunk.char_start
        assert shared <= OVERLAP
        if shared > 0:
            overlaps += 1
            repeated = text[chunk.char_start : previous.char_end]
            assert re.fullmatch(r"([A-Z][^.]*\.\s*)+", repeated)
    assert overlaps >= len(chunks) - 2


def test_no_overlap_when_disabled() -> None:
    chunks = chunk_pages(_document(10), size=400, overlap=0)
    for previous, chunk in zip(chunks, chunks[1:], strict=False):
        assert chunk.char_start > previous.char_end


def test_sentence_without_punctuation_is_split_between_words() -> None:
    rng = random.Random(3)
    words = " ".join(rng.choice(WORDS) for _ in range(1500))
    chunks = chunk_pages([Page(1, words)], size=SIZE, overlap=OVERLAP)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.char_start == 0 or words[chunk.char_start - 1] == " "
        assert chunk.char_end == len(words) or words[chunk.char_end] == " "
        assert len(chunk.text) <= SIZE + OVERLAP
    # mid-sentence cuts still repeat a few words for context
    assert all(b.char_start < a.char_end for a, b in zip(chunks, chunks[1:], strict=False))


def test_a_giant_word_is_cut_anyway() -> None:
    chunks = chunk_pages([Page(1, "x" * 2500)], size=SIZE, overlap=OVERLAP)
    assert "".join(c.text for c in chunks) == "x" * 2500
    assert all(len(c.text) <= SIZE for c in chunks)


def test_tables_stay_together_when_they_fit() -> None:
    rng = random.Random(6)
    intro = _wrapped(_paragraph(rng, 7))
    rows = [
        f"Region {name} {rng.randint(100, 999):,} {rng.randint(100, 999):,} {rng.randint(1, 99)}%"
        for name in ("North", "South", "East", "West", "Central", "Overseas", "Online")
    ]
    table = "\n".join(["Three Months Ended", "2023 2022 Change", *rows])
    outro = _wrapped(_paragraph(rng, 6))
    pages = [Page(1, f"{intro}\n{table}\n{outro}")]
    chunks = chunk_pages(pages, size=SIZE, overlap=OVERLAP)
    _assert_well_formed(pages, chunks, SIZE, OVERLAP)
    holders = [c for c in chunks if rows[0] in c.text]
    assert len(holders) == 1
    assert all(row in holders[0].text for row in rows)


def test_big_tables_are_cut_between_rows() -> None:
    rows = [f"Line item {n} {n * 1000:,} {n * 7:,}" for n in range(1, 120)]
    text = "\n".join(rows)
    chunks = chunk_pages([Page(1, text)], size=SIZE, overlap=OVERLAP)
    assert len(chunks) > 1
    for chunk in chunks:
        assert all(line in rows for line in chunk.text.split("\n"))


# --- determinism and speed ----------------------------------------------------------------


def test_chunking_is_deterministic() -> None:
    pages = _document(20, seed=11)
    assert chunk_pages(pages) == chunk_pages(list(pages))


def test_a_thousand_pages_chunk_into_valid_spans() -> None:
    # speed is measured by `kdesk bench`, never asserted here
    pages = _document(1000, seed=8)
    chunks = chunk_pages(pages)
    assert chunks and all(c.page_end - c.page_start <= 1 for c in chunks)


def test_two_page_chunks_know_where_the_second_page_begins() -> None:
    pages = [Page(1, "Short first page ends here."), Page(2, "Second page sentence follows.")]
    [chunk] = chunk_pages(pages, size=900, overlap=0)
    assert (chunk.page_start, chunk.page_end) == (1, 2)
    assert chunk.page_break is not None
    assert chunk.text[chunk.page_break :].startswith("Second page")
    assert chunk.page_at(0) == 1 and chunk.page_at(chunk.page_break) == 2


# --- tables with column headers and statement titles --------------------------------------


def _statement_page(title: str, rows: int) -> str:
    header = ["(In millions)", "Three Months Ended Nine Months Ended", "September 30,", "2024 2023"]
    lines = [f"Operating line item {n} {n * 1_001:,} {n * 997:,}" for n in range(1, rows + 1)]
    return "\n".join([title, *header, *lines])


def test_rows_of_a_split_table_keep_its_column_header() -> None:
    page = _statement_page("CONDENSED CONSOLIDATED STATEMENTS OF OPERATIONS (Unaudited)", 90)
    pages = [Page(1, page)]
    chunks = chunk_pages(pages, size=SIZE, overlap=OVERLAP)
    _assert_well_formed(pages, chunks, SIZE, OVERLAP)
    assert len(chunks) >= 3
    header = "(In millions) Three Months Ended Nine Months Ended September 30, 2024 2023"
    first, *rest = chunks
    assert "Three Months Ended" in first.text and header not in first.heading_path
    for chunk in rest:  # the text stays an exact slice; the header rides in the heading path
        assert "Three Months Ended" not in chunk.text
        assert chunk.heading_path[-1] == header
        assert all(line.startswith("Operating line item") for line in chunk.text.split("\n"))


def test_a_table_that_fits_gets_no_column_header_path() -> None:
    page = _statement_page("CONDENSED CONSOLIDATED BALANCE SHEETS", 5)
    [chunk] = chunk_pages([Page(1, page)], size=SIZE, overlap=OVERLAP)
    assert chunk.heading_path == ("CONDENSED CONSOLIDATED BALANCE SHEETS",)


def test_statement_titles_are_headings_with_their_everyday_name() -> None:
    """The title above a table's column header is its heading, not a caption; the rows' own
    labels ("Financing") nest under it."""
    cash = _statement_page("CONDENSED CONSOLIDATED STATEMENTS OF CASH FLOWS (Unaudited)", 40)
    cash = cash.replace("Operating line item 20 ", "Financing\nOperating line item 20 ")
    pages = [Page(1, _statement_page("Consolidated Statements of Income", 10)), Page(2, cash)]
    chunks = chunk_pages(pages, size=SIZE, overlap=OVERLAP)
    first = chunks[0].heading_path
    assert first == ("Consolidated Statements of Income · income statement",)
    cash_title = "CONDENSED CONSOLIDATED STATEMENTS OF CASH FLOWS (Unaudited) · cash flow statement"
    on_page_2 = [c.heading_path for c in chunks if c.page_start == 2]
    assert on_page_2 and all(path[0] == cash_title for path in on_page_2)


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("CASH FLOWS STATEMENTS", "cash flow statement"),
        ("Consolidated Statements of Operations", "income statement"),
        ("Statements of Financial Position", "balance sheet"),
        ("CONDENSED CONSOLIDATED BALANCE SHEETS", None),  # it says so already
        (
            "Notes to Condensed Consolidated Financial Statements (Continued)",
            "financial statement notes",
        ),
        ("Consolidated Statements of Operations and Comprehensive Income", "income statement"),
        (
            "CONSOLIDATED STATEMENTS OF COMPREHENSIVE INCOME (LOSS)",
            "comprehensive income statement",
        ),
        ("Three Months Ended", None),  # not a statement
        ("Policy Statement", None),
        ("Statement of Work", None),
        ("The statements of operations show a loss", None),
    ],
)
def test_statement_common_names(title: str, name: str | None) -> None:
    assert statement_common_name(title) == name
