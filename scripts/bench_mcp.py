"""Time MCP tool calls from sync code: a new session per call against the held session
(knowledge/tools/mcp_connection.py), over stdio and Streamable HTTP, and a webhook call.

    PYTHONPATH=. .venv/bin/python scripts/bench_mcp.py [--calls 20]

Prints JSON; the figures go into docs/benchmarks.md. The server is
tests/mcp_servers/sample_server.py (its ``add`` tool) on this machine.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio

from knowledge.tools.config import McpServerConfig, WebhookConfig
from knowledge.tools.mcp_source import McpSource
from knowledge.tools.webhook import WebhookTool

ROOT = Path(__file__).resolve().parents[1]
SERVER = [sys.executable, "-m", "tests.mcp_servers.sample_server"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def timed_ms(call: Callable[[], object], calls: int) -> dict[str, float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def held(config: McpServerConfig, calls: int) -> dict[str, object]:
    source = McpSource(config)
    started = time.perf_counter()
    (add,) = [t for t in source.tools() if t.spec.name.endswith("_add")]
    first = round((time.perf_counter() - started) * 1000, 1)
    result: dict[str, object] = {"first_listing_ms": first}
    result |= timed_ms(lambda: add.run(None, {"a": 1, "b": 2}), calls)  # type: ignore[arg-type]
    source.close()
    return result


def per_call(config: McpServerConfig, calls: int) -> dict[str, float]:
    """What the held session saves: a session opened and closed for each call."""
    source = McpSource(config)

    def call() -> None:
        async def run() -> None:
            async with source._session() as session:  # noqa: SLF001 - the benchmark's point
                await session.call_tool("add", {"a": 1, "b": 2})

        anyio.run(run)

    return timed_ms(call, calls)


def webhook(calls: int) -> dict[str, float]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(201)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = WebhookConfig(
        name="t",
        description="t",
        url=f"http://127.0.0.1:{server.server_address[1]}/t",
        body={"title": "{{title}}"},
    )
    tool = WebhookTool(hook, ["127.0.0.1"])
    try:
        return timed_ms(lambda: tool.run(None, {"title": "x"}), calls)  # type: ignore[arg-type]
    finally:
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    calls = parser.parse_args().calls
    stdio = McpServerConfig(name="s", command=SERVER[0], args=SERVER[1:], cwd=str(ROOT))
    port = free_port()
    process = subprocess.Popen(
        [*SERVER, "http", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(3)
    http = McpServerConfig(name="h", url=f"http://127.0.0.1:{port}/mcp")
    try:
        report = {
            "stdio_held": held(stdio, calls),
            "stdio_session_per_call": per_call(stdio, max(3, calls // 4)),
            "http_held": held(http, calls),
            "http_session_per_call": per_call(http, calls),
            "webhook": webhook(calls),
        }
    finally:
        process.terminate()
        process.wait(10)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
