"""What serving the desk over MCP adds to a search: ``UserDesk.search`` called directly beside
the MCP server's search_knowledge and list_documents tools through the official client, over
Streamable HTTP (``/mcp`` of the API, one held session) and over stdio (``kdesk mcp``).

    PYTHONPATH=. .venv/bin/python scripts/bench_mcp_server.py [--calls 40]

The demo documents in a temporary data directory, a user with the admin role and a read key;
no model is needed. Prints JSON; the figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import uvicorn
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from knowledge.core.settings import Settings
from knowledge.desk.demo import load_demo
from knowledge.desk.root import Desk
from knowledge.service.app import create_app

ROOT = Path(__file__).resolve().parents[1]
QUERIES = (
    "How many days of annual leave do employees get?",
    "Which receipts are needed for an expense claim?",
    "How long must passwords be?",
    "What is the governing law of the master services agreement?",
)


def figures(times_s: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times_s)
    return {
        "median_ms": round(statistics.median(ms), 1),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
    }


def timed(call: Callable[[int], object], calls: int) -> dict[str, float]:
    times = []
    for i in range(calls):
        started = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - started)
    return figures(times)


async def timed_async(call: Callable[[int], Awaitable[object]], calls: int) -> dict[str, float]:
    times = []
    for i in range(calls):
        started = time.perf_counter()
        await call(i)
        times.append(time.perf_counter() - started)
    return figures(times)


async def tool_figures(session: ClientSession, calls: int) -> dict[str, object]:
    await session.initialize()

    async def search(i: int) -> None:
        result = await session.call_tool("search_knowledge", {"query": QUERIES[i % 4], "k": 5})
        assert not result.is_error and result.structured_content["passages"]  # type: ignore[index]

    async def listing(i: int) -> None:
        assert not (await session.call_tool("list_documents", {})).is_error

    return {
        "search_knowledge": await timed_async(search, calls),
        "list_documents": await timed_async(listing, calls),
    }


def over_http(url: str, secret: str, calls: int) -> dict[str, object]:
    async def main() -> dict[str, object]:
        client = create_mcp_http_client(headers={"Authorization": f"Bearer {secret}"})
        async with (
            streamable_http_client(url, http_client=client) as (read, write),
            ClientSession(read, write) as session,
        ):
            return await tool_figures(session, calls)

    return anyio.run(main)


def over_stdio(data_dir: Path, secret: str, calls: int) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KDESK_")}
    env |= {"PYTHONPATH": str(ROOT), "KDESK_DATA_DIR": str(data_dir), "KDESK_API_KEY": secret}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "knowledge.cli.main", "mcp"], env=env
    )

    async def main() -> dict[str, object]:
        started = time.perf_counter()
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            result = await tool_figures(session, calls)
        return {"start_to_end_s": round(time.perf_counter() - started, 1)} | result

    return anyio.run(main)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=40)
    calls = parser.parse_args().calls
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        desk = Desk(Settings(data_dir=data_dir, model_backend="ollama"))
        load_demo(desk)
        desk.accounts.add("bench", ["admin"], "bench", password="a long benchmark password")
        _, secret = desk.api_keys.create("bench", "bench", ["read"], expires_days=1)
        me = desk.for_user("bench", channel="api")
        me.search(QUERIES[0])  # warm: the index and the embedder loaded
        report: dict[str, object] = {
            "calls": calls,
            "direct UserDesk.search": timed(lambda i: me.search(QUERIES[i % 4], k=5), calls),
        }
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(desk), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            url = f"http://127.0.0.1:{port}/mcp"
            report["streamable HTTP /mcp"] = over_http(url, secret, calls)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
        report["stdio kdesk mcp"] = over_stdio(data_dir, secret, calls)
        report["direct again (the noise)"] = timed(lambda i: me.search(QUERIES[i % 4], k=5), calls)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
