"""`kdesk mcp`: the desk as an MCP server on stdio, for an assistant that starts it (Claude
Desktop, an IDE). It acts as the user of the API key in KDESK_API_KEY (or --key-file), with
their permissions; it refuses to start without a valid key that may read (docs/api.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from knowledge.cli import common
from knowledge.core.errors import KdeskError
from knowledge.core.settings import load_settings

KEY_VARIABLE = "KDESK_API_KEY"


def api_key(key_file: Path | None) -> str:
    """The key from --key-file, else from KDESK_API_KEY (the environment or .env)."""
    if key_file is not None:
        try:
            secret = key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KdeskError(f"Cannot read the key file {key_file}: {exc.strerror}.") from None
        if not secret:
            raise KdeskError(f"The key file {key_file} is empty.")
        return secret
    secret = load_settings().api_key.get_secret_value().strip()
    if not secret:
        raise KdeskError(
            f"kdesk mcp needs an API key: set {KEY_VARIABLE} or give --key-file "
            "(create one on the Account page or with `kdesk keys create`)."
        )
    return secret


def cmd_mcp(args: argparse.Namespace) -> int:
    from knowledge.service.auth import authenticate
    from knowledge.service.mcp_server import build_server

    secret = api_key(args.key_file)
    desk = common.open_desk()
    caller = authenticate(desk, secret)  # InvalidApiKeyError: the reason, exit code 2
    caller.require("read")
    # every call checks the key again: a key revoked while the server runs stops working
    server = build_server(desk, lambda ctx: authenticate(desk, secret))
    print(f"Knowledge Desk MCP server on stdio as {caller.key.user}", file=sys.stderr)
    server.run("stdio")  # stdout is the protocol's: nothing else is printed there
    return 0


def add_mcp_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("mcp", help="serve the knowledge base to an assistant over MCP (stdio)")
    p.add_argument(
        "--key-file", type=Path, help=f"read the API key from this file (default: ${KEY_VARIABLE})"
    )
    p.set_defaults(func=cmd_mcp)
