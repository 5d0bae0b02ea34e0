"""End to end in a real browser: sign in as the first admin with the one-time password the
app printed (and choose a new one), upload a PDF on the Knowledge page, ask about it in the Chat,
watch the answer stream in, open its citation and see the cited PDF page."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import RunningApp, assert_no_automatic_pages, nav_links, nav_now
from tests.fake_ollama import FakeOllama
from tests.pages.support import (
    FILE_NAME,
    HOTEL_FACT,
    HOTEL_PAGE,
    HOTEL_QUESTION,
    MODEL,
    TITLE,
    handbook_pdf,
    sources_and_question,
)

pytestmark = pytest.mark.browser

COLLECTION = "Handbooks"
CITATION = f"[1] {TITLE} — page {HOTEL_PAGE}"
NEW_PASSWORD = "a long password of my own"
ADMIN_PAGES = ["Chat", "Knowledge", "Contracts", "Analytics", "Roles", "Admin", "Account"]


def one_time_password(app: RunningApp) -> str:
    """The first admin's one-time password, as a newcomer reads it in the terminal."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"one-time password:\s+(\S+)", app.output())
        if found:
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"the app printed no one-time password:\n{app.output()}")


def sign_in_as_the_first_admin(page, app: RunningApp) -> None:
    page.get_by_role("heading", name="Sign in").wait_for()
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password", exact=True).fill(one_time_password(app))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Choose your own password").wait_for()
    page.get_by_label(re.compile("^New password \\(at least")).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()


def nav(page, name: str) -> None:
    nav_links(page).filter(has_text=name).click()


def watch_answer(page, timeout_s: float = 120) -> list[str]:
    """The texts the assistant's message showed, in order, until its citation button appeared."""
    messages = page.locator('[data-testid="stChatMessage"]')
    text = messages.nth(1).locator('[data-testid="stMarkdownContainer"]').first
    button = page.get_by_role("button", name=CITATION)
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text.count():
            shown = text.inner_text()
            if shown and (not seen or seen[-1] != shown):
                seen.append(shown)
        if button.count():
            return seen
        time.sleep(0.05)
    raise AssertionError(f"no citation button {CITATION!r}; the answer showed {seen!r}")


def test_upload_ask_and_open_the_cited_page(
    page, app: RunningApp, ollama: FakeOllama, tmp_path: Path, screenshots: Path
):
    pdf = tmp_path / FILE_NAME
    pdf.write_bytes(handbook_pdf())

    page.goto(app.url)
    page.get_by_role("heading", name="Sign in").wait_for()
    assert_no_automatic_pages(page)  # the first screen: the form, no list of pages/
    assert nav_now(page) == []
    sign_in_as_the_first_admin(page, app)
    page.get_by_role("heading", name="Ask the knowledge base").wait_for()
    page.get_by_text("The knowledge base is empty").wait_for()
    expect(nav_links(page)).to_have_count(len(ADMIN_PAGES))
    assert nav_now(page) == ADMIN_PAGES, "app.py's navigation: the admin's pages"
    assert_no_automatic_pages(page)
    assert page.get_by_role("button", name="Deploy").count() == 0, "toolbar in viewer mode"

    # Knowledge: a new collection, one PDF, the report
    nav(page, "Knowledge")
    page.get_by_role("heading", name="Knowledge base").wait_for()
    page.get_by_text("No documents yet.").wait_for()
    page.get_by_label("New collection name").fill(COLLECTION)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(pdf)
    page.locator('[data-testid="stFileChip"]', has_text=FILE_NAME).wait_for()
    page.get_by_role("button", name="Upload and index").click()
    page.get_by_text("1 indexed, 0 failed (latest 1 uploads)").wait_for(timeout=120_000)
    # st.dataframe draws on a canvas; its accessible table (inside the canvas) has the text
    tables = page.locator('[data-testid="stDataFrame"] table')
    report, documents = tables.nth(0), tables.nth(1)
    expect(report).to_contain_text(f"{FILE_NAME}{COLLECTION}added3")
    expect(documents).to_contain_text(f"{COLLECTION}{FILE_NAME}{TITLE}33")
    page.screenshot(path=screenshots / "1-knowledge.png", full_page=True)

    # Chat: ask, watch the answer stream in
    nav(page, "Chat")
    page.get_by_role("heading", name="Ask the knowledge base").wait_for()
    box = page.get_by_placeholder(re.compile("Ask about a policy"))
    box.fill(HOTEL_QUESTION)
    box.press("Enter")
    seen = watch_answer(page)
    final = seen[-1]
    assert HOTEL_FACT in final and final.endswith("[1].")
    partial = [t for t in seen[:-1] if final.startswith(t) and HOTEL_FACT not in t]
    assert len(partial) >= 3, f"the answer did not stream in word by word: {seen!r}"
    page.get_by_text(f"Answered by ollama · {MODEL}").wait_for()
    page.screenshot(path=screenshots / "2-chat.png", full_page=True)

    [request] = ollama.chats
    sources, question = sources_and_question(request["messages"])
    assert question == HOTEL_QUESTION and HOTEL_FACT in sources[1]

    # the citation opens the cited page
    page.get_by_role("button", name=CITATION).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(f"page {HOTEL_PAGE} of 3").wait_for()
    dialog.get_by_text(HOTEL_FACT).first.wait_for()
    image = dialog.locator('[data-testid="stImage"] img')
    image.wait_for()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    width = image.evaluate("img => img.naturalWidth")
    assert width > 500, "the page is rendered as a readable picture"
    page.screenshot(path=screenshots / "3-source.png")
