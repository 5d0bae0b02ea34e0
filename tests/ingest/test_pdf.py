"""parse_pdf: text per page, titles, clean-up, and a specific error for every bad file."""

from __future__ import annotations

import hashlib
import random
import zipfile
from io import BytesIO

import pytest

from ingest import pdf as pdf_module
from ingest.pdf import (
    CorruptPdfError,
    EmptyPdfError,
    EncryptedPdfError,
    Engine,
    NeedsOcrError,
    NotAPdfError,
    NoTextError,
    PdfError,
    TooLargeError,
    parse_pdf,
)
from ingest.pdf_text import choose_title, normalise_page_text, remove_running_lines
from tests.pdfs import make_pdf, make_scanned_pdf, make_zero_page_pdf

ENGINES: list[Engine] = ["pdfium", "pypdf"]

PAGE_SENTENCES = [
    "The apple orchard covers twelve hectares near the river.",
    "Quarterly revenue rose by eight percent compared with last year.",
    "Employees must badge in at the north entrance before nine.",
    "The backup generator is tested on the first Monday of each month.",
    "Visitors are escorted at all times inside the laboratory.",
]


def _body(sentence: str, filler_sentences: int = 12) -> str:
    filler = " ".join(
        f"Filler sentence {n} keeps this paragraph long enough to wrap."
        for n in range(1, 1 + filler_sentences)
    )
    return f"{sentence} {filler}"


# --- page provenance ----------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_each_sentence_comes_back_on_its_own_page(engine: Engine) -> None:
    data = make_pdf([_body(s) for s in PAGE_SENTENCES], title="Provenance")

    parsed = parse_pdf(data, "provenance.pdf", engine=engine)

    assert parsed.page_count == len(PAGE_SENTENCES)
    assert [p.number for p in parsed.pages] == [1, 2, 3, 4, 5]
    for page, sentence in zip(parsed.pages, PAGE_SENTENCES, strict=True):
        found_on = [p.number for p in parsed.pages if sentence in " ".join(p.text.split())]
        assert found_on == [page.number]
    assert parsed.engine == engine
    assert parsed.pages_without_text == ()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_very_long_page_stays_one_page(engine: Engine) -> None:
    long_page = " ".join(f"Sentence {n} of the long page." for n in range(600))
    data = make_pdf(["Short first page.", long_page, "Third page closes the document."])

    parsed = parse_pdf(data, "long.pdf", engine=engine)

    assert parsed.page_count == 3
    assert "Sentence 599 of the long page." in parsed.pages[1].text
    assert "Third page closes the document." in parsed.pages[2].text


def test_checksum_is_the_sha256_of_the_bytes() -> None:
    data = make_pdf(["Checksum page."])
    assert parse_pdf(data, "c.pdf").sha256 == hashlib.sha256(data).hexdigest()


def test_both_engines_agree_on_simple_text() -> None:
    data = make_pdf([_body(s, 3) for s in PAGE_SENTENCES[:2]])
    by_pdfium = parse_pdf(data, "a.pdf", engine="pdfium")
    by_pypdf = parse_pdf(data, "a.pdf", engine="pypdf")
    assert [" ".join(p.text.split()) for p in by_pdfium.pages] == [
        " ".join(p.text.split()) for p in by_pypdf.pages
    ]


# --- title --------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_metadata_title_wins_when_meaningful(engine: Engine) -> None:
    data = make_pdf(["SOMETHING ELSE\nBody text here."], title="Travel Expense Policy")
    assert parse_pdf(data, "x.pdf", engine=engine).title == "Travel Expense Policy"


@pytest.mark.parametrize(
    "junk", ["Microsoft Word - policy_v3.doc", "untitled", "", "0000320193-23-000006", "scan.pdf"]
)
def test_junk_metadata_title_falls_back_to_the_first_line(junk: str) -> None:
    data = make_pdf(
        ["Remote Work Guidelines\nStaff may work remotely two days a week."], title=junk
    )
    assert parse_pdf(data, "x.pdf").title == "Remote Work Guidelines"


