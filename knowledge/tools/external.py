"""The tools admins configured in the tools file, as sources for the tools registry."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from knowledge.core.settings import Settings
from knowledge.tools.base import Tool, ToolSource
from knowledge.tools.config import ToolsConfig, read_tools_file
from knowledge.tools.mcp_source import McpSource
from knowledge.tools.webhook import WebhookTool


class WebhookSource:
    """The admins' webhooks, one source."""

    name = "webhooks"

    def __init__(self, tools: Sequence[WebhookTool]) -> None:
        self._tools = list(tools)

    def tools(self) -> list[Tool]:
        return list(self._tools)


def tools_file(settings: Settings) -> Path | None:
    """``KDESK_TOOLS_FILE``, else data_dir/tools.toml or tools.json if one exists."""
    if settings.tools_file is not None:
        return settings.tools_file
    for name in ("tools.toml", "tools.json"):
        if (settings.data_dir / name).is_file():
            return settings.data_dir / name
    return None


def configured_sources(settings: Settings) -> list[ToolSource]:
    """One source per MCP server and one for the webhooks; none without a tools file. A bad
    file raises ``ToolsFileError`` naming the entry and the field."""
    path = tools_file(settings)
    if path is None:
        return []
    hosts = [h for h in settings.webhook_hosts.split(",") if h.strip()]
    return sources_of(read_tools_file(path, hosts))


def sources_of(config: ToolsConfig) -> list[ToolSource]:
    sources: list[ToolSource] = [McpSource(server) for server in config.mcp_servers]
    if config.webhooks:
        hooks = [WebhookTool(hook, config.webhook_hosts) for hook in config.webhooks]
        sources.append(WebhookSource(hooks))
    return sources
