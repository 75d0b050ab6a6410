"""Support conversations: their owner, status and dialogue state, and their messages.

The assistant's dialogue state is opaque JSON text to the store; messages arrive with PII
already masked. One turn (the state and both messages) is saved in one transaction.

Example:
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> store.conversations.save_turn("c1", user_id="u_1", channel="assistant", state="{}", status="open",
    ...     messages=[("customer", "hi", "chitchat"), ("assistant", "Hello!", "chitchat")], now_ms=1)
    >>> store.conversations.load("c1").status, [m["text"] for m in store.conversations.messages("c1")]
    ('open', ['hi', 'Hello!'])
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shoplm.store.schema import chat_transcripts as transcripts_table
from shoplm.store.schema import conversations as conversations_table
from shoplm.store.schema import messages as messages_table

if TYPE_CHECKING:
    from shoplm.store.database import Store


@dataclass(frozen=True)
class StoredConversation:
    """A conversation's row: its owner (pseudonymous id, empty for a guest), channel, status, state JSON."""

    conversation_id: str
    user_id: str
    channel: str
    status: str
    started_ms: int
    state: str


class ConversationRepository:
    """The ``conversations``, ``messages`` and ``chat_transcripts`` tables."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def load(self, conversation_id: str) -> StoredConversation | None:
        """The conversation's row, or None when unknown."""
        c = conversations_table.c
        statement = select(c.conversation_id, c.user_id, c.channel, c.status, c.started_ms, c.state).where(
            c.conversation_id == conversation_id
        )
        with self._store.engine.connect() as conn:
            row = conn.execute(statement).first()
        if row is None:
            return None
        return StoredConversation(
            str(row.conversation_id),
            str(row.user_id or ""),
            str(row.channel or ""),
            str(row.status or "open"),
            int(row.started_ms),
            str(row.state or "{}"),
        )

    def messages(self, conversation_id: str, *, limit: int = 500) -> list[dict[str, Any]]:
        """The newest ``limit`` messages, oldest first: ``role, text, intent, ts_ms``."""
        m = messages_table.c
        statement = (
            select(m.role, m.text, m.intent, m.ts_ms)
            .where(m.conversation_id == conversation_id)
            .order_by(m.ts_ms.desc(), m.message_id.desc())
            .limit(limit)
        )
        with self._store.engine.connect() as conn:
            rows = conn.execute(statement).fetchall()
        return [
            {"role": r.role, "text": r.text, "intent": r.intent or "", "ts_ms": int(r.ts_ms)} for r in reversed(rows)
        ]

    def save_turn(
        self,
        conversation_id: str,
        *,
        user_id: str,
        channel: str,
        state: str,
        status: str,
        messages: Sequence[tuple[str, str, str]],
        now_ms: int,
    ) -> None:
        """Create or update the conversation and append ``messages`` (role, text, intent), in one transaction.

        Messages get consecutive timestamps from ``now_ms``, so a reply sorts after its message.
        """
        c = conversations_table.c
        with self._store.transaction() as conn:
            exists = conn.execute(select(c.conversation_id).where(c.conversation_id == conversation_id)).first()
            if exists is None:
                conn.execute(
                    conversations_table.insert().values(
                        conversation_id=conversation_id,
                        user_id=user_id or None,
                        channel=channel,
                        status=status,
                        started_ms=now_ms,
                        state=state,
                    )
                )
            else:
                conn.execute(
                    conversations_table.update()
                    .where(c.conversation_id == conversation_id)
                    .values(state=state, status=status)
                )
            if messages:
                conn.execute(
                    messages_table.insert(),
                    [
                        {
                            "message_id": f"{conversation_id}:{uuid.uuid4().hex[:16]}",
                            "conversation_id": conversation_id,
                            "role": role,
                            "text": text,
                            "intent": intent,
                            "ts_ms": now_ms + offset,
                        }
                        for offset, (role, text, intent) in enumerate(messages)
                    ],
                )

    def add_transcript(self, digest: str, conversation_id: str, *, now_ms: int) -> None:
        """Remember that the conversation so far has this digest (a client's history), so it can be found by it."""
        t = transcripts_table.c
        with self._store.transaction() as conn:
            if conn.execute(select(t.digest).where(t.digest == digest)).first() is None:
                conn.execute(
                    transcripts_table.insert().values(digest=digest, conversation_id=conversation_id, created_ms=now_ms)
                )

    def find_by_transcript(self, digest: str) -> str | None:
        """The conversation whose transcript so far has this digest (see :meth:`add_transcript`), or None."""
        t = transcripts_table.c
        with self._store.engine.connect() as conn:
            row = conn.execute(select(t.conversation_id).where(t.digest == digest)).first()
        return str(row[0]) if row else None
