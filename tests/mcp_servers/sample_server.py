"""A small MCP server for the tests, written with the SDK's MCPServer (FastMCP in mcp 1.x).

python -m tests.mcp_servers.sample_server            stdio
python -m tests.mcp_servers.sample_server http PORT  Streamable HTTP on 127.0.0.1:PORT/mcp
"""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("sample")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Say the text back, with the server's SAMPLE_GREETING in front."""
    return f"{os.environ.get('SAMPLE_GREETING', '')}{text}"


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the reason."""
    raise ToolError(f"refused: {reason}")


@server.tool()
def sleep(seconds: float) -> str:
    """Wait that long, then answer."""
    time.sleep(seconds)
    return "awake"


@server.tool()
def pid() -> int:
    """The server process's id."""
    return os.getpid()


def main(argv: list[str]) -> None:
    if argv[:1] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(argv[1]))
    else:
        server.run("stdio")


if __name__ == "__main__":
    main(sys.argv[1:])
