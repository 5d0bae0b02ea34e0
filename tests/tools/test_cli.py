"""`kdesk tools list|call` and `kdesk roles set --tools`: the command-line contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge.cli import common
from knowledge.cli import main as cli
from knowledge.desk.root import Desk


@pytest.fixture
def kdesk(office: Desk, sample_tools: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setattr(common, "open_desk", lambda: office)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_tools_list_shows_every_tool_or_a_users(kdesk):
    code, out, _ = kdesk("tools", "list", "--json")
    tools = {t["name"]: t for t in json.loads(out)["tools"]}
    assert code == 0 and {"summarise_document", "word_count", "open_ticket"} <= set(tools)
    assert (
        tools["open_ticket"]["acts"]
        and tools["open_ticket"]["source"] == "plugin:kdesk-sample-tools"
    )
    assert tools["list_documents"]["parameters"]["properties"]["tag"] == {"type": "string"}
    _, out, _ = kdesk("tools", "list", "--user", "leo")
    assert out.strip() == "No tools for leo."
    _, out, _ = kdesk("tools", "list")
    assert any(line.split()[:2] == ["open_ticket", "acts"] for line in out.splitlines())


def test_roles_set_tools_gives_a_role_its_tools(kdesk):
    code, out, _ = kdesk("roles", "set", "counsel", "--tools", "list_*, word_count")
    assert code == 0 and "tools list_*, word_count" in out
    _, out, _ = kdesk("tools", "list", "--user", "leo", "--json")
    assert [t["name"] for t in json.loads(out)["tools"]] == ["list_documents", "word_count"]
    code, out, _ = kdesk("tools", "call", "list_documents", "--user", "leo")
    assert code == 0 and "memo.pdf" in out and "leave.pdf" not in out


def test_tools_call_runs_as_the_user(kdesk):
    code, out, _ = kdesk("tools", "call", "summarise_document", "--user", "hanna",
                         "--args", '{"document": "leave.pdf"}')  # fmt: skip
    assert code == 0 and out.startswith("Summary of Leave Policy (leave.pdf):")
    assert "[1] leave.pdf, p. " in out
    code, out, _ = kdesk("tools", "call", "list_documents", "--user", "hanna", "--json")
    result = json.loads(out)
    assert result["outcome"] == "ok" and [d["file_name"] for d in result["data"]] == ["leave.pdf"]


def test_an_acting_tool_needs_yes(kdesk):
    args = ("tools", "call", "open_ticket", "--user", "root", "--args", '{"title": "VPN down"}')
    code, out, err = kdesk(*args)
    assert code == 3 and out == ""
    assert "needs_confirmation: open_ticket acts outside the desk" in err and "--yes" in err
    code, out, _ = kdesk(*args, "--yes")
    assert code == 0 and out.startswith("Opened ticket T-") and "VPN down (normal)" in out


def test_refusals_and_bad_arguments_have_exit_codes_and_messages(kdesk):
    code, _, err = kdesk("tools", "call", "word_count", "--user", "leo", "--args", '{"text": "a"}')
    assert code == 2 and "No tool 'word_count' is available to you." in err
    code, _, err = kdesk("tools", "call", "word_count", "--user", "root", "--args", "{text}")
    assert code == 2 and err.startswith("error: --args is not JSON")
    code, _, err = kdesk("tools", "call", "word_count", "--user", "root", "--args", "{}")
    assert code == 1 and "word_count: 'text' is a required property" in err
