"""Tools from Python packages: entry points of the group ``knowledge_desk.tools``.

An entry point names a LangChain tool (``langchain_core.tools.BaseTool``, e.g. made with
``@tool``), a list of them, or a callable returning either; existing LangChain tools plug in
unchanged. Each is converted here, at the edge, to our ``Tool``: its arguments' JSON schema from
``args_schema``, ``acts`` from ``metadata={"acts": True}`` (default: it only reads). A plugin that
does not load is logged and skipped: it never stops the desk from starting."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from knowledge.tools.base import Tool, ToolContext, ToolError, ToolResult, ToolSpec

log = logging.getLogger("kdesk.tools")

GROUP = "knowledge_desk.tools"


class LangChainTool:
    """A LangChain tool as one of ours. It runs with the arguments only: a plugin never sees
    the desk, so it cannot read what the user may not."""

    def __init__(self, tool: Any, source: str) -> None:
        self.tool = tool
        self.spec = ToolSpec(
            name=str(tool.name),
            description=str(tool.description or "").strip(),
            parameters=arguments_schema(tool),
            acts=bool((tool.metadata or {}).get("acts", False)),
            source=source,
        )

    def run(self, context: ToolContext, arguments: Mapping[str, Any]) -> ToolResult:
        output = self.tool.invoke(dict(arguments))
        if isinstance(output, ToolResult):
            return output
        text = output if isinstance(output, str) else json.dumps(output, default=str)
        return ToolResult(text, data=output)


def arguments_schema(tool: Any) -> dict[str, Any]:
    """The JSON schema of a LangChain tool's arguments (an object)."""
    schema = tool.args_schema
    if schema is None:
        found: dict[str, Any] = {"type": "object", "properties": {}}
    elif isinstance(schema, dict):
        found = dict(schema)
    else:
        found = schema.model_json_schema()
    found.setdefault("type", "object")
    found.pop("title", None)
    found.pop("description", None)
    return found


class EntryPointTools:
    """The ``ToolSource`` of one installed distribution's (or every) entry points."""

    name = "plugins"

    def __init__(self, group: str = GROUP) -> None:
        self.group = group

    def tools(self) -> list[Tool]:
        found: list[Tool] = []
        for entry in entry_points(group=self.group):
            try:
                found.extend(loaded(entry))
            except Exception:  # noqa: BLE001 - a broken plugin must not stop the desk
                dist = entry.dist.name if entry.dist else "?"
                log.exception(
                    "tool plugin skipped",
                    extra={"fields": {"entry_point": entry.name, "distribution": dist}},
                )
        return found


def loaded(entry: EntryPoint) -> list[Tool]:
    """The tools one entry point gives; ToolError when it gives something else."""
    from langchain_core.tools import BaseTool

    source = f"plugin:{entry.dist.name if entry.dist else entry.module}"
    target = entry.load()
    if callable(target) and not isinstance(target, BaseTool):
        target = target()
    items = target if isinstance(target, list | tuple) else [target]
    if not all(isinstance(item, BaseTool) for item in items):
        raise ToolError(f"Entry point {entry.name} gives no LangChain tools.")
    return [LangChainTool(item, source) for item in items]
