"""The tools of an MCP server an admin configured (stdio command or Streamable HTTP URL),
through the official ``mcp`` SDK.

The SDK is async: one session per server is held open on a background event loop
(mcp_connection.py); a session that broke is opened again by the next call."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import mcp_types as types
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from knowledge.tools.base import Tool, ToolContext, ToolError, ToolResult, ToolSpec, ToolTimeout
from knowledge.tools.config import McpServerConfig
from knowledge.tools.mcp_connection import McpConnection
from knowledge.tools.secrets import Secrets

log = logging.getLogger("kdesk.tools.mcp")
RETRY_AFTER_S = 30.0  # a server that was down is asked again after this long
T = TypeVar("T")


class McpSource:
    """One configured MCP server as a ``ToolSource``: its tools are listed on first use; a
    server that is down is logged, gives no tools and is asked again after ``retry_after_s``."""

    def __init__(self, config: McpServerConfig, *, retry_after_s: float = RETRY_AFTER_S) -> None:
        self._config = config
        self._secrets = Secrets()
        self._retry_after_s = retry_after_s
        self._tools: list[Tool] | None = None
        self._failed_at = float("-inf")
        self._connection = McpConnection(self._session, config.name)

    @property
    def name(self) -> str:
        return f"mcp:{self._config.name}"

    def tools(self) -> list[Tool]:
        if self._tools is None and time.monotonic() - self._failed_at >= self._retry_after_s:
            try:
                listed = self.session_run(_list_tools, self._config.connect_timeout_s)
            except ToolError as exc:
                self._failed_at = time.monotonic()
                log.warning("MCP server %s skipped: %s", self._config.name, exc)
                return []
            self._tools = [McpTool(self, t) for t in listed if self._enabled(t.name)]
            log.info("MCP server %s: %d tools", self._config.name, len(self._tools))
        return list(self._tools or [])

    def spec_for(self, tool: types.Tool) -> ToolSpec:
        override = self._config.tools.get(tool.name)
        acts = self._config.acts
        if override is not None and override.acts is not None:
            acts = override.acts
        return ToolSpec(
            name=tool_name(self._config.name, tool.name),
            description=tool.description or tool.title or tool.name,
            parameters=tool.input_schema or {"type": "object", "properties": {}},
            acts=acts,
            source=self.name,
        )

    def call(self, tool: str, arguments: Mapping[str, Any]) -> ToolResult:
        async def call(session: ClientSession) -> types.CallToolResult:
            result = await session.call_tool(tool, dict(arguments))
            if not isinstance(result, types.CallToolResult):
                raise ToolError(f"{tool} on MCP server {self._config.name} asked for input")
            return result

        timeout = self._config.connect_timeout_s + self._config.timeout_s
        return to_result(self._config.name, tool, self.session_run(call, timeout))

    def session_run(self, work: Callable[[ClientSession], Awaitable[T]], timeout_s: float) -> T:
        """``work`` on the server's session, within ``timeout_s``; every failure
        becomes a ``ToolError`` whose message holds no secret."""
        server = self._config.name

        try:
            return self._connection.run(work, timeout_s)
        except ToolError:
            raise
        except TimeoutError:
            raise ToolTimeout(
                f"MCP server {server} did not answer within {timeout_s:g} s"
            ) from None
        except Exception as exc:  # noqa: BLE001 - any transport failure is the server's
            raise ToolError(f"MCP server {server} failed: {self._explain(exc)}") from None

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[ClientSession]:
        async with self._transport() as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session

    def _transport(self) -> Any:
        config = self._config
        if config.transport == "stdio":
            params = StdioServerParameters(
                command=config.command,
                args=config.args,
                env=self._secrets.resolve_all(config.env),
                cwd=config.cwd or None,
            )
            return stdio_client(params)
        client = create_mcp_http_client(headers=self._secrets.resolve_all(config.headers))
        return streamable_http_client(config.url, http_client=client)

    def close(self) -> None:
        """Ends the session (and the stdio server's process)."""
        self._connection.close()

    def _explain(self, exc: BaseException) -> str:
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        if isinstance(exc, BaseExceptionGroup):
            return "; ".join(self._explain(e) for e in exc.exceptions)
        if isinstance(exc, KeyError):
            return f"the environment no longer sets {exc.args[0]}"
        return self._secrets.redact(f"{type(exc).__name__}: {exc}".rstrip(": "))

    def _enabled(self, tool: str) -> bool:
        override = self._config.tools.get(tool)
        return override is None or override.enabled


class McpTool:
    def __init__(self, source: McpSource, tool: types.Tool) -> None:
        self._source = source
        self._remote_name = tool.name
        self._spec = source.spec_for(tool)

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    def run(self, context: ToolContext, arguments: Mapping[str, Any]) -> ToolResult:
        return self._source.call(self._remote_name, arguments)


async def _list_tools(session: ClientSession) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    while True:
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


def tool_name(server: str, tool: str) -> str:
    """``<server>_<tool>`` in the characters and length a ``ToolSpec`` name allows."""
    name = re.sub(r"[^a-z0-9_-]+", "_", f"{server}_{tool}".lower()).strip("_")
    return name[:64]


def to_result(server: str, tool: str, result: types.CallToolResult) -> ToolResult:
    text = "\n".join(_content_text(block) for block in result.content).strip()
    if result.is_error:
        raise ToolError(f"{tool} on MCP server {server} failed: {text or 'no message'}")
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    return ToolResult(text=text, data=result.structured_content)


def _content_text(block: types.ContentBlock) -> str:
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.EmbeddedResource) and isinstance(
        block.resource, types.TextResourceContents
    ):
        return block.resource.text
    if isinstance(block, types.ResourceLink):
        return f"[{block.name}: {block.uri}]"
    return f"[{block.type}]"
