"""The project database for tests that build components on an engine instead of a ``Desk``."""

from __future__ import annotations

from sqlalchemy import Engine

from knowledge.core.db import make_engine, upgrade


def migrated_engine(url: str) -> Engine:
    """``make_engine(url)`` with the schema at the newest migration, as ``Desk`` leaves it."""
    engine = make_engine(url)
    upgrade(engine)
    return engine
