"""The audit log: who signed in (or failed to), who uploaded, deleted, changed roles or users,
which requests were denied, rate limited or blocked by compliance rules, which tools were called.

One append-only table, ``audit_events``, in the project database. Rows are never updated;
nothing in the application deletes them. Details are small JSON objects: names, ids and
counts - never passwords, never question or answer texts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from sqlalchemy import Engine, Index, Integer, String, Text, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.core.db import Base, UTCDateTime, utc_now
from knowledge.core.exports import csv_bytes

log = logging.getLogger("kdesk.audit")

AuditAction = Literal[
    "sign_in",
    "sign_in_failed",
    "sign_out",
    "account_locked",
    "password_changed",
    "password_reset",
    "user_added",
    "user_removed",
    "user_unlocked",
    "user_roles_changed",
    "role_saved",
    "role_deleted",
    "upload",
    "document_deleted",
    "document_versioned",
    "clause_reviewed",
    "permission_denied",
    "rate_limited",
    "compliance_block",
    "retrieve_as",
    "tool_call",
    "api_key_created",
    "api_key_revoked",
    "api_key_refused",
]
AUDIT_ACTIONS: tuple[str, ...] = AuditAction.__args__  # type: ignore[attr-defined]
Outcome = Literal["ok", "denied", "failed"]


class AuditRow(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_actor", "actor", "at"),
        Index("ix_audit_events_action", "action", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))  # who did it ("system" for the app itself)
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(500), default="")  # a user, role, document...
    outcome: Mapped[str] = mapped_column(String(10), default="ok")
    channel: Mapped[str] = mapped_column(String(20), default="")  # "chat", "cli", "api"
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON object


@dataclass(frozen=True)
class AuditEvent:
    at: datetime
    actor: str
    action: str
    target: str = ""
    outcome: str = "ok"
    channel: str = ""
    detail: dict[str, object] = field(default_factory=dict)
    id: int = 0


@dataclass(frozen=True)
class AuditQuery:
    since: date | None = None  # UTC days, both ends included
    until: date | None = None
    actor: str | None = None
    actions: tuple[str, ...] = ()
    outcome: str | None = None
    limit: int = 1000


def _start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        actor: str,
        action: AuditAction,
        target: str = "",
        *,
        outcome: Outcome = "ok",
        channel: str = "",
        **detail: object,
    ) -> None:
        """Append one event. Never raises: a failing audit write is logged, not shown to users
        (the action it describes has already happened or been refused)."""
        row = {
            "at": utc_now(),
            "actor": actor[:200],
            "action": action,
            "target": target[:500],
            "outcome": outcome,
            "channel": channel,
            "detail": json.dumps(detail, ensure_ascii=False, default=str, sort_keys=True),
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(AuditRow), [row])
        except Exception:  # noqa: BLE001
            log.exception("audit event not stored", extra={"fields": {"action": action}})
        fields = {k: row[k] for k in ("actor", "action", "target", "outcome", "channel")}
        log.info("audit", extra={"fields": fields})

    def events(self, query: AuditQuery | None = None) -> list[AuditEvent]:
        """Matching events, newest first."""
        query = query or AuditQuery()
        a = AuditRow
        conditions = []
        if query.since:
            conditions.append(a.at >= _start_of(query.since))
        if query.until:
            conditions.append(a.at < _start_of(query.until) + timedelta(days=1))
        if query.actor:
            conditions.append(a.actor == query.actor)
        if query.actions:
            conditions.append(a.action.in_(query.actions))
        if query.outcome:
            conditions.append(a.outcome == query.outcome)
        statement = (
            select(a).where(*conditions).order_by(a.at.desc(), a.id.desc()).limit(query.limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        return [
            AuditEvent(
                at=r["at"],
                actor=r["actor"],
                action=r["action"],
                target=r["target"],
                outcome=r["outcome"],
                channel=r["channel"],
                detail=json.loads(r["detail"] or "{}"),
                id=r["id"],
            )
            for r in rows
        ]


EXPORT_COLUMNS = ("at", "actor", "action", "target", "outcome", "channel", "detail")


def audit_rows(events: Sequence[AuditEvent]) -> list[dict[str, object]]:
    return [
        {
            "at": e.at.isoformat(timespec="seconds"),
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "outcome": e.outcome,
            "channel": e.channel,
            "detail": json.dumps(e.detail, ensure_ascii=False, sort_keys=True),
        }
        for e in events
    ]


def audit_csv(events: Sequence[AuditEvent]) -> bytes:
    return csv_bytes(audit_rows(events), EXPORT_COLUMNS)
