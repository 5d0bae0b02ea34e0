"""Every API request counted and timed for Prometheus (``kdesk_api_requests_total``,
``kdesk_api_request_seconds``), labelled by the route's template (``/api/documents/{doc_id}``),
never by the path a client sent, so labels stay few."""

from __future__ import annotations

import time

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from knowledge.core import metrics

UNMATCHED = "unmatched"


def route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None) if isinstance(route, BaseRoute) else None
    if path is None and scope.get("path", "").startswith("/mcp"):
        return "/mcp"
    return path or UNMATCHED


class Metering:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        responded = False

        def count(status: int) -> None:
            route = route_label(scope)
            metrics.API_REQUESTS.labels(scope["method"], route, str(status)).inc()
            metrics.API_SECONDS.labels(route).observe(time.perf_counter() - started)

        async def counted(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.start":  # counted before the client sees it
                responded = True
                count(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except Exception:
            if not responded:
                count(500)
            raise
