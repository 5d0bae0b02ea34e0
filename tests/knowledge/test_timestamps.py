"""One timestamp column type for every table: stored with its zone, read back in UTC, on SQLite
(which keeps no zone) and on PostgreSQL (whose session zone could be anything)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Column, Integer, MetaData, Table, insert, select

from knowledge.core.db import UTCDateTime, as_utc, make_engine


def test_timestamps_come_back_in_utc(database_url):
    table = Table(
        "stamps", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime())
    )
    engine = make_engine(database_url)
    table.metadata.create_all(engine)
    berlin = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    naive = datetime(2026, 3, 1, 9, 30)  # taken as UTC
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": 1, "at": berlin}, {"id": 2, "at": naive}])
        rows = dict(connection.execute(select(table.c.id, table.c.at)).all())
    assert rows[1] == datetime(2026, 3, 1, 11, 0, tzinfo=UTC) and rows[1].tzinfo == UTC
    assert rows[2] == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert as_utc(naive).tzinfo == UTC and as_utc(berlin).hour == 11


def test_every_timestamp_column_of_the_product_uses_the_one_type():
    from knowledge.desk.schema import target_metadata

    columns = [
        (t.name, c.name)
        for t in target_metadata().tables.values()
        for c in t.columns
        if "DATETIME" in str(c.type).upper() or "TIMESTAMP" in str(c.type).upper()
    ]
    odd = [
        (t, c)
        for t, c in columns
        if not isinstance(target_metadata().tables[t].columns[c].type, UTCDateTime)
    ]
    assert columns and odd == []
