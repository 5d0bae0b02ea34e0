"""Every table of the product, for comparing a database with the code (the migration tests,
autogenerate)."""

from __future__ import annotations

from sqlalchemy import MetaData


def target_metadata() -> MetaData:
    """The tables the code expects (every module with tables imported): what the newest
    revision must build, and what autogenerate compares a database with."""
    import knowledge.access.accounts
    import knowledge.access.api_keys
    import knowledge.access.audit
    import knowledge.access.ratelimit
    import knowledge.access.roles
    import knowledge.contracts.book
    import knowledge.desk.cache_stores
    import knowledge.desk.jobs
    import knowledge.search.store
    import knowledge.tools.calls
    import knowledge.usage.conversations
    import knowledge.usage.events  # noqa: F401
    from knowledge.core.db import Base

    return Base.metadata
