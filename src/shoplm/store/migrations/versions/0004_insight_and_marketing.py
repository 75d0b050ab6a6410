"""Issue 12's tables: review insight (sentiment, aspects), impression logs, CTR, ad copy and experiments.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # -- review sentiment --
    op.create_table(
        "review_sentiment",
        sa.Column("review_id", sa.String(128), primary_key=True),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("polarity", sa.String(16), nullable=True),
        sa.Column("p_positive", sa.Float, nullable=True),
        sa.Column("rating_estimate", sa.Float, nullable=True),
        sa.Column("skipped", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("scored_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_review_sentiment_text_hash", "review_sentiment", ["text_hash"])
    # -- review aspects --
    # -- opinion monitoring --
    # -- impressions and CTR --
    op.create_table(
        "impressions",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(128), nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("scene", sa.String(32), nullable=False),
        sa.Column("clicked", sa.Boolean, nullable=False),
        sa.Column("added_to_cart", sa.Boolean, nullable=False),
        sa.Column("creative", sa.Integer, nullable=True),
    )
    op.create_index("ix_impressions_ts", "impressions", ["ts_ms"])
    op.create_index("ix_impressions_item", "impressions", ["item_id"])
    op.create_index("ix_impressions_user", "impressions", ["user_id"])
    # -- ad copy and bandits --
    # -- experiments --
    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.String(16), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("scene", sa.String(32), nullable=False),
        sa.Column("arms", sa.Text, nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("start_ms", sa.BigInteger, nullable=False),
        sa.Column("stop_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_experiments_status", "experiments", ["status", "scene"])
    pass


def downgrade() -> None:
    # -- experiments --
    op.drop_index("ix_experiments_status", table_name="experiments")
    op.drop_table("experiments")
    # -- ad copy and bandits --
    # -- impressions and CTR --
    op.drop_index("ix_impressions_user", table_name="impressions")
    op.drop_index("ix_impressions_item", table_name="impressions")
    op.drop_index("ix_impressions_ts", table_name="impressions")
    op.drop_table("impressions")
    # -- opinion monitoring --
    # -- review aspects --
    # -- review sentiment --
    op.drop_index("ix_review_sentiment_text_hash", table_name="review_sentiment")
    op.drop_table("review_sentiment")
    pass
