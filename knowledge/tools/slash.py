"""Slash commands: tools typed into the chat, with every backend (the only way with the
embedded model). ``/tools`` lists them; ``/<tool> key=value ...`` fills the tool's JSON schema
(values converted to its types), and a tool with one required string parameter takes the rest
of the line as it: ``/summarise leave-policy.pdf``."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from knowledge.tools.base import ToolCall, ToolError, ToolSpec

LIST = "tools"


class SlashUsageError(ToolError):
    """A slash command that cannot be mapped to its tool: ``str(err)`` says how to write it."""


@dataclass(frozen=True)
class Slash:
    """A parsed command: the list of tools (``call`` None), or one call."""

    call: ToolCall | None = None


def is_slash(text: str) -> bool:
    return text.lstrip().startswith("/")


def parse_slash(text: str, tools: Sequence[ToolSpec]) -> Slash:
    name, _, rest = text.strip().removeprefix("/").partition(" ")
    name, rest = name.strip().lower(), rest.strip()
    if name == LIST:
        return Slash()
    spec = next((s for s in tools if s.name == name), None)
    starting = [s for s in tools if s.name.startswith(name)] if name else []
    if spec is None and len(starting) == 1:  # a unique beginning: /summarise
        spec = starting[0]
    if spec is None:
        known = ", ".join(f"/{s.name}" for s in tools) or "none for you"
        raise SlashUsageError(f"There is no tool /{name}. Type /tools to list them ({known}).")
    return Slash(ToolCall(spec.name, arguments(spec, rest)))


def tool_list(tools: Sequence[ToolSpec]) -> str:
    """The ``/tools`` reply: each tool's usage and description (markdown)."""
    if not tools:
        return "No tools are available to you."
    lines = [
        f"- `{usage(s)}`: {s.description}" + (" (asks you first)" if s.acts else "") for s in tools
    ]
    return "Tools you can use:\n" + "\n".join(lines)


def usage(spec: ToolSpec) -> str:
    props = _properties(spec)
    required = _required(spec)
    words = [f"/{spec.name}"]
    if (single := _single_text(spec)) is not None:
        words.append(f"<{single}>")
    else:
        words += [f"{k}=<{_type(v)}>" for k, v in props.items() if k in required]
    words += [f"[{k}=<{_type(v)}>]" for k, v in props.items() if k not in required]
    return " ".join(words)


def arguments(spec: ToolSpec, rest: str) -> dict[str, Any]:
    props = _properties(spec)
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise _usage_error(spec, f"the quotes do not match ({exc})") from exc
    pairs = [w.partition("=") for w in words]
    if words and all(sep and key in props for key, sep, _ in pairs):
        found = {key: _convert(spec, key, value) for key, _, value in pairs}
    elif rest and (single := _single_text(spec)) is not None:
        found = {single: rest}
    elif rest:
        unknown = [
            w for (k, sep, _), w in zip(pairs, words, strict=True) if not sep or k not in props
        ]
        raise _usage_error(spec, f"cannot read {unknown[0]!r}")
    else:
        found = {}
    missing = [k for k in _required(spec) if k not in found]
    if missing:
        raise _usage_error(spec, f"missing {', '.join(missing)}")
    return found


def _convert(spec: ToolSpec, key: str, value: str) -> Any:
    kind = _type(_properties(spec)[key])
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError as exc:
        wanted = "a whole number" if kind == "integer" else "a number"
        raise _usage_error(spec, f"{key} must be {wanted}, not {value!r}") from exc
    if kind == "boolean":
        if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
            raise _usage_error(spec, f"{key} must be true or false, not {value!r}")
        return value.lower() in ("true", "yes", "1")
    if kind == "array":
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _usage_error(spec: ToolSpec, problem: str) -> SlashUsageError:
    return SlashUsageError(f"/{spec.name}: {problem}. Usage: {usage(spec)}")


def _single_text(spec: ToolSpec) -> str | None:
    """The one required string parameter that takes the rest of the line, if there is one."""
    required = _required(spec)
    props = _properties(spec)
    if len(required) == 1 and _type(props.get(required[0], {})) == "string":
        return required[0]
    return None


def _properties(spec: ToolSpec) -> Mapping[str, Mapping[str, Any]]:
    return dict(spec.parameters.get("properties") or {})


def _required(spec: ToolSpec) -> list[str]:
    return [str(k) for k in spec.parameters.get("required") or ()]


def _type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type", "string")
    return str(kind[0] if isinstance(kind, list) and kind else kind)
