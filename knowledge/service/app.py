"""The API application: one FastAPI app over one ``Desk`` (``kdesk serve``), with the
OpenAI-compatible routes, the REST routes and the MCP endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from knowledge.desk.root import Desk
from knowledge.service import mcp_http, openai_api, rest
from knowledge.service.errors import install_error_handlers
from knowledge.service.metering import Metering

DESCRIPTION = """Knowledge Desk as a service: grounded, cited answers from the company's
documents. Every request acts as the API key's user, with their roles, collections, persona
and rate limit. See docs/api.md."""


def create_app(desk: Desk, *, background: bool = False) -> FastAPI:
    """The app over ``desk``; ``background``: the desk's job runner and index refresher run
    while the app does (``kdesk serve``)."""
    lifetimes: list[AbstractAsyncContextManager[object]] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if background:
            desk.start_background()
        try:
            async with AsyncExitStack() as stack:
                for each in lifetimes:
                    await stack.enter_async_context(each)
                yield
        finally:
            if background:
                desk.stop_background()

    app = FastAPIOffline(  # the docs pages' scripts served from here: no CDN offline
        title="Knowledge Desk API",
        version=version("knowledge-desk"),
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.desk = desk
    install_error_handlers(app)
    app.add_middleware(Metering)

    @app.get("/health", tags=["Service"], summary="Whether the service is up (no key needed)")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(openai_api.router)
    app.include_router(rest.router)
    lifetimes.extend(mcp_http.mount_mcp(app, desk))
    return app


def serve(desk: Desk, host: str, port: int, log_level: str = "info") -> None:
    """Run the API until interrupted (``kdesk serve``)."""
    import uvicorn

    from knowledge.core.metrics import start_metrics_server

    start_metrics_server(desk.settings.metrics_port, desk.settings.metrics_host)
    uvicorn.run(create_app(desk, background=True), host=host, port=port, log_level=log_level)
