"""Tables added between 486498a and migrations: chat transcripts, dashboard logins, analytics results, alerts.

A database made before migrations by a shoplm newer than 486498a may hold some of these
tables already (``shoplm db upgrade`` records every unversioned database at the baseline,
0001): a table or index that exists is left as it is, the others are created.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _create_table(name: str, *columns: sa.Column) -> None:
    if not sa.inspect(op.get_bind()).has_table(name):
        op.create_table(name, *columns)


def _create_index(name: str, table: str, columns: list[str]) -> None:
    if name not in {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table)}:
        op.create_index(name, table, columns)


def upgrade() -> None:
    _create_table(
        "chat_transcripts",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("conversation_id", sa.String(128), sa.ForeignKey("conversations.conversation_id"), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    _create_table(
        "dashboard_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    _create_table(
        "analytics_reports",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("computed_ms", sa.BigInteger, nullable=False),
    )
    _create_table(
        "user_scores",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("computed_ms", sa.BigInteger, nullable=False),
    )
    _create_index("ix_user_scores_rank", "user_scores", ["kind", "score"])
    _create_table(
        "alerts",
        sa.Column("alert_id", sa.String(160), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("delivered_ms", sa.BigInteger, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
    )
    _create_index("ix_alerts_kind_created", "alerts", ["kind", "created_ms"])
    _create_index("ix_alerts_pending", "alerts", ["delivered_ms", "attempts"])


def downgrade() -> None:
    op.drop_index("ix_alerts_pending", table_name="alerts")
    op.drop_index("ix_alerts_kind_created", table_name="alerts")
    op.drop_index("ix_user_scores_rank", table_name="user_scores")
    for table in ("alerts", "user_scores", "analytics_reports", "dashboard_sessions", "chat_transcripts"):
        op.drop_table(table)
