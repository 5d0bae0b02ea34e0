"""The tools file admins write (TOML or JSON): MCP servers and webhooks, checked when loaded
with an error naming the entry and the field."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from knowledge.core.errors import KdeskError
from knowledge.tools import secrets

NAME = r"^[a-z0-9_-]{1,64}$"
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class ToolsFileError(KdeskError):
    """The tools file cannot be read or an entry in it is wrong."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class McpToolOverride(_Entry):
    acts: bool | None = None
    enabled: bool = True


class McpServerConfig(_Entry):
    name: str = Field(pattern=NAME)
    command: str = ""  # stdio: the program that runs the server
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)  # values may hold ${ENV_VAR}
    cwd: str = ""
    url: str = ""  # Streamable HTTP: the server's endpoint, e.g. http://host:8000/mcp
    headers: dict[str, str] = Field(default_factory=dict)  # values may hold ${ENV_VAR}
    acts: bool = True  # its tools change things unless a tool says otherwise below
    tools: dict[str, McpToolOverride] = Field(default_factory=dict)
    timeout_s: float = Field(30.0, gt=0, le=600)
    connect_timeout_s: float = Field(10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("give either command (stdio) or url (Streamable HTTP), not both")
        if self.url and urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError("url must be http:// or https://")
        _check_secrets([*self.env.values(), *self.headers.values()])
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command else "http"


class WebhookConfig(_Entry):
    name: str = Field(pattern=NAME)
    description: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str  # may hold {{argument}} (URL-encoded when filled in)
    body: dict[str, Any] | list[Any] | None = None  # JSON, its strings may hold {{argument}}
    headers: dict[str, str] = Field(default_factory=dict)  # values may hold ${ENV_VAR}
    timeout_s: float = Field(10.0, gt=0, le=120)
    acts: bool = True

    @model_validator(mode="after")
    def _check(self) -> WebhookConfig:
        if self.parameters.get("type") != "object":
            raise ValueError('parameters must be a JSON schema of type "object"')
        if urlsplit(PLACEHOLDER.sub("x", self.url)).scheme not in ("http", "https"):
            raise ValueError("url must be http:// or https://")
        if secrets.referenced(self.url):
            raise ValueError("url may not hold ${...} secrets: put them in headers")
        if any(PLACEHOLDER.search(v) for v in self.headers.values()):
            raise ValueError("headers may hold ${ENV_VAR} secrets, not {{arguments}}")
        _check_secrets(self.headers.values())
        return self


class ToolsConfig(_Entry):
    webhook_hosts: list[str] = Field(default_factory=list)
    mcp_servers: list[McpServerConfig] = Field(default_factory=list)
    webhooks: list[WebhookConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> ToolsConfig:
        for kind, entries in (("mcp_servers", self.mcp_servers), ("webhooks", self.webhooks)):
            names = [e.name for e in entries]
            doubled = sorted({n for n in names if names.count(n) > 1})
            if doubled:
                raise ValueError(f"{kind}: the name {doubled[0]!r} is used twice")
        return self


def _check_secrets(values: Iterable[str]) -> None:
    absent = secrets.missing(values)
    if absent:
        raise ValueError(f"the environment does not set {', '.join(absent)}")


def host_allowed(url: str, hosts: Iterable[str]) -> bool:
    """An http(s) URL without user info whose host (or host:port) is on the allow-list."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return False
    try:
        port = parts.port
    except ValueError:
        return False
    host = parts.hostname.lower()
    allowed = {h.strip().lower() for h in hosts if h.strip()}
    return host in allowed or (port is not None and f"{host}:{port}" in allowed)


def read_tools_file(path: Path, extra_hosts: Iterable[str] = ()) -> ToolsConfig:
    """The checked tools file; webhooks whose URL is outside the allow-list are refused."""
    try:
        raw = _parse(path)
        config = ToolsConfig.model_validate(raw)
    except ValidationError as exc:
        raise ToolsFileError(f"Tools file {path}: {_describe(exc, raw)}") from None
    hosts = [*config.webhook_hosts, *extra_hosts]
    for index, hook in enumerate(config.webhooks):
        if not host_allowed(PLACEHOLDER.sub("x", hook.url), hosts):
            raise ToolsFileError(
                f"Tools file {path}: webhooks[{index}] ({hook.name}).url: the host of "
                f"{hook.url} is not in the webhook allow-list (webhook_hosts in the file or "
                "KDESK_WEBHOOK_HOSTS)"
            )
    return config.model_copy(update={"webhook_hosts": hosts})


def _parse(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolsFileError(f"Tools file {path} cannot be read: {exc}") from None
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ToolsFileError(f"Tools file {path} is not valid {kind}: {exc}") from None


def _describe(exc: ValidationError, raw: Any) -> str:
    problems = []
    for err in exc.errors():
        where = _location(err["loc"], raw)
        problems.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(problems)


def _location(loc: tuple[int | str, ...], raw: Any) -> str:
    """``webhooks[0] (create_ticket).url`` for pydantic's ``("webhooks", 0, "url")``."""
    text, node = "", raw
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, Mapping) and isinstance(node.get("name"), str):
                text += f" ({node['name']})"
        else:
            text += f".{part}" if text else part
            node = node.get(part) if isinstance(node, Mapping) else None
    return text
