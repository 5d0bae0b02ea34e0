"""The answer cache's table (used when no Redis is configured): stored answers by scope and
question, with the question's vector for near-identical questions.

Revision ID: 6
Revises: 5
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

WHEN = sa.DateTime(timezone=True)

revision: str = "6"
down_revision: str | Sequence[str] | None = "5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answer_cache",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("question_hash", sa.String(64), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("scope", "question_hash"),
    )
    op.create_index("ix_answer_cache_expires_at", "answer_cache", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_answer_cache_expires_at", table_name="answer_cache")
    op.drop_table("answer_cache")
