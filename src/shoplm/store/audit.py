"""The audit log of admin actions: append-only, by the repository and by the database itself.

The repository offers ``append`` and reads, nothing that changes or removes an entry; triggers
made together with the table (``AUDIT_LOG_TRIGGERS``, per dialect) make the database refuse any
UPDATE or DELETE of ``audit_log`` (and, on PostgreSQL, a TRUNCATE), so neither a bug nor a hand
with a SQL shell rewrites history without dropping the triggers first.

Example:
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> store.audit.append(actor="cli", action="export", subject_hash="ab12", details={"rows": 3}, at_ms=1)
    1
    >>> [(e["action"], e["details"]) for e in store.audit.entries()]
    [('export', {'rows': 3})]
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import DDL, event, func, select

from shoplm.store.schema import audit_log as audit_table

if TYPE_CHECKING:
    from shoplm.store.database import Store

#: Statements that make ``audit_log`` append-only, per SQLAlchemy dialect name. Alembic
#: migrations creating the table run the same statements (``op.execute`` each of them).
AUDIT_LOG_TRIGGERS: dict[str, tuple[str, ...]] = {
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

for _dialect, _statements in AUDIT_LOG_TRIGGERS.items():
    for _statement in _statements:
        event.listen(audit_table, "after_create", DDL(_statement).execute_if(dialect=_dialect))

#: The actions the log knows; ``append`` refuses others, so a typo cannot make a new kind.
AUDIT_ACTIONS = (
    "forget",
    "export",
    "rekey",
    "key_create",
    "key_revoke",
    "key_rotate",
    "backup",
    "restore",
    "experiment_create",
    "experiment_stop",
)


class AuditRepository:
    """The ``audit_log`` table: append and read, never change."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def append(
        self, *, actor: str, action: str, subject_hash: str = "", details: dict[str, Any] | None = None, at_ms: int
    ) -> int:
        """Add one entry; returns its id.

        Args:
            actor: the acting API key's id, or ``"cli"``.
            action: one of :data:`AUDIT_ACTIONS`.
            subject_hash: the salted hash of the user acted on ('' for none).
            details: JSON-able facts (counts, key ids): never a user id or a text of theirs.
            at_ms: when (epoch milliseconds).
        """
        if action not in AUDIT_ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        values = {
            "at_ms": int(at_ms),
            "actor": actor[:64],
            "action": action,
            "subject_hash": subject_hash,
            "details": json.dumps(details or {}, sort_keys=True),
        }
        with self._store.transaction() as conn:
            return int(conn.execute(audit_table.insert().values(**values)).inserted_primary_key[0])

    def entries(self, *, action: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest ``limit`` entries (of ``action`` if given), oldest first."""
        c = audit_table.c
        statement = select(audit_table).order_by(c.entry_id.desc()).limit(limit)
        if action is not None:
            statement = statement.where(c.action == action)
        with self._store.engine.connect() as conn:
            rows = conn.execute(statement).fetchall()
        return [
            {
                "entry_id": row.entry_id,
                "at_ms": row.at_ms,
                "actor": row.actor,
                "action": row.action,
                "subject_hash": row.subject_hash,
                "details": json.loads(row.details or "{}"),
            }
            for row in reversed(rows)
        ]

    def count(self) -> int:
        with self._store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_table)).scalar_one())
