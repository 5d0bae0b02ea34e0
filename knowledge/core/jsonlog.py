"""Structured logs: one JSON object per line on the "kdesk" logger (exchanges, ingestion, ...).

    log.info("exchange", extra={"fields": {"event_id": ..., "total_ms": ...}})

becomes ``{"ts": "...", "level": "info", "logger": "kdesk.usage", "event": "exchange",
"event_id": ..., "total_ms": ...}``. Question texts are never logged (they may be personal).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

LOGGER = "kdesk"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written (test runners and servers swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_json_logging(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """Send the "kdesk" logger's records to ``stream`` (stderr) as JSON lines; idempotent."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    for handler in logger.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return
    handler = logging.StreamHandler(stream or _CurrentStderr())
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
