"""The database schema's Alembic migration history (env.py, versions/), run in code by
``knowledge.db.upgrade``; docs/architecture.md says how to add a migration."""

from __future__ import annotations

from sqlalchemy import MetaData


def target_metadata() -> MetaData:
    """The tables the code expects (every module with tables imported): what the newest
    revision must build, and what autogenerate compares a database with."""
    import knowledge.accounts
    import knowledge.audit
    import knowledge.contracts
    import knowledge.ratelimit
    import knowledge.roles
    import knowledge.store
    import knowledge.usage  # noqa: F401
    from knowledge.db import Base

    return Base.metadata
