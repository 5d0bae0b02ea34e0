"""docker-compose.yml as Compose reads it: YAML, then ``${...}`` interpolation."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.deploy.tools import COMPOSE_FILE

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt}
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")


def required_placeholder(name: str) -> str:
    """What a required variable (``${NAME:?...}``) stands for in the tests: URL-safe."""
    return f"set-{name.lower()}"


def interpolate(value: Any) -> Any:
    """Compose's interpolation with nothing set in the environment: defaults are taken,
    required variables become a placeholder, unset ones are empty; ``$$`` is a ``$``."""
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        op = match.group("op") or ""
        if op.endswith("-"):
            return match.group("arg")
        if op.endswith("?"):
            return required_placeholder(match.group("name"))
        return ""

    parts = value.split("$$")
    return "$".join(VARIABLE.sub(replace, part) for part in parts)


def raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def load() -> dict[str, Any]:
    """The compose file after interpolation (what Compose validates and runs)."""
    return interpolate(raw())  # type: ignore[no-any-return]


def variables() -> set[str]:
    """Every variable the compose file interpolates."""
    return {m.group("name") for m in VARIABLE.finditer(COMPOSE_FILE.read_text())}


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment (map or list form) as a dict of strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {key: value for key, value in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def published_container_ports(service: dict[str, Any]) -> list[int]:
    """The container ports a service publishes on the host (short and long syntax)."""
    ports = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            if entry.get("published") is not None:
                ports.append(int(str(entry["target"]).split("-")[0]))
            continue
        text = str(entry).split("/")[0]  # "8080:8080/tcp"
        container = text.rsplit(":", 1)[-1]
        ports.append(int(container.split("-")[0]))
    return ports


def volume_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume of a service (short and long syntax)."""
    mounts = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            source, target = str(entry).split(":")[:2]
            mounts.append((source, target))
    return mounts
