"""Baseline: the store's tables as of commit 486498a, the last schema before migrations.

A database made before migrations existed holds these tables without an ``alembic_version``;
``shoplm db upgrade`` records it at this revision and migrates it on from here.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("item_id", sa.String(128), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("brand", sa.String(256), nullable=False),
        sa.Column("price", sa.Float, nullable=True),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("stock", sa.Integer, nullable=True),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(32), nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("email_hash", sa.String(64), nullable=True),
        sa.Column("phone_hash", sa.String(64), nullable=True),
        sa.Column("country", sa.String(64), nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=True),
        sa.Column("content_hash", sa.String(32), nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(128), nullable=True),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("scene", sa.String(32), nullable=False),
        sa.Column("query", sa.Text, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("suspected_bot", sa.Boolean, nullable=False),
    )
    op.create_index("ix_events_user_ts", "events", ["user_id", "ts_ms"])
    op.create_index("ix_events_item", "events", ["item_id"])
    op.create_index("ix_events_ts", "events", ["ts_ms"])
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("total_amount", sa.Float, nullable=False),
        sa.Column("country", sa.String(64), nullable=False),
        sa.Column("shipping_address", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("content_hash", sa.String(32), nullable=False),
    )
    op.create_index("ix_orders_user", "orders", ["user_id"])
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(128), sa.ForeignKey("orders.order_id"), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.String(128), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.Float, nullable=False),
    )
    op.create_index("ix_order_lines_item", "order_lines", ["item_id"])
    op.create_table(
        "reviews",
        sa.Column("review_id", sa.String(128), primary_key=True),
        sa.Column("item_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("rating", sa.Integer, nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_reviews_item", "reviews", ["item_id"])
    op.create_table(
        "conversations",
        sa.Column("conversation_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_ms", sa.BigInteger, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
    )
    op.create_table(
        "messages",
        sa.Column("message_id", sa.String(128), primary_key=True),
        sa.Column("conversation_id", sa.String(128), sa.ForeignKey("conversations.conversation_id"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("intent", sa.String(64), nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_messages_conversation", "messages", ["conversation_id", "ts_ms"])
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("iterations", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_ms", sa.BigInteger, nullable=True),
    )


def downgrade() -> None:
    for index, table in (
        ("ix_messages_conversation", "messages"),
        ("ix_reviews_item", "reviews"),
        ("ix_order_lines_item", "order_lines"),
        ("ix_orders_user", "orders"),
        ("ix_events_ts", "events"),
        ("ix_events_item", "events"),
        ("ix_events_user_ts", "events"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "api_keys",
        "messages",
        "conversations",
        "reviews",
        "order_lines",
        "orders",
        "events",
        "users",
        "items",
    ):
        op.drop_table(table)
