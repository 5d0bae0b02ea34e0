"""Every tool the desk knows: those of its sources (built in, plugins, MCP servers, webhooks),
listed once and then held. A tool whose name is malformed or taken by an earlier source is
logged and left out; a source that fails to list is logged and skipped."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence

from knowledge.core.settings import Settings
from knowledge.tools.base import Tool, ToolSource
from knowledge.tools.builtin import ModelGetter, builtin_tools
from knowledge.tools.plugins import EntryPointTools

log = logging.getLogger("kdesk.tools")

TOOL_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")


class ToolRegistry:
    def __init__(self, sources: Sequence[ToolSource]) -> None:
        self.sources = list(sources)
        self._tools: dict[str, Tool] | None = None
        self._lock = threading.Lock()

    def tools(self) -> dict[str, Tool]:
        """Tools by name, in the sources' order (the first source's tool keeps its name)."""
        if self._tools is None:
            with self._lock:
                if self._tools is None:
                    self._tools = self._listed()
        return self._tools

    def get(self, name: str) -> Tool | None:
        return self.tools().get(name)

    def refresh(self) -> None:
        """List the sources again (a plugin installed, a server added)."""
        with self._lock:
            self._tools = None

    def _listed(self) -> dict[str, Tool]:
        found: dict[str, Tool] = {}
        for source in self.sources:
            for tool in _listed(source):
                name = tool.spec.name
                if not TOOL_NAME.match(name) or name in found:
                    why = "name taken" if name in found else "malformed name"
                    log.warning("tool skipped (%s)", why, extra={"fields": {"tool": name}})
                    continue
                found[name] = tool
        return found


class StaticTools:
    """A ``ToolSource`` of tools given in code (the built-in ones, tests)."""

    def __init__(self, name: str, tools: Sequence[Tool]) -> None:
        self.name = name
        self._tools = list(tools)

    def tools(self) -> list[Tool]:
        return list(self._tools)


class ConfiguredTools:
    """The MCP servers and webhooks of the admins' tools file (knowledge.tools.external), read
    when the tools are first listed: a bad file is logged and skipped, never stops the desk."""

    name = "tools file"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def tools(self) -> list[Tool]:
        from knowledge.tools.external import configured_sources

        return [tool for source in configured_sources(self.settings) for tool in _listed(source)]


def _listed(source: ToolSource) -> list[Tool]:
    try:
        return source.tools()
    except Exception:  # noqa: BLE001 - one broken server must not hide the others
        log.exception("tool source skipped", extra={"fields": {"source": source.name}})
        return []


def desk_registry(
    model: ModelGetter, settings: Settings | None = None, extra: Sequence[ToolSource] = ()
) -> ToolRegistry:
    """The desk's tools: the built-in ones, the plugins' (entry points), the tools file's (MCP
    servers, webhooks) when ``settings`` are given, then ``extra``."""
    configured = [ConfiguredTools(settings)] if settings is not None else []
    builtin = StaticTools("builtin", builtin_tools(model))
    return ToolRegistry([builtin, EntryPointTools(), *configured, *extra])
