"""Ingestion jobs (knowledge.desk.jobs) and document writes in flight (knowledge.search.store).

Revision ID: 3
Revises: 2
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3"
down_revision: str | Sequence[str] | None = "2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ingest_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("collection", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("contracts", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        sa.Column("fraction", sa.Float(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("pages_done", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("report", sa.Text(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("started_at", WHEN, nullable=True),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.Column("heartbeat_at", WHEN, nullable=True),
    )
    op.create_index("ix_ingest_jobs_owner", "ingest_jobs", ["owner"])
    op.create_index("ix_ingest_jobs_state", "ingest_jobs", ["state"])
    op.create_table(
        "pending_writes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("writer", sa.String(64), nullable=False),
        sa.Column("collection", sa.String(200), nullable=False),
        sa.Column("chunk_ids", sa.Text(), nullable=False),
        sa.Column("pdf_path", sa.String(1000), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
    )
    op.create_index("ix_pending_writes_writer", "pending_writes", ["writer"])


def downgrade() -> None:
    op.drop_table("pending_writes")
    op.drop_table("ingest_jobs")
