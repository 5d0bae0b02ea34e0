"""A real MCP server (tests/mcp_servers/sample_server.py) over stdio and Streamable HTTP."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.tools.base import Tool, ToolError, ToolTimeout
from knowledge.tools.config import McpServerConfig, McpToolOverride
from knowledge.tools.mcp_source import McpSource, tool_name
from tests.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVER = ["-m", "tests.mcp_servers.sample_server"]


def stdio_config(**fields: object) -> McpServerConfig:
    values: dict[str, object] = {
        "name": "sample",
        "command": sys.executable,
        "args": SERVER,
        "cwd": str(ROOT),
        "timeout_s": 20,
    }
    return McpServerConfig.model_validate(values | fields)


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, *SERVER, "http", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the sample MCP server did not start")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()  # uvicorn waits for a request still sleeping: then kill it
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def by_name(tools: list[Tool]) -> dict[str, Tool]:
    return {tool.spec.name: tool for tool in tools}


def test_stdio_server_tools_are_listed_with_their_schemas_and_called(monkeypatch) -> None:
    monkeypatch.setenv("SAMPLE_TOKEN", "hello ")
    source = McpSource(stdio_config(env={"SAMPLE_GREETING": "${SAMPLE_TOKEN}"}))
    tools = by_name(source.tools())

    assert source.name == "mcp:sample"
    assert set(tools) == {"sample_add", "sample_echo", "sample_fail", "sample_sleep", "sample_pid"}
    add = tools["sample_add"].spec
    assert add.source == "mcp:sample" and add.description == "Add two whole numbers."
    assert add.parameters["required"] == ["a", "b"]
    assert add.parameters["properties"]["a"]["type"] == "integer"

    result = tools["sample_add"].run(None, {"a": 2, "b": 40})  # type: ignore[arg-type]
    assert result.text == "42" and result.data == {"result": 42}
    echoed = tools["sample_echo"].run(None, {"text": "desk"})  # type: ignore[arg-type]
    assert echoed.text == "hello desk"  # the ${SAMPLE_TOKEN} secret reached the server's env
    source.close()


def test_one_stdio_session_serves_every_call_and_a_dead_server_is_started_again() -> None:
    source = McpSource(stdio_config(timeout_s=5, connect_timeout_s=20))
    pid = by_name(source.tools())["sample_pid"]
    first = int(pid.run(None, {}).text)  # type: ignore[arg-type]
    assert int(pid.run(None, {}).text) == first  # type: ignore[arg-type]

    os.kill(first, signal.SIGKILL)
    answers = []
    for _ in range(2):  # the call that finds the session broken may fail; the next reopens
        try:
            answers.append(int(pid.run(None, {}).text))  # type: ignore[arg-type]
        except ToolError as exc:
            assert "MCP server sample" in str(exc)
    assert answers and answers[-1] != first
    source.close()


def test_http_server_tools_are_listed_and_called(http_url: str) -> None:
    source = McpSource(McpServerConfig(name="remote", url=http_url, timeout_s=20))
    tools = by_name(source.tools())

    assert "remote_add" in tools and tools["remote_add"].spec.source == "mcp:remote"
    assert tools["remote_add"].run(None, {"a": 1, "b": 2}).text == "3"  # type: ignore[arg-type]


def test_a_server_error_is_a_tool_error_with_its_message(http_url: str) -> None:
    tool = by_name(McpSource(McpServerConfig(name="remote", url=http_url)).tools())["remote_fail"]

    with pytest.raises(ToolError, match="fail on MCP server remote failed: .*refused: no reason"):
        tool.run(None, {"reason": "no reason"})  # type: ignore[arg-type]
    with pytest.raises(ToolError, match="remote"):  # arguments the schema refuses
        tool.run(None, {"because": 1})  # type: ignore[arg-type]


def test_a_call_slower_than_the_timeout_is_a_tool_timeout(http_url: str) -> None:
    config = McpServerConfig(name="remote", url=http_url, timeout_s=1, connect_timeout_s=5)
    tools = by_name(McpSource(config).tools())

    started = time.monotonic()
    with pytest.raises(ToolTimeout, match="did not answer within 6 s"):
        tools["remote_sleep"].run(None, {"seconds": 30})  # type: ignore[arg-type]
    assert time.monotonic() - started < 15
    assert tools["remote_add"].run(None, {"a": 1, "b": 1}).text == "2"  # type: ignore[arg-type]


def test_acts_default_per_server_and_per_tool_overrides(http_url: str) -> None:
    config = McpServerConfig(
        name="remote",
        url=http_url,
        acts=False,
        tools={"fail": McpToolOverride(acts=True), "sleep": McpToolOverride(enabled=False)},
    )
    tools = by_name(McpSource(config).tools())

    assert "remote_sleep" not in tools
    assert not tools["remote_add"].spec.acts and tools["remote_fail"].spec.acts


def test_a_down_server_is_skipped_logged_and_retried_later(caplog, monkeypatch) -> None:
    monkeypatch.setenv("LATER_TOKEN", "t0ken-never-logged")
    port = free_port()
    config = McpServerConfig(
        name="later",
        url=f"http://127.0.0.1:{port}/mcp",
        headers={"Authorization": "Bearer ${LATER_TOKEN}"},
        connect_timeout_s=5,
    )
    source = McpSource(config, retry_after_s=0.5)

    with caplog.at_level(logging.WARNING, logger="kdesk.tools.mcp"):
        assert source.tools() == []
    assert "MCP server later skipped" in caplog.text
    assert "t0ken-never-logged" not in caplog.text

    process = subprocess.Popen(
        [sys.executable, *SERVER, "http", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert source.tools() == []  # not asked again before retry_after_s
        deadline = time.monotonic() + 30
        while not source.tools() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "later_add" in by_name(source.tools())
    finally:
        stop(process)


def test_a_missing_command_is_skipped_not_raised() -> None:
    source = McpSource(stdio_config(command="/nonexistent/mcp-server"))

    assert source.tools() == []


def test_tool_names_fit_the_spec() -> None:
    assert tool_name("Service Desk", "create.ticket") == "service_desk_create_ticket"
    assert len(tool_name("s", "x" * 100)) == 64
