"""The official MCP client against the desk's MCP server, for the tests of both transports
(test_mcp_server.py: Streamable HTTP; test_mcp_stdio.py: `kdesk mcp`): sessions, calls, and
the checks every transport must pass (the tools, their answers, the leak check)."""

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
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from sqlalchemy import text

from knowledge.core.db import utc_now
from tests.leaks import (
    Side,
    chunk_leaks,
    leaked_text,
    other,
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


def expire(served: Served, secret: str) -> None:
    key = served.desk.api_keys.authenticate(secret)
    with served.desk.engine.begin() as connection:
        connection.execute(
            text("UPDATE api_keys SET expires_at = :past WHERE key_id = :id"),
            {"past": utc_now() - timedelta(minutes=1), "id": key.key_id},
        )
