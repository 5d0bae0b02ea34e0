"""`kdesk serve`: the API (OpenAI-compatible, REST, MCP over HTTP) on uvicorn (docs/api.md)."""

from __future__ import annotations

import argparse

from knowledge.cli import common


def cmd_serve(args: argparse.Namespace) -> int:
    from knowledge.service.app import serve

    desk = common.open_desk()
    given = {"api_host": args.host, "api_port": args.port}
    if any(given.values()):  # the citations' links name the address actually served
        update = {name: value for name, value in given.items() if value}
        desk.settings = desk.settings.model_copy(update=update)
    s = desk.settings
    host, port = s.api_host, s.api_port
    print(f"Knowledge Desk API on http://{host}:{port} (docs: http://{host}:{port}/docs)")
    serve(desk, host, port, log_level=s.log_level.lower())
    return 0


def add_service_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the API: OpenAI-compatible, REST and MCP (docs/api.md)")
    p.add_argument("--host", help="the address to listen on (default: KDESK_API_HOST)")
    p.add_argument("--port", type=int, help="the port (default: KDESK_API_PORT, 8100)")
    p.set_defaults(func=cmd_serve)
