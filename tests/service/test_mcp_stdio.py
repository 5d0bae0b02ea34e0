"""`kdesk mcp`: the MCP server over stdio as a subprocess on the served desk's data, through
the official MCP client: the tools as the key's user, no leaks, a revoked key stops it, and it
refuses to start without a valid key that may read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mcp import ClientSession

from tests.leaks import ENGINEERING, FINANCE
from tests.service.conftest import Served
from tests.service.mcp_client import (
    STDIO_QUESTIONS,
    expire,
    leak_check,
    over_stdio,
    refusal,
    start_stdio,
    stdio_environment,
    tools_answer_as_the_user,
    tools_listed,
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mcp-stdio")  # no .env of the repository is read


def test_stdio_serves_the_tools_as_the_keys_user(served: Served, workdir: Path):
    async def work(session: ClientSession) -> list[str]:
        await tools_listed(session)
        await tools_answer_as_the_user(session, served, ENGINEERING)
        return await leak_check(served, ENGINEERING, STDIO_QUESTIONS)(session)

    leaks = over_stdio(served, served.key(ENGINEERING.user), work, workdir)
    assert not leaks, leaks[:5]


def test_stdio_with_a_key_file_leaks_nothing_and_stops_once_revoked(served: Served, workdir: Path):
    secret = served.key(FINANCE.user)

    async def work(session: ClientSession) -> tuple[list[str], str]:
        leaks = await leak_check(served, FINANCE, STDIO_QUESTIONS)(session)
        key = served.desk.api_keys.authenticate(secret)
        served.desk.api_keys.revoke(key.key_id, FINANCE.user)
        return leaks, await refusal(session, "search_knowledge", query="Bellwether")

    leaks, message = over_stdio(served, secret, work, workdir, key_file=True)
    assert not leaks, leaks[:5]
    assert "revoked" in message


def test_stdio_refuses_to_start_without_a_valid_reading_key(served: Served, workdir: Path):
    revoked = served.key(ENGINEERING.user)
    served.desk.api_keys.revoke(served.desk.api_keys.authenticate(revoked).key_id, "ada")
    expired = served.key(ENGINEERING.user, expires_days=1)
    expire(served, expired)
    for secret, reason in (
        (None, "kdesk mcp needs an API key: set KDESK_API_KEY"),
        (expired, "This API key is expired."),
        ("kdesk_not-a-key", "This API key is not valid."),
        (revoked, "revoked"),
        (served.key(ENGINEERING.user, ("upload",)), "read scope"),
    ):
        started = start_stdio(served, secret, workdir)
        assert started.returncode == 2, (reason, started.stderr)
        assert reason in started.stderr and started.stdout == "", (reason, started.stderr)


def test_stdio_reads_the_key_from_a_file(served: Served, workdir: Path):
    empty = workdir / "empty.key"
    empty.write_text("\n")
    started = subprocess.run(
        [sys.executable, "-m", "knowledge.cli.main", "mcp", "--key-file", str(empty)],
        env=stdio_environment(served, None),
        cwd=workdir,
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 2 and "is empty" in started.stderr
