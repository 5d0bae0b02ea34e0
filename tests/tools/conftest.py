"""The sample tool package (tests/plugins/kdesk_sample_tools) installed for the session as a
real distribution - pip builds and installs it into a directory put on sys.path - and a desk
with documents in two collections, users of different roles, and the built-in tools."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.access.roles import READ_TOOLS, Role
from knowledge.core.settings import Settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.pdfs import make_pdf

SAMPLE = Path(__file__).parents[1] / "plugins" / "kdesk_sample_tools"
HR_TEXT = [
    "Leave Policy\n\nFull-time employees are entitled to 25 working days of paid annual leave "
    "per year. Leave requests are approved by the team lead two weeks in advance. Unused leave "
    "days may be carried over into the first quarter of the following year.",
    "Sick Leave\n\nEmployees who are ill notify their team lead before nine in the morning. A "
    "medical certificate is required from the third day of absence onwards.",
]
LEGAL_TEXT = [
    "Settlement Memo\n\nThe settlement with Initech Corporation is confidential and amounts to "
    "4.2 million euros, payable in three instalments starting in March."
]


@pytest.fixture(scope="session")
def sample_tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``pip install --no-deps --no-build-isolation`` of the sample package (a copy, so the
    build leaves nothing in tests/) into a site directory on sys.path for the session."""
    root = tmp_path_factory.mktemp("plugins")
    source, site = root / "src", root / "site"
    shutil.copytree(SAMPLE, source)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "--target", str(site), str(source)],
        check=True,
    )
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("kdesk_sample_tools", None)


@pytest.fixture
def office(settings: Settings, embedder, model) -> Desk:
    """HR and Legal; hanna (hr: HR, the read tools), leo (counsel: Legal, no tools), root
    (admin: everything)."""
    desk = Desk(settings, embedder=embedder, model=model)
    desk.ingest([Upload("leave.pdf", make_pdf(HR_TEXT, title="Leave Policy"))], "HR")
    desk.ingest([Upload("memo.pdf", make_pdf(LEGAL_TEXT, title="Settlement Memo"))], "Legal")
    desk.roles.save(Role("hr", collections=("HR",), tools=READ_TOOLS), "test")
    desk.roles.save(Role("counsel", collections=("Legal",)), "test")
    for user, roles in (("hanna", ["hr"]), ("leo", ["counsel"]), ("root", ["admin"])):
        desk.accounts.add(user, roles, "test", password="a long test password")
    return desk
