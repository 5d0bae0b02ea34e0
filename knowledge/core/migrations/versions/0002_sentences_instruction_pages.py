"""Sentence spans and vectors of chunks; the pages of a document addressed to an AI assistant.

Revision ID: 2
Revises: 1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection

revision: str = "2"
down_revision: str | Sequence[str] | None = "1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Added = tuple[str, str, sa.types.TypeEngine[Any]]  # table, column, type

# all nullable: rows stored before read NULL
COLUMNS: list[Added] = [
    ("chunks", "sentence_spans", sa.Text()),  # JSON [[start, end], ...]
    ("chunks", "sentence_vectors", sa.LargeBinary()),  # float16 rows, one per sentence
    ("documents", "instruction_pages", sa.Text()),  # JSON list of pages
]


def _missing(connection: Connection) -> list[Added]:
    inspector = sa.inspect(connection)
    have = {t: {c["name"] for c in inspector.get_columns(t)} for t in ("chunks", "documents")}
    return [(table, name, kind) for table, name, kind in COLUMNS if name not in have[table]]


def applied(connection: Connection) -> bool:
    """Whether a database made before Alembic already has this revision's columns (the
    development versions after the release added them in place)."""
    return not _missing(connection)


def upgrade() -> None:
    # a database made before Alembic between the release and this revision may have some
    # of the columns already (stamped at 1): add only the ones it lacks
    for table, name, kind in _missing(op.get_bind()):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("instruction_pages")
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("sentence_vectors")
        batch.drop_column("sentence_spans")
