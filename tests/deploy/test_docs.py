"""docs/deploy.md stays true to the files: linked from the README, every setting the compose
file sets documented, the commands it names exist."""

from __future__ import annotations

import argparse
import contextlib
import io
import re

import yaml

from tests.deploy import compose
from tests.deploy.tools import DEPLOY, ROOT

DOCS = ROOT / "docs" / "deploy.md"


def test_the_readme_links_the_deploy_docs() -> None:
    assert "(docs/deploy.md)" in (ROOT / "README.md").read_text()


def test_every_compose_variable_is_in_the_environment_table() -> None:
    docs = DOCS.read_text()
    table = docs[docs.index("## Environment") : docs.index("## Without Docker")]
    names = set(compose.variables())
    for service in compose.load()["services"].values():
        names |= {k for k in compose.environment(service) if k.startswith("KDESK_")}
    missing = {name for name in names if f"`{name}`" not in table}
    assert missing == set()


def test_the_cli_commands_named_exist() -> None:
    from knowledge.cli.main import build_parser

    parser = build_parser()
    docs = DOCS.read_text()
    commands = set(re.findall(r"kdesk ((?:users|roles|db) [a-z-]+)", docs))
    assert {"users add", "users reset-password", "users bootstrap", "db upgrade"} <= commands
    for command in commands:
        assert parses(parser, command.split()) or parses(parser, [*command.split(), "NAME"]), (
            command
        )


def parses(parser: argparse.ArgumentParser, argv: list[str]) -> bool:
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit:
        return False
    return True


def test_each_alert_is_explained_in_the_monitoring_table() -> None:
    docs = DOCS.read_text()
    monitoring = docs[docs.index("## Monitoring") : docs.index("## Backup and restore")]
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    for rule in (rule for group in groups for rule in group["rules"]):
        assert f"| `{rule['alert']}` |" in monitoring, rule["alert"]