def test_front_matter_lines_are_skipped_when_looking_for_a_title() -> None:
    first_page = "Exhibit 10.4\nCONFIDENTIAL\nMASTER SUPPLY AGREEMENT\nThis agreement is made."
    data = make_pdf([first_page])
    assert parse_pdf(data, "x.pdf").title == "MASTER SUPPLY AGREEMENT"


def test_wrapped_all_caps_title_is_joined() -> None:
    first_page = (
        "RISK MANAGEMENT GUIDELINES FOR\nBANKS AND FINANCIAL INSTITUTIONS\nIntroduction follows."
    )
    data = make_pdf([first_page])
    assert parse_pdf(data, "x.pdf").title == (
        "RISK MANAGEMENT GUIDELINES FOR BANKS AND FINANCIAL INSTITUTIONS"
    )


def test_file_name_is_the_last_resort_title() -> None:
    data = make_pdf(["this first line is an ordinary sentence, not a title."])
    assert parse_pdf(data, "reports/2023_Q1_AAPL.PDF").title == "2023 Q1 AAPL"


def test_choose_title_prefers_metadata_then_page_then_file_name() -> None:
    assert choose_title("Board Charter", ["Other Title"], "f.pdf") == "Board Charter"
    assert choose_title("untitled", ["Board Charter\ntext"], "f.pdf") == "Board Charter"
    assert choose_title("", ["the board meets monthly."], "board_charter.pdf") == "board charter"
    assert choose_title("", ["", "", ""], "") == "Untitled document"


# --- text clean-up ------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_words_broken_at_line_ends_are_mended(engine: Engine) -> None:
    page = "This is an exam-\nple of hyphenation with a non-\nexclusive licence from Gramm-\nLeach."
    parsed = parse_pdf(make_pdf([page]), "h.pdf", engine=engine)
    text = " ".join(parsed.pages[0].text.split())
    assert "example of hyphenation" in text
    assert "non-exclusive licence" in text
    assert "Gramm-Leach" in text


def test_normalise_page_text() -> None:
    raw = (
        "Title\r\nline  with   spaces\x00 and\ttab\r\n\r\n\r\n\r\nnext\xa0para exam\x02ple\x0cend  "
    )
    assert normalise_page_text(raw) == ("Title\nline with spaces and tab\n\nnext para example\nend")


def test_normalise_keeps_real_hyphens_and_numbers() -> None:
    assert normalise_page_text("person-to\x02person, §60-\n300.5, NY 10003\xad1502") == (
        "person-to-person, §60-300.5, NY 10003-1502"
    )


# --- running headers and footers ----------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_running_header_footer_and_page_numbers_are_removed(engine: Engine) -> None:
    bodies = [_body(s, 2) for s in PAGE_SENTENCES]
    data = make_pdf(bodies, header="ACME Corp Internal Use Only", footer="Page {page} of 5")

    parsed = parse_pdf(data, "hf.pdf", engine=engine)

    for page, sentence in zip(parsed.pages, PAGE_SENTENCES, strict=True):
        assert "ACME Corp" not in page.text
        assert "Page " not in page.text
        assert sentence in " ".join(page.text.split())


def _page_body(n: int) -> str:
    return "\n".join(f"{word} fact number {n}." for word in ("First", "Second", "Third", "Last"))


def test_bare_page_numbers_and_numbered_footers_repeat_and_go() -> None:
    pages = [f"{n}\n{_page_body(n)}\nAcme | Q1 Report | {n}" for n in range(1, 7)]
    pages[0] = _page_body(1)  # the cover has neither
    assert remove_running_lines(pages) == [_page_body(n) for n in range(1, 7)]


