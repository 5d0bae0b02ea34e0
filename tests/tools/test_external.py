"""The tools file: its format, its errors, and the sources it gives."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from knowledge.core.settings import Settings
from knowledge.tools.config import ToolsFileError, host_allowed, read_tools_file
from knowledge.tools.external import configured_sources, tools_file
from knowledge.tools.mcp_source import McpSource

GOOD = """
webhook_hosts = ["desk.example.com"]

[[mcp_servers]]
name = "files"
command = "python"
args = ["-m", "files_server"]
env = { FILES_TOKEN = "${FILES_TOKEN}" }
acts = false
tools = { delete_file = { acts = true } }

[[mcp_servers]]
name = "wiki"
url = "https://wiki.example.com/mcp"
headers = { Authorization = "Bearer ${WIKI_TOKEN}" }

[[webhooks]]
name = "create_ticket"
description = "Create a ticket in the service desk"
url = "https://desk.example.com/api/tickets"
body = { title = "{{title}}" }
headers = { Authorization = "Bearer ${DESK_TOKEN}" }
parameters = { type = "object", properties = { title = { type = "string" } } }
"""


@pytest.fixture(autouse=True)
def tokens(monkeypatch) -> None:
    for name in ("FILES_TOKEN", "WIKI_TOKEN", "DESK_TOKEN"):
        monkeypatch.setenv(name, "x")


def write(tmp_path: Path, text: str, name: str = "tools.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_gives_one_source_per_server_and_one_for_webhooks(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    sources = configured_sources(Settings(data_dir=tmp_path))

    assert [s.name for s in sources] == ["mcp:files", "mcp:wiki", "webhooks"]
    assert isinstance(sources[0], McpSource)
    (hook,) = sources[2].tools()
    assert hook.spec.name == "create_ticket" and hook.spec.acts


def test_no_file_no_sources_and_json_is_read_too(tmp_path: Path) -> None:
    assert configured_sources(Settings(data_dir=tmp_path)) == []
    write(
        tmp_path, json.dumps({"mcp_servers": [{"name": "a", "url": "http://h/mcp"}]}), "tools.json"
    )

    assert tools_file(Settings(data_dir=tmp_path)) == tmp_path / "tools.json"
    assert [s.name for s in configured_sources(Settings(data_dir=tmp_path))] == ["mcp:a"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('url = "https://wiki', 'command = "x"\nurl = "https://wiki'),
            r"mcp_servers\[1\] \(wiki\): .*either command .* or url",
        ),
        (
            ('name = "create_ticket"', 'name = "Create Ticket"'),
            r"webhooks\[0\] \(Create Ticket\)\.name: String should match",
        ),
        (
            ("${DESK_TOKEN}", "${NOT_SET_ANYWHERE}"),
            r"webhooks\[0\] \(create_ticket\): .*does not set NOT_SET_ANYWHERE",
        ),
        (("acts = false", 'acts = "sometimes"'), r"mcp_servers\[0\] \(files\)\.acts:"),
        (("body = {", "bodyy = {"), r"webhooks\[0\] \(create_ticket\)\.bodyy: Extra inputs"),
        (
            ('url = "https://desk.example.com', 'url = "https://evil.example'),
            r"webhooks\[0\] \(create_ticket\)\.url: the host .* not in the webhook allow-list",
        ),
        (("[[webhooks]]", "[[webhooks]"), "is not valid TOML"),
    ],
)
def test_a_bad_file_names_the_entry_and_the_field(tmp_path: Path, change, message) -> None:
    path = write(tmp_path, GOOD.replace(*change))

    with pytest.raises(ToolsFileError, match=message):
        read_tools_file(path)


def test_the_allow_list_also_comes_from_the_settings(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('webhook_hosts = ["desk.example.com"]', ""))
    with pytest.raises(ToolsFileError, match="allow-list"):
        configured_sources(Settings(data_dir=tmp_path, tools_file=path))

    settings = Settings(data_dir=tmp_path, tools_file=path, webhook_hosts="desk.example.com")
    assert configured_sources(settings)[-1].name == "webhooks"


def test_host_allowed() -> None:
    hosts = ["desk.example.com", "127.0.0.1:8080"]
    assert host_allowed("https://DESK.example.com/x", hosts)
    assert host_allowed("http://127.0.0.1:8080/x", hosts)
    assert not host_allowed("http://127.0.0.1:8081/x", hosts)
    assert not host_allowed("https://desk.example.com@evil.example/x", hosts)
    assert not host_allowed("https://evil.example/desk.example.com", hosts)
    assert not host_allowed("ftp://desk.example.com/x", hosts)


def test_the_examples_of_docs_mcp_md_are_valid_tools_files(tmp_path: Path, monkeypatch) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "mcp.md").read_text(encoding="utf-8")
    examples = re.findall(r"```toml\n(.*?)```", docs, flags=re.DOTALL)
    assert len(examples) == 3
    for name in ("FILES_TOKEN", "WIKI_TOKEN", "DESK_TOKEN"):
        monkeypatch.setenv(name, "x")

    configs = [
        read_tools_file(write(tmp_path, text, f"{i}.toml")) for i, text in enumerate(examples)
    ]

    files = configs[0].mcp_servers[0]
    assert files.transport == "stdio" and not files.acts and files.tools["write_file"].acts
    assert configs[1].mcp_servers[0].transport == "http"
    hook = configs[2].webhooks[0]
    assert hook.parameters["required"] == ["title", "queue"] and hook.body is not None
