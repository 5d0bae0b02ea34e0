"""Alembic's environment: migrations run on the connection that ``knowledge.core.db`` passes in
``config.attributes["connection"]`` (there is no alembic.ini and no URL here)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "knowledge/core/migrations runs on a connection given in code: use knowledge.db.upgrade "
        "(or `kdesk db upgrade`), or alembic's commands with knowledge.db.alembic_config(...)"
    )
if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")

context.configure(
    connection=connection,
    # the tables the code expects, where the caller gave them (autogenerate comparisons:
    # knowledge.desk.schema.target_metadata); upgrades run their explicit operations
    target_metadata=context.config.attributes.get("target_metadata"),
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by rebuilding
    compare_type=True,
)
with context.begin_transaction():  # knowledge.db.upgrade's transaction, when it gave one
    context.run_migrations()
