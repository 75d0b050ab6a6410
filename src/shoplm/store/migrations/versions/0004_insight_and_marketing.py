"""Issue 12's tables: review insight (sentiment, aspects), impression logs, CTR, ad copy and experiments.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401  (used by the tables below)
from alembic import op  # noqa: F401

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # -- review sentiment --
    # -- review aspects --
    # -- opinion monitoring --
    # -- impressions and CTR --
    # -- ad copy and bandits --
    # -- experiments --
    pass


def downgrade() -> None:
    # -- experiments --
    # -- ad copy and bandits --
    # -- impressions and CTR --
    # -- opinion monitoring --
    # -- review aspects --
    # -- review sentiment --
    pass
