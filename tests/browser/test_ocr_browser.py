"""In a real browser: a handbook whose travel page is a scan is uploaded, its report says the
page was read by OCR, and the hotel question is answered with a citation of that page, marked
OCR, whose source dialog shows the scanned page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import RunningApp
from tests.browser.test_browser import nav, sign_in_as_the_first_admin
from tests.fake_ollama import FakeOllama
from tests.ocr_engine import needs_tesseract
from tests.pages.support import FILE_NAME, HANDBOOK, HOTEL_FACT, HOTEL_PAGE, HOTEL_QUESTION, TITLE
from tests.pdfs import make_pdf

pytestmark = [pytest.mark.browser, needs_tesseract]

CITATION = f"[1] {TITLE} — page {HOTEL_PAGE} (OCR)"


def test_a_scanned_page_is_answered_and_cited_as_ocr(
    page, app: RunningApp, ollama: FakeOllama, tmp_path: Path, screenshots: Path
):
    pdf = tmp_path / FILE_NAME
    pdf.write_bytes(make_pdf(HANDBOOK, title=TITLE, image_pages=[HOTEL_PAGE]))
    page.goto(app.url)
    sign_in_as_the_first_admin(page, app)
    page.get_by_role("heading", name="Ask the knowledge base").wait_for()

    nav(page, "Knowledge")
    page.get_by_label("New collection name").fill("Handbooks")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(pdf)
    page.locator('[data-testid="stFileChip"]', has_text=FILE_NAME).wait_for()
    page.get_by_role("button", name="Upload and index").click()
    page.get_by_text("1 indexed, 0 failed (latest 1 uploads)").wait_for(timeout=180_000)
    report = page.locator('[data-testid="stDataFrame"] table').nth(0)
    read = re.compile(rf"OCR read 1 page\(s\): {HOTEL_PAGE} \(mean confidence \d+%\)")
    expect(report).to_contain_text(read)  # the canvas table's accessible copy
    page.screenshot(path=screenshots / "ocr-1-knowledge.png", full_page=True)

    nav(page, "Chat")
    box = page.get_by_placeholder(re.compile("Ask about a policy"))
    box.fill(HOTEL_QUESTION)
    box.press("Enter")
    button = page.get_by_role("button", name=CITATION)
    button.wait_for(timeout=120_000)
    answer = page.locator('[data-testid="stChatMessage"]').nth(1)
    assert HOTEL_FACT in answer.inner_text()

    button.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(f"page {HOTEL_PAGE} of 3").wait_for()
    dialog.get_by_text(re.compile(r"This page is a scan: its text was read by OCR")).wait_for()
    image = dialog.locator('[data-testid="stImage"] img')
    image.wait_for()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 500", arg=image.element_handle()
    )
    page.screenshot(path=screenshots / "ocr-2-source.png")
