"""Each format's reader: headings as heading paths, tables as rows with their header in every
chunk, one page per section / slide / block of rows with the label citations show."""

from __future__ import annotations

import pytest

from ingest.chunking import chunk_pages
from ingest.document import PDF
from ingest.marked import CELL_SEPARATOR
from ingest.reader import SUPPORTED_SUFFIXES, format_of, read_document, suffix_for
from tests.office_files import make_docx, make_pptx, make_xlsx
from tests.pdfs import make_pdf

RATES = [["City", "Daily rate", "Currency"]] + [
    [f"City number {i}", 100 + i, "EUR"] for i in range(120)
]
HEADER = CELL_SEPARATOR.join(RATES[0])


def handbook_docx() -> bytes:
    return make_docx(
        [
            ("title", "Travel Handbook"),
            ("p", "This handbook explains how employees travel for work."),
            ("h1", "Booking"),
            ("p", "Book trains and flights through the travel desk at least two weeks ahead."),
            ("h2", "Hotels"),
            ("p", "Hotels are booked by the travel desk; the rates below are the maximum."),
            ("table", RATES),
            ("h1", "Expenses"),
            ("h2", "Meals"),
            ("p", "Meals are reimbursed up to 40 euros a day with itemised receipts."),
        ]
    )


def chunks_of(data: bytes, name: str, size: int = 600):
    document = read_document(data, name, block_chars=size)
    return document, chunk_pages(document.pages, size=size, overlap=80)


def test_docx_sections_are_pages_labelled_by_their_heading():
    document, chunks = chunks_of(handbook_docx(), "handbook.docx")
    assert document.title == "Travel Handbook"
    assert document.media_type == format_of("x.docx").media_type  # type: ignore[union-attr]
    assert [p.label for p in document.pages] == ["Travel Handbook", "Booking", "Expenses"]
    meals = next(c for c in chunks if "40 euros" in c.text)
    assert meals.heading_path == ("Travel Handbook", "Expenses", "Meals")
    assert document.pages[meals.page_at(meals.text.index("40 euros")) - 1].label == "Expenses"
    booking = next(c for c in chunks if "two weeks ahead" in c.text)
    assert document.pages[booking.page_at(booking.text.index("two weeks")) - 1].label == "Booking"


def test_a_split_table_keeps_its_header_in_every_chunk():
    _, chunks = chunks_of(handbook_docx(), "handbook.docx")
    with_rows = [c for c in chunks if "City number" in c.text]
    assert len(with_rows) >= 4  # the table is far longer than one chunk
    for chunk in with_rows:
        first_row = chunk.text.index("City number")
        assert HEADER in chunk.text[:first_row], chunk.text[:200]
        assert chunk.heading_path[-1] == "Hotels"
    rows = {line for c in with_rows for line in c.text.splitlines() if "City number" in line}
    assert len(rows) == 120  # every row kept, each one line
    assert f"City number 7{CELL_SEPARATOR}107{CELL_SEPARATOR}EUR" in rows


def test_pptx_one_page_per_slide_with_its_title_as_heading():
    data = make_pptx(
        [
            ("Quarterly Review", ["Revenue grew 12 percent", "Costs fell in every region"]),
            ("Hiring Plan", ["Two engineers join in March"]),
            ("Risks", ["Supplier delays in Asia"]),
        ],
        notes=["", "Budget approved by the board"],
    )
    document, chunks = chunks_of(data, "review.pptx")
    assert document.title == "Quarterly Review"
    assert [p.label for p in document.pages] == ["slide 1", "slide 2", "slide 3"]
    assert "Budget approved by the board" in document.pages[1].text
    hiring = next(c for c in chunks if "Two engineers" in c.text)
    assert hiring.heading_path == ("Hiring Plan",)
    assert document.pages[hiring.page_at(hiring.text.index("Two engineers")) - 1].label == (
        "slide 2"
    )


def test_xlsx_pages_are_blocks_of_rows_with_the_header_on_top():
    notes = [["Note"], ["Rates are reviewed every year"]]
    data = make_xlsx({"Rates": RATES, "Notes": notes}, title="Travel Rates")
    document, chunks = chunks_of(data, "rates.xlsx", size=500)
    assert document.title == "Travel Rates"
    rate_pages = [p for p in document.pages if p.label.startswith("Rates, ")]
    assert len(rate_pages) > 3 and all(p.text.startswith(HEADER + "\n") for p in rate_pages)
    assert rate_pages[0].label.startswith("Rates, rows 2-")
    assert rate_pages[-1].label.endswith("-121")  # the sheet's own row numbers
    assert document.pages[-1].label == "Notes, row 2"
    for page in rate_pages:  # the label names exactly the rows on the page
        first, last = (int(n) for n in page.label.split("rows ")[1].split("-"))
        lines = page.text.splitlines()[1:]
        assert len(lines) == last - first + 1
        assert lines[0].startswith(f"City number {first - 2}{CELL_SEPARATOR}")
    for chunk in chunks:
        if "City number" in chunk.text:
            assert HEADER in chunk.text[: chunk.text.index("City number")]


def test_csv_rows_like_a_sheet():
    text = "Region;Revenue;Year\n" + "".join(f"Region {i};{i * 1000};2024\n" for i in range(50))
    document, _ = chunks_of(text.encode(), "revenue.csv", size=300)
    header = CELL_SEPARATOR.join(["Region", "Revenue", "Year"])
    assert all(p.text.startswith(header + "\n") for p in document.pages)
    assert document.pages[0].label.startswith("rows 2-")
    assert document.title == "revenue"  # the file name


