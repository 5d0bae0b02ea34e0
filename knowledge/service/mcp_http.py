"""The MCP server over Streamable HTTP at ``/mcp`` (knowledge/service/mcp_server.py).

Each HTTP request is authenticated before the SDK sees it: no key, a bad, revoked or expired
one is a 401 (a key without the read scope a 403) in the API's JSON error shape (also a
JSON-RPC error, so MCP clients show its message), and the
caller rides in the request's ASGI scope to the tools. The SDK runs stateless: each request
stands alone (no MCP session to resume with another key), so a request's identity is simply
its own key, and a revoked key stops working on the next request."""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from knowledge.core.errors import KdeskError
from knowledge.desk.root import Desk
from knowledge.service.auth import Caller, authenticate, key_of
from knowledge.service.errors import error_response
from knowledge.service.mcp_server import build_server

PATH = "/mcp"
CALLER = "kdesk.caller"  # the ASGI scope key of the authenticated caller


def request_caller(ctx: Context) -> Caller:
    """The caller the endpoint authenticated for the HTTP request of this tool call."""
    request = ctx.request_context.request
    caller = request.scope.get(CALLER) if isinstance(request, Request) else None
    if not isinstance(caller, Caller):  # not through McpEndpoint: refuse rather than guess
        raise ToolError("This request carries no authenticated API key.")
    return caller


class McpEndpoint:
    """ASGI app: authenticate the Bearer key, then hand the request to the SDK."""

    def __init__(self, desk: Desk, sessions: StreamableHTTPSessionManager) -> None:
        self.desk = desk
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            caller = authenticate(self.desk, key_of(request))
            caller.require("read")  # every tool reads
        except KdeskError as exc:
            await refusal(exc)(scope, receive, send)
            return
        scope[CALLER] = caller
        await self.sessions.handle_request(scope, receive, send)


def refusal(exc: KdeskError) -> JSONResponse:
    """The API's error response, that is also a JSON-RPC error (``jsonrpc`` and ``id`` added):
    an MCP client then shows its message ("This API key is revoked. …") to its user."""
    response = error_response(exc)
    body = {"jsonrpc": "2.0", "id": None, **json.loads(bytes(response.body))}
    headers = {k: v for k, v in response.headers.items() if k.lower() == "www-authenticate"}
    return JSONResponse(body, response.status_code, headers=headers)


def mount_mcp(app: FastAPI, desk: Desk) -> list[AbstractAsyncContextManager[object]]:
    """Mount ``/mcp`` on the app; returns what must run for the app's lifetime."""
    server = build_server(desk, request_caller)
    # builds the SDK's session manager (its own Starlette app is not used); DNS-rebinding
    # protection as the SDK sets it for the address the API listens on
    server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        host=desk.settings.api_host,
    )
    sessions = server.session_manager
    app.router.routes.append(Route(PATH, endpoint=McpEndpoint(desk, sessions)))
    return [sessions.run()]
