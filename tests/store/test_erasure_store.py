"""``store.erasure`` and ``store.audit`` on SQLite and PostgreSQL: delete, rename, compact, append-only."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from shoplm.store import Store


def _fill(store: Store) -> None:
    store.upsert(
        "events",
        pd.DataFrame(
            {
                "event_id": ["e1", "e2", "e3"],
                "user_id": ["u_a", "u_a", "u_b"],
                "item_id": ["i1", "i2", "i1"],
                "event_type": ["view"] * 3,
                "ts_ms": [1, 2, 3],
                "scene": [""] * 3,
                "query": [""] * 3,
                "session_id": [""] * 3,
                "suspected_bot": [False] * 3,
            }
        ),
    )
    store.upsert(
        "conversations",
        pd.DataFrame(
            {
                "conversation_id": ["c1"],
                "user_id": ["u_a"],
                "channel": ["web"],
                "status": ["open"],
                "started_ms": [1],
                "state": ["{}"],
            }
        ),
    )
    store.upsert(
        "messages",
        pd.DataFrame(
            {
                "message_id": ["m1", "m2"],
                "conversation_id": ["c1", "c1"],
                "role": ["customer", "assistant"],
                "text": ["where is my parcel, it is late", "It ships tomorrow."],
                "intent": ["", ""],
                "ts_ms": [1, 2],
            }
        ),
    )
    store.analytics.save_report("churn-summary", {"top": ["u_a", "u_b"]})


def test_delete_rename_and_compact(any_store: Store) -> None:
    _fill(any_store)
    assert any_store.erasure.texts("u_a") == ["where is my parcel, it is late"]  # their own words, not the replies
    assert any_store.erasure.counts("u_a")["messages"] == 2
    done = any_store.erasure.delete_user("u_a", rewrite_report=lambda body: body.replace('"u_a", ', ""))
    assert (done["events"], done["conversations"], done["messages"], done["analytics_reports"]) == (2, 1, 2, 1)
    assert not any(any_store.erasure.counts("u_a").values())
    assert any_store.analytics.report("churn-summary")["body"] == {"top": ["u_b"]}
    renamed = any_store.erasure.rename_users({"u_b": "u_c"}, rewrite_text=lambda body: body.replace("u_b", "u_c"))
    assert renamed["events"] == 1 and any_store.erasure.user_ids() == ["u_c"]
    assert any_store.analytics.report("churn-summary")["body"] == {"top": ["u_c"]}
    any_store.erasure.compact()
    assert any_store.count("events") == 1


def test_the_audit_log_refuses_changes(any_store: Store) -> None:
    any_store.audit.append(actor="cli", action="rekey", at_ms=1)
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"), any_store.transaction() as conn:
            conn.execute(text(statement))
    assert any_store.audit.count() == 1