HTML = b"""<!doctype html><html><head><title>Expense Guide</title>
<style>p { color: red }</style><script>document.write("SCRIPT TEXT")</script></head>
<body><nav>Home</nav><h1>Expenses</h1><p>Keep every receipt.<br>Scans are fine.</p>
<h2>Hotels</h2><p>Hotels cost at most 150 euros a night.</p>
<table><tr><th>City</th><th>Rate</th></tr><tr><td>Paris</td><td>180</td></tr></table>
<h2>Meals</h2><ul><li>Lunch up to 20 euros</li><li>Dinner up to 40 euros</li></ul>
<noscript>NOSCRIPT TEXT</noscript><!-- COMMENT TEXT --><script>alert("SCRIPT 2")</script>
</body></html>"""


def test_html_headings_tables_and_no_code():
    document, chunks = chunks_of(HTML, "guide.html")
    assert document.title == "Expense Guide"
    text = "\n".join(p.text for p in document.pages)
    for code in ("SCRIPT", "color: red", "NOSCRIPT", "COMMENT", "document.write"):
        assert code not in text
    assert f"City{CELL_SEPARATOR}Rate\nParis{CELL_SEPARATOR}180" in text
    assert "Keep every receipt.\nScans are fine." in text
    assert [p.label for p in document.pages] == ["Expenses", "Hotels", "Meals"]
    hotels = next(c for c in chunks if "150 euros" in c.text)
    assert hotels.heading_path[-1] == "Hotels"


def test_markdown_headings_and_tables():
    md = (
        "# Employee Handbook\n\nWelcome to the company.\n\n"
        "## Leave\n\nEmployees get twenty-five days of leave.\n\n"
        "| Type | Days |\n|---|---|\n| Sick | 10 |\n| Parental | 130 |\n\n"
        "## Remote Work\n\nRemote work is allowed two days a week.\n\n"
        "<script>steal()</script>\n"
    )
    document, chunks = chunks_of(md.encode(), "handbook.md", size=200)
    assert document.title == "Employee Handbook"
    assert [p.label for p in document.pages] == ["Employee Handbook", "Leave", "Remote Work"]
    assert f"Parental{CELL_SEPARATOR}130" in document.pages[1].text
    assert "steal" not in "".join(p.text for p in document.pages)
    remote = next(c for c in chunks if "two days a week" in c.text)
    assert remote.heading_path == ("Employee Handbook", "Remote Work")


def test_plain_text_headings_found_as_in_pdfs_and_form_feeds_are_pages():
    filler = " ".join(["Leave is planned with the team and agreed by the manager."] * 6)
    text = f"LEAVE POLICY\n\nEmployees get 25 days. {filler}\fSICK LEAVE\n\nA note. {filler}"
    document, chunks = chunks_of(text.encode("utf-8"), "leave.txt", size=300)
    assert document.title == "LEAVE POLICY"
    assert [p.text.splitlines()[0] for p in document.pages] == ["LEAVE POLICY", "SICK LEAVE"]
    assert any(c.heading_path == ("SICK LEAVE",) for c in chunks)


def test_text_in_other_encodings():
    document = read_document("Café crème, 5 €".encode("cp1252"), "menu.txt")
    assert document.pages[0].text == "Café crème, 5 €"
    document = read_document("Ünïcode text".encode("utf-16"), "u.txt")
    assert document.pages[0].text == "Ünïcode text"


def test_pdfs_still_read_as_before():
    document = read_document(make_pdf(["Page one text here.", "Page two."]), "a.pdf")
    assert document.media_type == PDF and document.page_count == 2
    assert document.page_labels == {}


def test_every_format_has_one_stored_suffix():
    assert {suffix_for(format_of(f"x{s}").media_type) for s in SUPPORTED_SUFFIXES} == {  # type: ignore[union-attr]
        ".pdf",
        ".docx",
        ".pptx",
        ".xlsx",
        ".csv",
        ".html",
        ".md",
        ".txt",
    }


@pytest.mark.parametrize("name", ["a.DOCX", "b.Md", "c.HTM"])
def test_suffixes_in_any_case(name: str):
    assert format_of(name) is not None


def _html_table() -> bytes:
    cells = "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in RATES[1:])
    head = "".join(f"<th>{h}</th>" for h in RATES[0])
    return f"<h1>Rates</h1><table><thead><tr>{head}</tr></thead>{cells}</table>".encode()


def _markdown_table() -> bytes:
    lines = [" | ".join(str(c) for c in row) for row in RATES]
    table = "\n".join([lines[0], "--- | --- | ---", *lines[1:]])
    return f"# Rates\n\nThe limits.\n\n{table}\n".encode()


@pytest.mark.parametrize(("name", "data"), [("r.html", _html_table), ("r.md", _markdown_table)])
def test_split_html_and_markdown_tables_keep_their_header(name, data):
    _, chunks = chunks_of(data(), name, size=400)
    with_rows = [c for c in chunks if "City number" in c.text]
    assert len(with_rows) >= 5
    for chunk in with_rows:
        assert HEADER in chunk.text[: chunk.text.index("City number")]
    rows = {line for c in with_rows for line in c.text.splitlines() if "City number" in line}
    assert len(rows) == 120


def test_a_sheet_that_starts_away_from_a1_keeps_its_row_numbers():
    import io

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Costs"
    sheet["B3"], sheet["C3"], sheet["D3"] = "Item", "Amount", "Note"
    sheet["B4"], sheet["C4"] = "Desk", 250
    sheet["B7"], sheet["C7"], sheet["D7"] = "Chair", 120, "ergonomic"
    buffer = io.BytesIO()
    workbook.save(buffer)
    [page] = read_document(buffer.getvalue(), "costs.xlsx").pages
    assert page.label == "Costs, rows 4-7"
    assert page.text == "Item | Amount | Note\nDesk | 250\nChair | 120 | ergonomic"
