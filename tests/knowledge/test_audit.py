"""The audit log: append, query by day, actor, action and outcome, export - on a SQLite file
and on PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from knowledge.access.audit import AuditLog, AuditQuery, AuditRow, audit_csv
from tests.db import migrated_engine


def make_log(url: str) -> AuditLog:
    return AuditLog(migrated_engine(url))


def test_events_are_stored_newest_first_with_their_details(database_url: str):
    log = make_log(database_url)
    log.record("ann", "sign_in", "ann", channel="chat", method="local")
    log.record("ann", "upload", "HR/leave.pdf", channel="chat", status="added")
    log.record("bob", "permission_denied", "page:roles", outcome="denied", channel="chat")
    events = log.events()
    assert [e.action for e in events] == ["permission_denied", "upload", "sign_in"]
    assert events[1].detail == {"status": "added"} and events[1].target == "HR/leave.pdf"
    assert events[0].outcome == "denied" and events[0].at.tzinfo is not None


def test_filters(database_url: str):
    log = make_log(database_url)
    log.record("ann", "sign_in", "ann")
    log.record("bob", "sign_in_failed", "bob", outcome="failed")
    log.record("bob", "sign_in", "bob")
    with log.engine.begin() as connection:  # move ann's sign-in two days back
        old = datetime.now(UTC) - timedelta(days=2)
        connection.execute(update(AuditRow).where(AuditRow.actor == "ann").values(at=old))
    assert [e.actor for e in log.events(AuditQuery(actor="bob"))] == ["bob", "bob"]
    assert [e.action for e in log.events(AuditQuery(actions=("sign_in",)))] == [
        "sign_in",
        "sign_in",
    ]
    today = datetime.now(UTC).date()
    assert {e.actor for e in log.events(AuditQuery(since=today))} == {"bob"}
    assert {e.actor for e in log.events(AuditQuery(until=today - timedelta(days=1)))} == {"ann"}
    assert [e.actor for e in log.events(AuditQuery(outcome="failed"))] == ["bob"]
    assert len(log.events(AuditQuery(limit=1))) == 1


def test_csv_export(database_url: str):
    log = make_log(database_url)
    log.record("ann", "role_saved", "sales", collections=["Sales"])
    rows = list(csv.DictReader(io.StringIO(audit_csv(log.events()).decode())))
    assert rows[0]["actor"] == "ann" and rows[0]["action"] == "role_saved"
    assert rows[0]["detail"] == '{"collections": ["Sales"]}'


def test_a_failing_write_never_raises(database_url: str):
    log = make_log(database_url)
    with log.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE audit_events")
    log.record("ann", "sign_in", "ann")  # logged, not raised
