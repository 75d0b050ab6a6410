"""Issue 13's tables: job runs, the scheduler's lease, precomputed candidate lists, the audit log, the DP ledger.

``audit_log`` is append-only: the same triggers as a new database's (``shoplm.store.audit``)
refuse updates and deletes, copied here as they were when this revision was written.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

AUDIT_LOG_TRIGGERS = {
    "sqlite": (
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    ),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
        "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    ),
}


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("started_ms", sa.BigInteger, nullable=False),
        sa.Column("finished_ms", sa.BigInteger, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_job_runs_job_started", "job_runs", ["job", "started_ms"])
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "candidate_lists",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("basis", sa.String(32), nullable=False),
        sa.Column("items", sa.Text, nullable=False),
        sa.Column("computed_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject_hash", sa.String(64), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
    )
    for statement in AUDIT_LOG_TRIGGERS.get(op.get_bind().dialect.name, ()):
        op.execute(statement)
    op.create_table(
        "privacy_budgets",
        sa.Column("dataset", sa.String(64), primary_key=True),
        sa.Column("spent_epsilon", sa.Float, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "privacy_releases",
        sa.Column("release_id", sa.String(32), primary_key=True),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("report", sa.String(64), nullable=False),
        sa.Column("query_key", sa.String(64), nullable=False),
        sa.Column("epsilon", sa.Float, nullable=False),
        sa.Column("delta", sa.Float, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ux_privacy_releases_query", "privacy_releases", ["dataset", "query_key"], unique=True)
    op.create_index("ix_privacy_releases_created", "privacy_releases", ["dataset", "created_ms"])


def downgrade() -> None:
    op.drop_index("ix_privacy_releases_created", table_name="privacy_releases")
    op.drop_index("ux_privacy_releases_query", table_name="privacy_releases")
    op.drop_table("privacy_releases")
    op.drop_table("privacy_budgets")
    op.drop_table("audit_log")  # its triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_table("candidate_lists")
    op.drop_table("scheduler_leases")
    op.drop_index("ix_job_runs_job_started", table_name="job_runs")
    op.drop_table("job_runs")
