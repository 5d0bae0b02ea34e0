"""The tool calls made, one row each in ``tool_calls``: who called which tool, its outcome and
duration, and the arguments kept like questions (``KDESK_QUESTION_STORAGE``: all, a redacted
copy, or nothing)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Float, Index, Integer, String, Text, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.core.db import Base, UTCDateTime, utc_now
from knowledge.core.redaction import QuestionStorage, redact
from knowledge.core.types import Requester

log = logging.getLogger("kdesk.tools")


class ToolCallRow(Base):
    __tablename__ = "tool_calls"
    __table_args__ = (
        Index("ix_tool_calls_at", "at"),
        Index("ix_tool_calls_tool", "tool", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    user: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20))
    tool: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20))
    duration_ms: Mapped[float] = mapped_column(Float)
    arguments: Mapped[str | None] = mapped_column(Text)  # JSON, as KDESK_QUESTION_STORAGE keeps it
    message: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class ToolCallRecord:
    at: datetime
    user: str
    role: str
    channel: str
    tool: str
    source: str
    outcome: str
    duration_ms: float
    arguments: str | None
    message: str


def stored_arguments(arguments: object, storage: QuestionStorage) -> str | None:
    if storage == "off":
        return None
    text = json.dumps(arguments, ensure_ascii=False, default=str, sort_keys=True)
    return redact(text) if storage == "redacted" else text


class ToolCallLog:
    def __init__(self, engine: Engine, storage: QuestionStorage = "full") -> None:
        self.engine = engine
        self.storage = storage

    def record(
        self,
        who: Requester,
        tool: str,
        source: str,
        outcome: str,
        duration_ms: float,
        arguments: object,
        message: str = "",
    ) -> None:
        """Never raises: a call that happened stays happened when its row cannot be stored."""
        row = {
            "at": utc_now(),
            "user": who.user[:200],
            "role": who.role[:100],
            "channel": who.channel[:20],
            "tool": tool[:64],
            "source": source[:200],
            "outcome": outcome,
            "duration_ms": round(duration_ms, 1),
            "arguments": stored_arguments(arguments, self.storage),
            "message": message[:2000],
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(ToolCallRow), [row])
        except Exception:  # noqa: BLE001
            log.exception("tool call not recorded", extra={"fields": {"tool": tool}})

    def recent(self, limit: int = 100, tool: str | None = None) -> list[ToolCallRecord]:
        """The newest calls first."""
        t = ToolCallRow
        statement = select(t).order_by(t.at.desc(), t.id.desc()).limit(limit)
        if tool:
            statement = statement.where(t.tool == tool)
        with self.engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        fields = ToolCallRecord.__dataclass_fields__
        return [ToolCallRecord(**{k: r[k] for k in fields}) for r in rows]
