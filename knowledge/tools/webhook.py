"""An HTTP call an admin defined as a tool ("create a ticket in the service desk"): arguments
filled into a URL and a JSON body, secrets from the environment that never reach a log or a
message, hosts from an allow-list only."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from knowledge.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, ToolTimeout
from knowledge.tools.config import PLACEHOLDER, WebhookConfig, host_allowed
from knowledge.tools.secrets import Secrets

log = logging.getLogger("kdesk.tools.webhook")
SUMMARY_CHARS = 600


class WebhookTool:
    def __init__(self, config: WebhookConfig, hosts: Iterable[str]) -> None:
        self._config = config
        self._hosts = tuple(hosts)
        self._secrets = Secrets()
        self._spec = ToolSpec(
            name=config.name,
            description=config.description,
            parameters=config.parameters,
            acts=config.acts,
            source="webhook",
        )

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    def run(self, context: ToolContext, arguments: Mapping[str, Any]) -> ToolResult:
        absent = [n for n in self._config.parameters.get("required", []) if n not in arguments]
        if absent:
            raise ToolError(f"Webhook {self._config.name} needs {', '.join(map(repr, absent))}")
        url = fill_url(self._config.url, arguments)
        if not host_allowed(url, self._hosts):
            raise ToolError(f"Webhook {self._config.name}: {url} is not an allowed host")
        body = fill_json(self._config.body, arguments) if self._config.body is not None else None
        try:
            headers = self._secrets.resolve_all(self._config.headers)
        except KeyError as missing:
            raise ToolError(
                f"Webhook {self._config.name}: the environment no longer sets {missing.args[0]}"
            ) from None
        return self._send(url, body, headers)

    def _send(self, url: str, body: Any, headers: dict[str, str]) -> ToolResult:
        name, timeout = self._config.name, self._config.timeout_s
        try:
            response = httpx.request(
                self._config.method, url, json=body, headers=headers, timeout=timeout
            )
        except httpx.TimeoutException:
            log.warning("webhook %s timed out after %g s", name, timeout)
            raise ToolTimeout(f"Webhook {name} did not answer within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            message = self._secrets.redact(f"{type(exc).__name__}: {exc}")
            log.warning("webhook %s failed: %s", name, message)
            raise ToolError(f"Webhook {name} could not be reached ({message})") from None
        summary = self._secrets.redact(summarise(response))
        if not response.is_success:
            log.warning("webhook %s answered HTTP %d", name, response.status_code)
            raise ToolError(f"Webhook {name}: the service answered HTTP {summary}")
        log.info("webhook %s answered HTTP %d", name, response.status_code)
        return ToolResult(text=f"HTTP {summary}", data=self._data(response))

    def _data(self, response: httpx.Response) -> dict[str, Any]:
        try:
            payload: Any = response.json()
        except ValueError:
            payload = self._secrets.redact(response.text[:SUMMARY_CHARS])
        return {"status": response.status_code, "body": payload}


def fill_url(template: str, arguments: Mapping[str, Any]) -> str:
    """Arguments URL-encoded into the URL, so none can change its host or path."""
    return PLACEHOLDER.sub(
        lambda m: quote(_text(_argument(arguments, m.group(1))), safe=""), template
    )


def fill_json(template: Any, arguments: Mapping[str, Any]) -> Any:
    """The body with its placeholders filled in: a string that is only ``{{name}}`` takes the
    argument as it is (number, list, ...), other strings take its text; the body is built as a
    value and serialised afterwards, so an argument cannot break out of its string."""
    if isinstance(template, dict):
        return {key: fill_json(value, arguments) for key, value in template.items()}
    if isinstance(template, list):
        return [fill_json(value, arguments) for value in template]
    if not isinstance(template, str):
        return template
    whole = PLACEHOLDER.fullmatch(template.strip())
    if whole:
        return _argument(arguments, whole.group(1))
    return PLACEHOLDER.sub(lambda m: _text(_argument(arguments, m.group(1))), template)


def _argument(arguments: Mapping[str, Any], name: str) -> Any:
    if name not in arguments:
        raise ToolError(f"The argument {name!r} is missing")
    return arguments[name]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def summarise(response: httpx.Response) -> str:
    """``201 Created: {"id": 42}``, the body shortened."""
    text = response.text.strip()
    with contextlib.suppress(ValueError):
        text = json.dumps(response.json(), ensure_ascii=False)
    if len(text) > SUMMARY_CHARS:
        text = text[:SUMMARY_CHARS] + "..."
    head = f"{response.status_code} {response.reason_phrase}".strip()
    return f"{head}: {text}" if text else head
