"""The MCP server over Streamable HTTP at ``/mcp`` (knowledge/service/mcp_server.py)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from knowledge.desk.root import Desk


def mount_mcp(app: FastAPI, desk: Desk) -> list[AbstractAsyncContextManager[object]]:
    """Mount ``/mcp`` on the app; returns what must run for the app's lifetime."""
    return []
