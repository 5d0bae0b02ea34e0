"""The app as users run it: `streamlit run app.py` in a subprocess, driven by Debian's Chromium
through Playwright. The fake Ollama server runs in the test process; the app reaches it over
127.0.0.1.

Chromium is never downloaded (`playwright install` is not used): without /usr/bin/chromium (or
KDESK_CHROMIUM) the browser tests skip, unless KDESK_REQUIRE_BROWSER=1 (CI), where they fail.
Screenshots go to KDESK_SCREENSHOT_DIR when set.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.fake_ollama import FakeOllama
from tests.pages.support import MODEL, ROOT, free_port, grounded_reply

CHROMIUM = Path(os.environ.get("KDESK_CHROMIUM") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT_S = 90


@pytest.fixture(scope="session")
def chromium() -> Path:
    if CHROMIUM.is_file():
        return CHROMIUM
    reason = f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
    if os.environ.get("KDESK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"KDESK_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    # a little delay per word, so the answer visibly streams in
    with FakeOllama(reply=grounded_reply, models=[MODEL], chunk_delay=0.15) as server:
        yield server


class RunningApp:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def full_output(self) -> str:
        return self.log.read_text(errors="replace")


def _wait_healthy(app: RunningApp) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            pytest.fail(f"streamlit exited with {app.process.returncode}:\n{app.output()}")
        try:
            with urllib.request.urlopen(f"{app.url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    pytest.fail(f"streamlit did not answer /_stcore/health in {START_TIMEOUT_S}s:\n{app.output()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # the process group started for this app only
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@contextmanager
def running_app(
    folder: Path,
    ollama: FakeOllama,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    port: int | None = None,
) -> Iterator[RunningApp]:
    """`streamlit run app.py` from the repository root (so .streamlit/config.toml applies),
    its data in ``folder``, on ``port`` (else a free one); stopped (its process group) at the
    end."""
    port = port or free_port()
    full_env = {
        **os.environ,
        "KDESK_DATA_DIR": str(folder / "data"),
        "KDESK_MODEL_BACKEND": "ollama",
        "KDESK_OLLAMA_HOST": ollama.url,
        "KDESK_OLLAMA_MODEL": MODEL,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        **(env or {}),
    }
    command = [
        *(sys.executable, "-m", "streamlit", "run", "app.py"),
        *("--server.headless", "true"),
        *("--server.port", str(port)),
        *("--server.address", "127.0.0.1"),
        *("--browser.gatherUsageStats", "false"),
        *("--server.fileWatcherType", "none"),
        *args,
    ]
    log = folder / "streamlit.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = RunningApp(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_healthy(running)
        yield running
    finally:
        _stop(process)
        print(f"--- streamlit output ---\n{running.output()}")  # shown when the test fails


@pytest.fixture
def app(tmp_path: Path, ollama: FakeOllama) -> Iterator[RunningApp]:
    with running_app(tmp_path, ollama) as running:
        yield running


# Every nav entry the page ever showed, from its first paint on (a MutationObserver installed
# before the app's own scripts run): Streamlit's automatic pages/ list flashes up otherwise.
RECORD_NAV = """
window.__kdeskNavSeen = new Set();
const record = () => document
  .querySelectorAll(
    '[data-testid="stSidebarNav"] a, [data-testid="stSidebarNavLink"], [data-testid="stTopNav"] a,'
    + ' [data-testid="stPageLink-NavLink"]'
  )
  .forEach((a) => window.__kdeskNavSeen.add(a.textContent.trim()));
new MutationObserver(record).observe(
  document, {subtree: true, childList: true, characterData: true}
);
"""
# the automatic entries of the pages/ folder's modules that are no pages of their own
NOT_PAGES = {"app", "auth", "shared", "charts", "answers", "sign in", "sign_in"}


def nav_seen(tab) -> set[str]:
    """The texts of every navigation entry shown so far in this tab."""
    return set(tab.evaluate("Array.from(window.__kdeskNavSeen || [])"))


NAV_LINKS = '[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]'


def nav_links(tab) -> Any:
    """The app's navigation: the page links app.py draws in the sidebar."""
    return tab.locator(NAV_LINKS)


def nav_now(tab) -> list[str]:
    """The navigation's entries as shown now (their titles, without the icons)."""
    return [t.split(maxsplit=1)[-1] for t in nav_links(tab).all_inner_texts()]


def assert_no_automatic_pages(tab) -> None:
    seen = {name.casefold() for name in nav_seen(tab)}
    assert not seen & NOT_PAGES, f"Streamlit's automatic pages/ list showed: {sorted(seen)}"


@contextmanager
def browser_tab(chromium: Path) -> Iterator[Any]:
    """A fresh browser (own cookies) with one tab that records its navigation entries."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.add_init_script(RECORD_NAV)
            tab = context.new_page()
            tab.set_default_timeout(60_000)
            yield tab
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Path, app: RunningApp) -> Iterator[Any]:
    with browser_tab(chromium) as tab:
        yield tab


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the test saves its screenshots: KDESK_SCREENSHOT_DIR, else the test's tmp dir."""
    folder = Path(os.environ.get("KDESK_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
