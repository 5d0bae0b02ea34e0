"""The database schema's Alembic migration history (env.py, versions/), run in code by
``knowledge.core.db.upgrade``; docs/architecture.md says how to add a migration. The tables the
code expects are gathered by ``knowledge.desk.schema.target_metadata``."""
