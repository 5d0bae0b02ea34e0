"""``${ENV_VAR}`` secrets of the tools file: read from the environment when a tool is called,
and masked out of every message that may reach a log or a user."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MASK = "[secret]"


def referenced(value: str) -> list[str]:
    """The environment variables ``value`` refers to."""
    return _REFERENCE.findall(value)


def missing(values: Iterable[str]) -> list[str]:
    """The variables referred to in ``values`` that the environment does not set."""
    return sorted({name for v in values for name in referenced(v) if name not in os.environ})


class Secrets:
    """The secret values resolved so far, to mask them wherever text leaves a tool."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def resolve(self, value: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            secret = os.environ.get(match.group(1))
            if secret is None:
                raise KeyError(match.group(1))
            if secret:
                self._values.add(secret)
            return secret

        return _REFERENCE.sub(substitute, value)

    def resolve_all(self, values: Mapping[str, str]) -> dict[str, str]:
        return {key: self.resolve(value) for key, value in values.items()}

    def redact(self, text: str) -> str:
        for secret in sorted(self._values, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text
