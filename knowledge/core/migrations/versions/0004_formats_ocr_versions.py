"""Documents of every format (media type, labelled pages such as slides or sheets' rows),
pages read by OCR with their confidence, and versions (a document superseding another; an
ingestion job carries the version its file supersedes).

Revision ID: 4
Revises: 3
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4"
down_revision: str | Sequence[str] | None = "3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("media_type", sa.String(100), nullable=True))
        batch.add_column(sa.Column("page_labels", sa.Text(), nullable=True))
        batch.add_column(sa.Column("ocr_pages", sa.Text(), nullable=True))
        batch.add_column(sa.Column("supersedes", sa.String(32), nullable=True))
        batch.create_index("ix_documents_supersedes", ["supersedes"])
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.add_column(sa.Column("supersedes", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.drop_column("supersedes")
    with op.batch_alter_table("documents") as batch:
        batch.drop_index("ix_documents_supersedes")
        batch.drop_column("supersedes")
        batch.drop_column("ocr_pages")
        batch.drop_column("page_labels")
        batch.drop_column("media_type")
