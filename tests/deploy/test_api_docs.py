"""docs/api.md stays true to the code: linked from the README and the architecture, its settings
exist, the `kdesk` commands it shows parse, its error statuses are the service's."""

from __future__ import annotations

import re
import shlex

from knowledge.core.settings import Settings
from tests.deploy.test_docs import parses
from tests.deploy.tools import ROOT

DOCS = ROOT / "docs" / "api.md"


def test_the_readme_and_the_architecture_link_the_api_docs() -> None:
    assert "(docs/api.md)" in (ROOT / "README.md").read_text()
    assert "(api.md)" in (ROOT / "docs" / "architecture.md").read_text()
    assert "(api.md)" in (ROOT / "docs" / "deploy.md").read_text()


def test_every_setting_named_exists() -> None:
    names = set(re.findall(r"`KDESK_(\w+)`", DOCS.read_text()))
    assert {"API_HOST", "API_PORT", "API_PUBLIC_URL", "API_KEY_DAYS"} <= names
    assert {n for n in names if n.lower() not in Settings.model_fields} == set()


def test_the_kdesk_commands_shown_parse() -> None:
    from knowledge.cli.main import build_parser

    parser = build_parser()
    lines = re.findall(r"^(kdesk (?:keys|serve)[^#\n]*)", DOCS.read_text(), re.MULTILINE)
    assert len(lines) >= 6
    for line in lines:
        optional = re.findall(r"\[([^\]]*)\]", line)  # [--user ann] [--json]: given too
        plain = re.sub(r"\[[^\]]*\]", " ", line).replace("KEY_ID", "0123456789ab")
        argv = shlex.split(plain)[1:]
        assert parses(parser, argv), line
        assert parses(parser, argv + [a for part in optional for a in shlex.split(part)]), line


def test_the_error_statuses_are_the_services() -> None:
    from knowledge.service.errors import STATUSES

    table = DOCS.read_text().split("## Errors", 1)[1].split("## Permissions", 1)[0]
    documented = {int(s) for s in re.findall(r"^\| (\d{3}) \|", table, re.MULTILINE)}
    assert {status for _, status, _ in STATUSES} <= documented
    for _, status, kind in STATUSES:
        assert re.search(rf"^\| {status} \|[^\n]*`{kind}`", table, re.MULTILINE), kind
