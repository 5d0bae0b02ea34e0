"""The schema of the last release before Alembic (commit 60a8b14).

Every table, column and index as that release created them, including the columns it added in
place to databases of earlier versions (chunks.page_break, documents.pipeline, documents.tags).

Revision ID: 1
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection

revision: str = "1"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Columns that versions before Alembic added in place to existing databases (nullable, so old
# rows read NULL): (table, column).
ADDED_IN_PLACE = [("chunks", "page_break"), ("documents", "pipeline"), ("documents", "tags")]


def release_schema() -> sa.MetaData:
    """The release's tables, frozen here (the code's models move on in later revisions)."""
    metadata = sa.MetaData()
    when = sa.DateTime(timezone=True)
    sa.Table(
        "collections",
        metadata,
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", when, nullable=False),
    )
    sa.Table(
        "documents",
        metadata,
        sa.Column("doc_id", sa.String(32), primary_key=True),
        sa.Column("collection", sa.String(200), sa.ForeignKey("collections.name"), nullable=False),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("pipeline", sa.String(100), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("pages_without_text", sa.Text(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("ingested_at", when, nullable=False),
        sa.Column("pdf_path", sa.String(1000), nullable=False),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.UniqueConstraint("collection", "file_name"),
        sa.Index("ix_documents_collection", "collection"),
        sa.Index("ix_documents_sha256", "sha256"),
    )
    sa.Table(
        "chunks",
        metadata,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "doc_id",
            sa.String(32),
            sa.ForeignKey("documents.doc_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("collection", sa.String(200), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("page_start", sa.Integer(), nullable=False),
        sa.Column("page_end", sa.Integer(), nullable=False),
        sa.Column("heading_path", sa.Text(), nullable=False),
        sa.Column("char_start", sa.Integer(), nullable=False),
        sa.Column("char_end", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("page_break", sa.Integer(), nullable=True),
        sa.Index("ix_chunks_collection", "collection"),
        sa.Index("ix_chunks_doc_id", "doc_id"),
    )
    sa.Table(
        "contracts",
        metadata,
        sa.Column(
            "doc_id",
            sa.String(32),
            sa.ForeignKey("documents.doc_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("detected_by", sa.String(20), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("extracted_at", when, nullable=False),
    )
    sa.Table(
        "clauses",
        metadata,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "doc_id",
            sa.String(32),
            sa.ForeignKey("documents.doc_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("category", sa.String(80), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("char_start", sa.Integer(), nullable=False),
        sa.Column("char_end", sa.Integer(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reviewed_value", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(200), nullable=True),
        sa.Column("reviewed_at", when, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Index("ix_clauses_category", "category"),
        sa.Index("ix_clauses_doc_id", "doc_id"),
        sa.Index("ix_clauses_status", "status"),
    )
    sa.Table(
        "clause_reviews",
        metadata,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "clause_id",
            sa.String(32),
            sa.ForeignKey("clauses.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("at", when, nullable=False),
        sa.Index("ix_clause_reviews_clause_id", "clause_id"),
    )
    sa.Table(
        "usage_events",
        metadata,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", when, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("persona", sa.String(100), nullable=False),
        sa.Column("collections", sa.Text(), nullable=False),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("question_hash", sa.String(16), nullable=True),
        sa.Column("question_storage", sa.String(10), nullable=False),
        sa.Column("answer_chars", sa.Integer(), nullable=False),
        sa.Column("abstained", sa.Boolean(), nullable=False),
        sa.Column("evidence", sa.String(10), nullable=False),
        sa.Column("quoted", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("top_score", sa.Float(), nullable=False),
        sa.Column("cited_count", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("tokens_estimated", sa.Boolean(), nullable=False),
        sa.Column("retrieval_ms", sa.Float(), nullable=False),
        sa.Column("first_token_ms", sa.Float(), nullable=True),
        sa.Column("total_ms", sa.Float(), nullable=False),
        sa.Column("feedback", sa.SmallInteger(), nullable=True),
        sa.Column("feedback_comment", sa.Text(), nullable=True),
        sa.Column("feedback_at", when, nullable=True),
        sa.Index(
            "ix_usage_events_activity",
            *("day", "role", "model", "abstained", "feedback", "user"),
            *("tokens_in", "tokens_out", "first_token_ms", "error"),
        ),
        sa.Index("ix_usage_events_created_at", "created_at"),
        sa.Index("ix_usage_events_first_token", "day", "first_token_ms", "role"),
        sa.Index("ix_usage_events_question_hash", "question_hash"),
        sa.Index(
            "ix_usage_events_questions", "day", "question_hash", "role", "abstained", "feedback"
        ),
        sa.Index("ix_usage_events_retrieval", "day", "retrieval_ms", "role"),
        sa.Index("ix_usage_events_total", "day", "total_ms", "role"),
    )
    sa.Table(
        "usage_citations",
        metadata,
        sa.Column(
            "event_id",
            sa.String(32),
            sa.ForeignKey("usage_events.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("doc_id", sa.String(32), primary_key=True),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("collection", sa.String(200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Index("ix_usage_citations_doc", "doc_id", "day", "role"),
    )
    sa.Table(
        "usage_question_vectors",
        metadata,
        sa.Column("question_hash", sa.String(16), primary_key=True),
        sa.Column("embedding_model", sa.String(200), primary_key=True),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
    )
    sa.Table(
        "users",
        metadata,
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("auth", sa.String(10), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", when, nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.Column("last_sign_in", when, nullable=True),
    )
    sa.Table(
        "roles",
        metadata,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    sa.Table(
        "user_roles",
        metadata,
        sa.Column("user", sa.String(200), primary_key=True),
        sa.Column("role", sa.String(100), primary_key=True),
        sa.Column("source", sa.String(10), primary_key=True),
    )
    sa.Table(
        "audit_events",
        metadata,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", when, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Index("ix_audit_events_action", "action", "at"),
        sa.Index("ix_audit_events_actor", "actor", "at"),
        sa.Index("ix_audit_events_at", "at"),
    )
    sa.Table(
        "rate_limit_hits",
        metadata,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("at", when, nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Index("ix_rate_limit_hits_user_at", "user", "at"),
    )
    return metadata


def upgrade() -> None:
    release_schema().create_all(op.get_bind(), checkfirst=False)


def downgrade() -> None:
    release_schema().drop_all(op.get_bind(), checkfirst=False)


def adopt(connection: Connection) -> None:
    """Bring a database made before Alembic to this revision the way those versions did on
    every start: create the tables and indexes it lacks, add the columns added in place."""
    metadata = release_schema()
    metadata.create_all(connection)  # only the tables that are missing
    inspector = sa.inspect(connection)
    for table_name, column_name in ADDED_IN_PLACE:
        if column_name not in {c["name"] for c in inspector.get_columns(table_name)}:
            column = metadata.tables[table_name].columns[column_name]
            kind = column.type.compile(dialect=connection.dialect)
            connection.execute(sa.text(f"ALTER TABLE {table_name} ADD COLUMN {column_name} {kind}"))
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(connection, checkfirst=True)