def test_running_line_removal_is_conservative() -> None:
    two_pages = ["Header\nBody one.", "Header\nBody two."]
    assert remove_running_lines(two_pages) == two_pages  # too few pages to tell

    # A line repeated in the middle of pages is content, not a header.
    middle = [
        "\n".join(["Opening words.", "Alpha line.", "Beta line.", "Repeated middle line"])
        + f"\n{_page_body(n)}"
        for n in range(6)
    ]
    middle = [text.replace("Alpha", f"Alpha {chr(65 + n)}") for n, text in enumerate(middle)]
    middle = [text.replace("Opening", f"Opening {chr(70 + n)}") for n, text in enumerate(middle)]
    middle = [text.replace("Beta", f"Beta {chr(75 + n)}") for n, text in enumerate(middle)]
    assert remove_running_lines(middle) == middle

    # A line at the edge of only a few pages stays.
    rare = [("Notice to staff\n" if n < 2 else "") + _page_body(n) for n in range(8)]
    assert remove_running_lines(rare) == rare


# --- errors -------------------------------------------------------------------------------


def test_zero_bytes_is_empty() -> None:
    with pytest.raises(EmptyPdfError, match=r"empty\.pdf.*0 bytes"):
        parse_pdf(b"", "empty.pdf")


def test_renamed_text_file_is_not_a_pdf() -> None:
    with pytest.raises(NotAPdfError, match=r"notes\.pdf.*plain text"):
        parse_pdf(b"Meeting notes\nNothing to see here.\n", "notes.pdf")


def test_renamed_office_file_is_not_a_pdf() -> None:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(NotAPdfError, match=r"report\.pdf.*ZIP.*Office") as caught:
        parse_pdf(buffer.getvalue(), "report.pdf")
    assert caught.value.reason == "not-a-pdf"


def test_pdf_header_after_a_little_junk_is_accepted() -> None:
    parsed = parse_pdf(b"\x00junk\n" + make_pdf(["Still a PDF."]), "junk.pdf")
    assert parsed.pages[0].text == "Still a PDF."


