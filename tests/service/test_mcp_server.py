"""The MCP server, through the official MCP client: over Streamable HTTP at /mcp of the served
API and over stdio (`kdesk mcp` as a subprocess on the same data). Every tool acts as the key's
user: the leak office's two sides never see each other's passages, citations or documents,
and a missing, wrong, revoked or expired key is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from sqlalchemy import text

from knowledge.access.ratelimit import RateLimit
from knowledge.access.roles import Role
from knowledge.core.db import utc_now
from tests.leaks import (
    BOTH,
    ENGINEERING,
    FINANCE,
    PASSWORD,
    SIDES,
    Side,
    chunk_leaks,
    leaked_text,
    other,
    probe,
    questions_for,
)
from tests.pages.support import MODEL, sources_and_question
from tests.service.conftest import Served

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"search_knowledge", "ask", "list_documents", "get_passage"}
HTTP_QUESTIONS = 40  # per side
STDIO_QUESTIONS = 8
T = TypeVar("T")
Work = Callable[[ClientSession], Awaitable[T]]


# Clients ---------------------------------------------------------------------------------------


@asynccontextmanager
async def opened(transport: Any) -> AsyncIterator[ClientSession]:
    async with transport as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def over_http(served: Served, secret: str, work: Work[T]) -> T:
    async def main() -> T:
        client = create_mcp_http_client(headers={"Authorization": f"Bearer {secret}"})
        async with opened(streamable_http_client(served.url + "/mcp", http_client=client)) as s:
            return await work(s)

    return anyio.run(main)


def stdio_environment(served: Served, secret: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KDESK_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "KDESK_DATA_DIR": str(served.data_dir),
        "KDESK_MODEL_BACKEND": "ollama",
        "KDESK_OLLAMA_HOST": served.ollama.url,
        "KDESK_OLLAMA_MODEL": MODEL,
        "KDESK_ANSWER_CACHE": "false",
        "KDESK_REWRITE_FOLLOWUPS": "false",
    }
    if secret is not None:
        env["KDESK_API_KEY"] = secret
    return env


def over_stdio(
    served: Served, secret: str, work: Work[T], cwd: Path, *, key_file: bool = False
) -> T:
    """`kdesk mcp` as a subprocess, the key in KDESK_API_KEY (or in a --key-file)."""
    args = ["-m", "knowledge.cli.main", "mcp"]
    if key_file:
        path = cwd / "mcp.key"
        path.write_text(secret + "\n")
        args += ["--key-file", str(path)]
    params = StdioServerParameters(
        command=sys.executable,
        args=args,
        env=stdio_environment(served, None if key_file else secret),
        cwd=cwd,
    )

    async def main() -> T:
        async with opened(stdio_client(params)) as session:
            return await work(session)

    return anyio.run(main)


def start_stdio(served: Served, secret: str | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`kdesk mcp` started with this key and nothing on stdin: it refuses or ends at once."""
    return subprocess.run(
        [sys.executable, "-m", "knowledge.cli.main", "mcp"],
        env=stdio_environment(served, secret),
        cwd=cwd,
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """The structured result of a successful call (its text rendering checked beside it)."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, (tool, arguments, result.content)
    assert result.content and result.content[0].type == "text" and result.content[0].text
    assert result.structured_content is not None
    return result.structured_content


async def refusal(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The message of a call that must fail as a tool error."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, (tool, arguments, result.structured_content)
    return " ".join(c.text for c in result.content if c.type == "text")


# What every transport must do --------------------------------------------------------------------


async def tools_listed(session: ClientSession) -> None:
    listed = (await session.list_tools()).tools
    assert {t.name for t in listed} == TOOLS
    for tool in listed:
        assert tool.description and len(tool.description) > 40, tool.name
        assert tool.output_schema is not None, tool.name
        assert tool.annotations is not None and tool.annotations.read_only_hint
    search = next(t for t in listed if t.name == "search_knowledge")
    assert search.input_schema["required"] == ["query"]
    assert search.input_schema["properties"]["k"]["maximum"] == 20


async def tools_answer_as_the_user(session: ClientSession, served: Served, side: Side) -> None:
    mine = served.doc_ids[side.user]
    found = await call(session, "search_knowledge", query=side.docs[0].phrases[0], k=3)
    passages = found["passages"]
    assert passages and len(passages) <= 3
    assert passages[0]["document"] == side.docs[0].file_name
    for p in passages:
        assert p["doc_id"] in mine and p["collection"] in side.collections
        assert p["location"].startswith("p. ") and p["page"] >= 1
        assert p["link"].endswith(f"/api/documents/{p['doc_id']}/pages/{p['page']}")

    answer = await call(session, "ask", question=f"What does the {side.docs[0].title} say?")
    assert not answer["abstained"] and answer["citations"]
    for c in answer["citations"]:
        assert f"[{c['n']}]" in answer["answer"]
        assert c["doc_id"] in mine and c["passage"] and c["link"].startswith("http")

    listed = await call(session, "list_documents")
    assert {d["document"] for d in listed["documents"]} == side.file_names
    library = await call(session, "list_documents", collection=side.library)
    assert {d["collection"] for d in library["documents"]} == {side.library}

    first = passages[0]
    passage = await call(session, "get_passage", chunk_id=first["chunk_id"])
    assert passage["text"] == first["text"] and passage["chunk_ids"] == [first["chunk_id"]]
    page = await call(session, "get_passage", doc_id=first["doc_id"], page=first["page"])
    assert first["chunk_id"] in page["chunk_ids"]
    assert first["text"].split()[0] in page["text"]
    assert "Give a chunk_id" in await refusal(session, "get_passage")


def leaks_in(
    served: Served, side: Side, question: str, found: dict[str, Any], answer: dict[str, Any]
) -> list[str]:
    """Everything of the other side in a search's passages and an answer's citations and text."""
    mine = served.doc_ids[side.user]
    ids = [p["chunk_id"] for p in found["passages"]]
    chunks = list(served.desk.store.chunks(ids).values())
    assert len(chunks) == len(ids)
    leaks = chunk_leaks(side, mine, chunks, question)
    leaks += [
        f"{question!r} -> citation {c['collection']}/{c['document']}"
        for c in answer["citations"]
        if c["doc_id"] not in mine or c["collection"] not in side.collections
    ]
    shown = " ".join(
        [answer["answer"], *(c["passage"] for c in answer["citations"])]
        + [p["text"] for p in found["passages"]]
    )
    return leaks + [f"{question!r}: {t}" for t in leaked_text(shown, side, question)]


def sample(side: Side, n: int) -> list[str]:
    """A deterministic spread of the side's leak questions."""
    questions = questions_for(side)
    step = max(1, len(questions) // n)
    return [q.text for q in questions[::step][:n]]


def foreign_chunk_ids(served: Served, side: Side) -> list[str]:
    theirs = other(side)
    ids = [
        chunk_id
        for collection in theirs.collections
        for chunk_id in served.desk.store.chunk_ids(collection, sorted(served.doc_ids[theirs.user]))
    ]
    assert ids
    return ids


def leak_check(served: Served, side: Side, n: int, *, counter: bool = False) -> Work[list[str]]:
    """Questions of ``side`` through search_knowledge and ask, the other side's collections
    asked for by name, documents listed, the other side's passages and pages asked for: what
    of the other side came back (``counter``: the caller may read both, refusals not checked)."""

    async def work(session: ClientSession) -> list[str]:
        leaks: list[str] = []
        for question in sample(side, n):
            found = await call(session, "search_knowledge", query=question, k=8)
            before = len(served.ollama.chats)
            answer = await call(session, "ask", question=question)
            leaks += leaks_in(served, side, question, found, answer)
            for prompt in served.ollama.chats[before:]:  # what the model was sent
                sources, _ = sources_and_question(prompt["messages"])
                leaks += [
                    f"{question!r}: prompt {t}"
                    for s in sources.values()
                    for t in leaked_text(s, side, question)
                ]
            asked_theirs = await call(
                session,
                "search_knowledge",
                query=question,
                collections=list(other(side).collections),
            )
            if not counter:
                assert asked_theirs["passages"] == [], question
        listed = await call(session, "list_documents")
        leaks += [
            f"listed {d['document']}"
            for d in listed["documents"]
            if d["doc_id"] not in served.doc_ids[side.user]
        ]
        if counter:
            return leaks
        for chunk_id in foreign_chunk_ids(served, side)[:: max(1, n // 4)]:
            message = await refusal(session, "get_passage", chunk_id=chunk_id)
            assert message.endswith(f": No passage with id {chunk_id}."), message
        foreign_doc = sorted(served.doc_ids[other(side).user])[0]
        assert "No document" in await refusal(session, "get_passage", doc_id=foreign_doc, page=1)
        return leaks

    return work


# Streamable HTTP -------------------------------------------------------------------------------


def test_http_lists_the_tools_with_their_schemas(served: Served):
    over_http(served, served.key(ENGINEERING.user), tools_listed)


@pytest.mark.parametrize("side", SIDES, ids=lambda s: s.user)
def test_http_tools_answer_as_the_keys_user(served: Served, side: Side):
    over_http(served, served.key(side.user), lambda s: tools_answer_as_the_user(s, served, side))


def test_http_leaks_nothing_between_the_sides(served: Served):
    leaks: list[str] = []
    for side in SIDES:
        leaks += over_http(served, served.key(side.user), leak_check(served, side, HTTP_QUESTIONS))
    assert not leaks, f"{len(leaks)} leaks, e.g. {leaks[:5]}"


def test_http_the_leak_check_sees_what_a_user_of_both_sides_reads(served: Served):
    """The counter-check: with the key of carla (both roles) the same check finds the other
    side's passages, citations and documents, so its silence above means something."""
    leaks = over_http(served, served.key(BOTH), leak_check(served, ENGINEERING, 8, counter=True))
    assert any("Finance" in leak for leak in leaks), leaks[:5]
    assert any("listed" in leak for leak in leaks)


def test_http_answers_are_recorded_as_the_users_on_the_api_channel(served: Served):
    async def work(session: ClientSession) -> dict[str, Any]:
        return await call(session, "ask", question=probe(ENGINEERING.docs[1]))

    answer = over_http(served, served.key(ENGINEERING.user), work)
    event = served.desk.usage.event(answer["event_id"])
    assert (event["user"], event["role"], event["channel"]) == ("ada", "engineer", "api")
    assert event["cited_documents"] == [ENGINEERING.docs[1].file_name]


def test_http_a_rate_limited_user_gets_a_clear_tool_error(served: Served):
    """Its own role and user: the office's users keep their unlimited questions."""
    role = Role(
        "mcp-limited",
        pages=("chat",),
        collections=(ENGINEERING.library,),
        rate_limit=RateLimit(requests=1, window_s=600),
    )
    served.desk.roles.save(role, "test")
    served.desk.accounts.add("mcp-limited", [role.name], "test", password=PASSWORD)
    question = probe(ENGINEERING.docs[0])

    async def work(session: ClientSession) -> str:
        first = await call(session, "ask", question=question)
        assert first["citations"]
        return await refusal(session, "ask", question=question)

    message = over_http(served, served.key("mcp-limited"), work)
    assert "try again" in message.lower(), message


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}


def post_initialize(served: Served, secret: str | None) -> httpx.Response:
    with served.client(secret) as client:
        return client.post(
            "/mcp",
            json=INITIALIZE,
            headers={"Accept": "application/json, text/event-stream"},
        )


def expire(served: Served, secret: str) -> None:
    key = served.desk.api_keys.authenticate(secret)
    with served.desk.engine.begin() as connection:
        connection.execute(
            text("UPDATE api_keys SET expires_at = :past WHERE key_id = :id"),
            {"past": utc_now() - timedelta(minutes=1), "id": key.key_id},
        )


def test_http_refuses_missing_wrong_revoked_and_expired_keys(served: Served):
    assert post_initialize(served, served.key(ENGINEERING.user)).status_code == 200
    revoked = served.key(ENGINEERING.user)
    served.desk.api_keys.revoke(served.desk.api_keys.authenticate(revoked).key_id, "ada")
    expired = served.key(ENGINEERING.user, expires_days=1)
    expire(served, expired)
    for secret, reason in (
        (None, "An API key is needed"),
        ("kdesk_not-a-key", "not valid"),
        (revoked, "revoked"),
        (expired, "expired"),
    ):
        response = post_initialize(served, secret)
        assert response.status_code == 401, (reason, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()
        assert body["jsonrpc"] == "2.0" and body["id"] is None
        assert body["error"]["type"] == "authentication_error", body
        assert body["error"]["code"] == 401 and reason in body["error"]["message"]


def test_http_refuses_a_key_without_the_read_scope(served: Served):
    response = post_initialize(served, served.key(ENGINEERING.user, ("upload",)))
    assert response.status_code == 403
    assert "read scope" in response.json()["error"]["message"]


def test_http_a_key_revoked_mid_session_stops_working(served: Served):
    secret = served.key(FINANCE.user)

    async def work(session: ClientSession) -> str:
        await call(session, "list_documents")
        key = served.desk.api_keys.authenticate(secret)
        served.desk.api_keys.revoke(key.key_id, FINANCE.user)
        with pytest.raises(MCPError) as refused:  # the 401's body is a JSON-RPC error too
            await session.call_tool("list_documents", {})
        return str(refused.value)

    assert "This API key is revoked. Create a new one." in over_http(served, secret, work)
    assert post_initialize(served, secret).status_code == 401


# stdio: `kdesk mcp` ------------------------------------------------------------------------------


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
    for secret, reason in (
        (None, "kdesk mcp needs an API key: set KDESK_API_KEY"),
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
