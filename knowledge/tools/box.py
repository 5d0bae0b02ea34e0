"""The tool box of one signed-in user: the tools their roles give, and the one way to call
them. Every call is checked in this order - the user's roles allow the tool, the arguments fit
its schema, a tool that acts has the user's yes - then runs as the user (the tool reads through
their ``ToolContext``) within a timeout; its outcome goes to the audit log, the ``tool_calls``
table and the metrics, whatever it is. A failure becomes a message, never an exception: the
answer it was called for goes on."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from knowledge.access.audit import AuditLog
from knowledge.core import metrics
from knowledge.tools.base import (
    Tool,
    ToolCall,
    ToolContext,
    ToolError,
    ToolOutcome,
    ToolResult,
    ToolSpec,
)
from knowledge.tools.calls import ToolCallLog
from knowledge.tools.registry import ToolRegistry

log = logging.getLogger("kdesk.tools")

_AUDIT_OUTCOME = {"ok": "ok", "denied": "denied", "needs_confirmation": "denied"}


class UserToolBox:
    def __init__(
        self,
        registry: ToolRegistry,
        context: ToolContext,
        may_use: Callable[[str], bool],
        *,
        audit: AuditLog,
        calls: ToolCallLog,
        timeout_s: float,
    ) -> None:
        self.registry = registry
        self.context = context
        self.may_use = may_use
        self.audit = audit
        self.calls = calls
        self.timeout_s = timeout_s

    def available(self) -> list[ToolSpec]:
        return [t.spec for name, t in self.registry.tools().items() if self.may_use(name)]

    def call(self, call: ToolCall, *, confirmed: bool = False) -> ToolOutcome:
        started = time.perf_counter()
        tool = self.registry.get(call.name)
        if tool is None or not self.may_use(call.name):
            message = f"No tool {call.name!r} is available to you."
            outcome = ToolOutcome(call, "denied", message=message)
        else:
            outcome = self._checked(tool, call, confirmed)
        outcome = ToolOutcome(
            call,
            outcome.outcome,
            outcome.result,
            outcome.message,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
        self._record(tool, outcome)
        return outcome

    def _checked(self, tool: Tool, call: ToolCall, confirmed: bool) -> ToolOutcome:
        spec = tool.spec
        problem = argument_problem(spec, call.arguments)
        if problem:
            return ToolOutcome(call, "failed", message=f"{spec.name}: {problem}")
        if spec.acts and not confirmed:
            shown = json.dumps(dict(call.arguments), ensure_ascii=False, default=str)
            return ToolOutcome(
                call,
                "needs_confirmation",
                message=f"{spec.name} acts outside the desk. Run it with {shown}?",
            )
        return self._run(tool, call)

    def _run(self, tool: Tool, call: ToolCall) -> ToolOutcome:
        """The tool in a thread, waited for ``timeout_s``: a tool that hangs is reported, and
        left to finish on its own (a thread cannot be stopped)."""
        done: dict[str, Any] = {}

        def target() -> None:
            try:
                done["result"] = tool.run(self.context, call.arguments)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller below
                done["error"] = exc

        worker = threading.Thread(target=target, name=f"kdesk-tool-{call.name}", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        name = tool.spec.name
        if worker.is_alive():
            message = f"{name} did not finish within {self.timeout_s:g} s; going on without it."
            return ToolOutcome(call, "timeout", message=message)
        if "error" in done:
            return ToolOutcome(call, "failed", message=failure_message(name, done["error"]))
        result = done.get("result")
        if not isinstance(result, ToolResult):
            return ToolOutcome(call, "failed", message=f"{name} gave no result.")
        return ToolOutcome(call, "ok", result)

    def _record(self, tool: Tool | None, outcome: ToolOutcome) -> None:
        who = self.context.requester
        name = tool.spec.name if tool else outcome.call.name
        source = tool.spec.source if tool else ""
        self.audit.record(
            who.user,
            "tool_call",
            name,
            outcome=_AUDIT_OUTCOME.get(outcome.outcome, "failed"),  # type: ignore[arg-type]
            channel=who.channel,
            tool_outcome=outcome.outcome,
            source=source,
            duration_ms=round(outcome.duration_ms, 1),
        )
        self.calls.record(
            who,
            name,
            source,
            outcome.outcome,
            outcome.duration_ms,
            dict(outcome.call.arguments),
            outcome.message,
        )
        label = name if tool else "unknown"  # a name a model made up never becomes a label
        metrics.TOOL_CALLS.labels(label, outcome.outcome).inc()
        metrics.TOOL_SECONDS.labels(label).observe(outcome.duration_ms / 1000)


def argument_problem(spec: ToolSpec, arguments: Mapping[str, Any]) -> str:
    """What is wrong with the arguments for the tool's JSON schema ("" when nothing)."""
    try:
        validator = Draft202012Validator(dict(spec.parameters))
        errors = sorted(validator.iter_errors(dict(arguments)), key=lambda e: list(e.path))
    except SchemaError:
        return "its parameter schema is broken; tell an administrator."
    if not errors:
        return ""
    first = errors[0]
    where = ".".join(str(p) for p in first.path)
    return f"argument {where}: {first.message}" if where else first.message


def failure_message(name: str, error: BaseException) -> str:
    if isinstance(error, ToolError):
        return str(error)
    log.error("tool failed", exc_info=error, extra={"fields": {"tool": name}})
    detail = str(error) or type(error).__name__
    return f"{name} failed: {detail}"