@pytest.mark.parametrize("engine", ENGINES)
def test_truncated_pdf_is_corrupt(engine: Engine) -> None:
    data = make_pdf([_body(s) for s in PAGE_SENTENCES])
    with pytest.raises(CorruptPdfError, match=r"cut\.pdf.*damaged or truncated"):
        parse_pdf(data[: len(data) // 2], "cut.pdf", engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_password_protected_pdf(engine: Engine) -> None:
    data = make_pdf(["Secret plans."], password="hunter2")
    with pytest.raises(EncryptedPdfError, match=r"locked\.pdf.*password") as caught:
        parse_pdf(data, "locked.pdf", engine=engine)
    assert caught.value.reason == "password-protected"


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_user_password_encryption_opens_normally(engine: Engine) -> None:
    data = make_pdf(
        [_body(s, 2) for s in PAGE_SENTENCES[:3]],
        title="Filed Report",
        empty_user_password_encryption=True,
    )
    parsed = parse_pdf(data, "sec.pdf", engine=engine)
    assert parsed.title == "Filed Report"
    assert PAGE_SENTENCES[2] in " ".join(parsed.pages[2].text.split())


@pytest.mark.parametrize("engine", ENGINES)
def test_scanned_pdf_without_ocr_needs_ocr(engine: Engine) -> None:
    """Without OCR options a scan is refused as needing OCR (tests/ingest/test_ocr.py reads it)."""
    with pytest.raises(NeedsOcrError, match=r'needs OCR: "scan\.pdf" has no text layer'):
        parse_pdf(make_scanned_pdf(3), "scan.pdf", engine=engine)
    assert issubclass(NeedsOcrError, NoTextError)


@pytest.mark.parametrize("engine", ENGINES)
def test_partly_scanned_pdf_reports_pages_without_text(engine: Engine) -> None:
    data = make_pdf(["Typed first page.", "", "Typed third page."], scanned_pages=[2])
    parsed = parse_pdf(data, "mixed.pdf", engine=engine)
    assert parsed.pages_without_text == (2,)
    assert parsed.pages[2].text == "Typed third page."


@pytest.mark.parametrize("engine", ENGINES)
def test_pdf_without_pages_is_empty(engine: Engine) -> None:
    with pytest.raises(EmptyPdfError, match=r"nothing\.pdf.*without any pages"):
        parse_pdf(make_zero_page_pdf(), "nothing.pdf", engine=engine)


def test_too_many_bytes() -> None:
    data = make_pdf(["Some text."])
    with pytest.raises(TooLargeError, match=r"big\.pdf.*limit is 1000 bytes") as caught:
        parse_pdf(data, "big.pdf", max_bytes=1000)
    assert (caught.value.limit, caught.value.actual, caught.value.unit) == (
        1000,
        len(data),
        "bytes",
    )
    assert parse_pdf(data, "big.pdf", max_bytes=len(data)).page_count == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_too_many_pages(engine: Engine) -> None:
    data = make_pdf(["One.", "Two.", "Three."])
    with pytest.raises(TooLargeError, match=r'"long\.pdf" has 3 pages; the limit is 2 pages'):
        parse_pdf(data, "long.pdf", engine=engine, max_pages=2)
    assert parse_pdf(data, "long.pdf", engine=engine, max_pages=3).page_count == 3


def test_other_engine_gets_a_try_when_the_first_cannot_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: object) -> object:
        raise pdf_module._UnreadableError("pdfium: simulated failure")

    monkeypatch.setattr(pdf_module, "_extract_pdfium", broken)
    parsed = parse_pdf(make_pdf(["Rescued by pypdf."]), "r.pdf", engine="pdfium")
    assert parsed.engine == "pypdf"
    assert parsed.pages[0].text == "Rescued by pypdf."


def test_a_password_complaint_decides_only_when_both_engines_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def says_password(*_: object) -> object:
        raise pdf_module._UnreadableError("pdfium: password", password_hint=True)

    def says_damaged(*_: object) -> object:
        raise pdf_module._UnreadableError("pypdf: damaged")

    monkeypatch.setattr(pdf_module, "_extract_pdfium", says_password)
    monkeypatch.setattr(pdf_module, "_extract_pypdf", says_damaged)
    with pytest.raises(EncryptedPdfError):
        parse_pdf(make_pdf(["x"]), "p.pdf")


@pytest.mark.parametrize("engine", ENGINES)
def test_damaged_bytes_never_raise_anything_but_pdf_errors(engine: Engine) -> None:
    original = make_pdf([_body(s, 2) for s in PAGE_SENTENCES[:3]], title="Fuzz")
    rng = random.Random(7)
    for _ in range(25):
        damaged = bytearray(original)
        for _ in range(15):
            damaged[rng.randrange(64, len(damaged))] = rng.randrange(256)
        try:
            parse_pdf(bytes(damaged), "fuzz.pdf", engine=engine)
        except PdfError as exc:
            assert "fuzz.pdf" in str(exc)


def test_every_error_names_its_reason() -> None:
    reasons = {
        cls.reason
        for cls in (
            NotAPdfError,
            EncryptedPdfError,
            CorruptPdfError,
            EmptyPdfError,
            NoTextError,
            NeedsOcrError,
            TooLargeError,
        )
    }
    assert len(reasons) == 7


def test_the_other_engine_is_asked_before_calling_a_file_scanned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def sees_no_text(_data: bytes, _name: str, _max_pages: int | None) -> object:
        return pdf_module._RawPdf("", [""], "pdfium")

    monkeypatch.setattr(pdf_module, "_extract_pdfium", sees_no_text)
    parsed = parse_pdf(make_pdf(["Text only pypdf can see."]), "odd-font.pdf")
    assert (parsed.engine, parsed.pages[0].text) == ("pypdf", "Text only pypdf can see.")
