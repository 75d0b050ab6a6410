"""Every row that holds one user, across all tables: find, export, delete, rename (re-keying), compact.

A user lives in the store under their pseudonym (``users.user_id`` and the ``user_id`` of
events, orders, reviews, conversations and user scores), in the rows hanging off those (order
lines, messages, chat transcripts), in alerts about their orders or naming them, and inside the
JSON of analytics reports that list users. This repository reaches all of them, so the right to
be forgotten and the right of access read one list of places.

After a delete, the old bytes may still sit in SQLite's free pages and write-ahead log:
:meth:`ErasureRepository.compact` checkpoints the WAL, VACUUMs the file and truncates the WAL.

Example:
    >>> import pandas as pd
    >>> from shoplm.store import Store
    >>> store = Store.open("sqlite://")
    >>> _ = store.upsert("events", pd.DataFrame({"event_id": ["e1", "e2"], "user_id": ["u_a", "u_b"],
    ...     "item_id": ["i1", "i1"], "event_type": ["view", "view"], "ts_ms": [1, 2], "scene": ["", ""],
    ...     "query": ["", ""], "session_id": ["", ""], "suspected_bot": [False, False]}))
    >>> store.erasure.counts("u_a")["events"], store.erasure.delete_user("u_a")["events"]
    (1, 1)
    >>> store.erasure.counts("u_a")["events"], store.count("events")
    (0, 1)
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, bindparam, delete, func, or_, select, update

from shoplm.store.schema import alerts as alerts_table
from shoplm.store.schema import analytics_reports as reports_table
from shoplm.store.schema import chat_transcripts as transcripts_table
from shoplm.store.schema import conversations as conversations_table
from shoplm.store.schema import messages as messages_table
from shoplm.store.schema import metadata
from shoplm.store.schema import order_lines as order_lines_table
from shoplm.store.schema import orders as orders_table
from shoplm.store.schema import review_sentiment as review_sentiment_table
from shoplm.store.schema import reviews as reviews_table
from shoplm.store.schema import users as users_table

if TYPE_CHECKING:
    from shoplm.store.database import Store

#: Tables whose ``user_id`` column names the user directly: every one of the schema, so a table
#: added later with such a column (precomputed candidate lists, ...) is covered without a change here.
USER_TABLES: tuple[Table, ...] = tuple(t for t in metadata.sorted_tables if "user_id" in t.c)

#: A rewrite of a JSON document: takes its text, returns the new text (the same if nothing changed).
TextRewrite = Callable[[str], str]


class ErasureRepository:
    """Reaches every row of one (pseudonymous) user."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- finding -------------------------------------------------------------------------
    def _order_ids(self, conn: Connection, user_id: str) -> list[str]:
        statement = select(orders_table.c.order_id).where(orders_table.c.user_id == user_id)
        return [str(row[0]) for row in conn.execute(statement)]

    def _conversation_ids(self, conn: Connection, user_id: str) -> list[str]:
        statement = select(conversations_table.c.conversation_id).where(conversations_table.c.user_id == user_id)
        return [str(row[0]) for row in conn.execute(statement)]

    @staticmethod
    def _review_ids(user_id: str) -> Any:
        """A subquery of the user's review ids (their reviews' scores are keyed by review, not user)."""
        return select(reviews_table.c.review_id).where(reviews_table.c.user_id == user_id)

    def _alert_condition(self, user_id: str, order_ids: list[str]) -> Any:
        c = alerts_table.c
        named = [c.body.contains(user_id), c.title.contains(user_id), c.subject == user_id]
        return or_(*named, c.subject.in_(order_ids)) if order_ids else or_(*named)

    def _selections(self, conn: Connection, user_id: str) -> dict[str, Any]:
        """Table name -> a SELECT of the user's rows in it."""
        orders = self._order_ids(conn, user_id)
        conversations = self._conversation_ids(conn, user_id)
        found: dict[str, Any] = {
            str(table.name): select(table).where(table.c.user_id == user_id) for table in USER_TABLES
        }
        found["order_lines"] = select(order_lines_table).where(order_lines_table.c.order_id.in_(orders))
        found["messages"] = select(messages_table).where(messages_table.c.conversation_id.in_(conversations))
        found["chat_transcripts"] = select(transcripts_table).where(
            transcripts_table.c.conversation_id.in_(conversations)
        )
        found["review_sentiment"] = select(review_sentiment_table).where(
            review_sentiment_table.c.review_id.in_(self._review_ids(user_id))
        )
        found["alerts"] = select(alerts_table).where(self._alert_condition(user_id, orders))
        found["analytics_reports"] = select(reports_table).where(reports_table.c.body.contains(user_id))
        return found

    def counts(self, user_id: str) -> dict[str, int]:
        """Rows of the user per table (reports: those whose JSON mentions them)."""
        with self._store.engine.connect() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(statement.subquery())).scalar_one())
                for name, statement in self._selections(conn, user_id).items()
            }

    def rows(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every stored row of the user, per table, as plain dicts (JSON columns left as text)."""
        with self._store.engine.connect() as conn:
            return {
                name: [dict(row._mapping) for row in conn.execute(statement)]
                for name, statement in self._selections(conn, user_id).items()
            }

    def texts(self, user_id: str) -> list[str]:
        """The free texts the user wrote: their review texts and their own messages (not the replies)."""
        with self._store.engine.connect() as conn:
            conversations = self._conversation_ids(conn, user_id)
            reviews = conn.execute(select(reviews_table.c.text).where(reviews_table.c.user_id == user_id))
            messages = conn.execute(
                select(messages_table.c.text).where(
                    messages_table.c.conversation_id.in_(conversations), messages_table.c.role == "customer"
                )
            )
            return [str(t) for t in [*reviews.scalars(), *messages.scalars()] if t]

    def texts_of_others(self, user_id: str, texts: Sequence[str]) -> set[str]:
        """Those of ``texts`` that a review or message of someone else holds too (not the user's alone)."""
        found: set[str] = set()
        wanted = list(dict.fromkeys(texts))
        not_theirs = or_(conversations_table.c.user_id.is_(None), conversations_table.c.user_id != user_id)
        with self._store.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                reviews = select(reviews_table.c.text).where(
                    reviews_table.c.text.in_(chunk),
                    or_(reviews_table.c.user_id.is_(None), reviews_table.c.user_id != user_id),
                )
                messages = (
                    select(messages_table.c.text)
                    .join(
                        conversations_table, conversations_table.c.conversation_id == messages_table.c.conversation_id
                    )
                    .where(messages_table.c.text.in_(chunk), not_theirs)
                )
                found.update(conn.execute(reviews).scalars())
                found.update(conn.execute(messages).scalars())
        return found

    def user_ids(self) -> list[str]:
        """Every pseudonymous user id anywhere in the store, sorted."""
        found: set[str] = set()
        with self._store.engine.connect() as conn:
            for table in USER_TABLES:
                statement = select(table.c.user_id).where(table.c.user_id.is_not(None)).distinct()
                found.update(str(v) for v in conn.execute(statement).scalars() if v)
        return sorted(found)

    # -- deleting ------------------------------------------------------------------------
    def delete_user(self, user_id: str, *, rewrite_report: TextRewrite | None = None) -> dict[str, int]:
        """Delete every row of the user in one transaction; returns rows deleted (or rewritten) per table.

        Args:
            user_id: the pseudonymous id.
            rewrite_report: given the JSON body of an analytics report that mentions the user,
                returns it without them (a report is a whole job's result: it is rewritten, not
                deleted). Without one, such reports are deleted (the next job run makes them again).
        """
        done: dict[str, int] = {}
        with self._store.transaction() as conn:
            orders = self._order_ids(conn, user_id)
            conversations = self._conversation_ids(conn, user_id)
            done["alerts"] = conn.execute(delete(alerts_table).where(self._alert_condition(user_id, orders))).rowcount
            done["chat_transcripts"] = conn.execute(
                delete(transcripts_table).where(transcripts_table.c.conversation_id.in_(conversations))
            ).rowcount
            done["messages"] = conn.execute(
                delete(messages_table).where(messages_table.c.conversation_id.in_(conversations))
            ).rowcount
            done["order_lines"] = conn.execute(
                delete(order_lines_table).where(order_lines_table.c.order_id.in_(orders))
            ).rowcount
            done["review_sentiment"] = conn.execute(  # before the reviews that name them go
                delete(review_sentiment_table).where(review_sentiment_table.c.review_id.in_(self._review_ids(user_id)))
            ).rowcount
            for table in USER_TABLES:
                done[str(table.name)] = conn.execute(delete(table).where(table.c.user_id == user_id)).rowcount
            done["analytics_reports"] = self._rewrite_reports(
                conn, lambda body: user_id in body, rewrite_report, delete_if_none=True
            )
        return done

    def _rewrite_reports(
        self,
        conn: Connection,
        mentions: Callable[[str], bool],
        rewrite: TextRewrite | None,
        *,
        delete_if_none: bool,
    ) -> int:
        c = reports_table.c
        changed = 0
        for name, body in conn.execute(select(c.name, c.body)).all():
            if not mentions(body):
                continue
            if rewrite is None:
                if delete_if_none:
                    changed += conn.execute(delete(reports_table).where(c.name == name)).rowcount
                continue
            new_body = rewrite(body)
            if new_body != body:
                conn.execute(update(reports_table).where(c.name == name).values(body=new_body))
                changed += 1
        return changed

    # -- re-keying -----------------------------------------------------------------------
    def rename_users(
        self,
        users: Mapping[str, str],
        *,
        emails: Mapping[str, str] | None = None,
        phones: Mapping[str, str] | None = None,
        rewrite_text: TextRewrite | None = None,
    ) -> dict[str, int]:
        """Replace pseudonyms (old -> new) everywhere, in one transaction; rows changed per table.

        Args:
            users: old user pseudonym -> new one, for every user in the store.
            emails, phones: old -> new digests of ``users.email_hash`` / ``phone_hash``.
            rewrite_text: applied to the JSON of analytics reports and alerts, which may hold
                pseudonyms inside (it replaces them by their new values).
        """
        done: dict[str, int] = {}
        with self._store.transaction() as conn:
            for table in USER_TABLES:
                statement = update(table).where(table.c.user_id == _old()).values(user_id=_new())
                done[str(table.name)] = _executemany(conn, statement, users)
            for column, mapping in (("email_hash", emails), ("phone_hash", phones)):
                if mapping:
                    c = users_table.c[column]
                    statement = update(users_table).where(c == _old()).values({column: _new()})
                    done[f"users.{column}"] = _executemany(conn, statement, mapping)
            if rewrite_text is not None:
                done["analytics_reports"] = self._rewrite_reports(
                    conn, lambda _body: True, rewrite_text, delete_if_none=False
                )
                c = alerts_table.c
                changed = 0
                for alert_id, title, body in conn.execute(select(c.alert_id, c.title, c.body)).all():
                    new_title, new_body = rewrite_text(title), rewrite_text(body)
                    if (new_title, new_body) != (title, body):
                        conn.execute(
                            update(alerts_table).where(c.alert_id == alert_id).values(title=new_title, body=new_body)
                        )
                        changed += 1
                done["alerts"] = changed
        return done

    def hashes(self) -> tuple[list[str], list[str]]:
        """Every stored email digest and phone digest (for re-keying them)."""
        c = users_table.c
        with self._store.engine.connect() as conn:
            emails = [str(v) for v in conn.execute(select(c.email_hash).distinct()).scalars() if v]
            phones = [str(v) for v in conn.execute(select(c.phone_hash).distinct()).scalars() if v]
        return emails, phones

    # -- the bytes on disk ---------------------------------------------------------------
    def compact(self, *, attempts: int = 20) -> bool:
        """Leave no deleted row's bytes in the database files; True if that is done.

        SQLite: checkpoint the write-ahead log into the database, VACUUM (rebuilds the file
        without free pages), checkpoint again and truncate the WAL to zero bytes. A reader in
        another process (a server mid-request) can hold the WAL for a moment: the last
        checkpoint is retried ``attempts`` times, 50 ms apart, and False means it stayed busy
        (the deleted bytes may remain in the WAL until the next checkpoint). PostgreSQL:
        ``VACUUM FULL`` of the tables that hold users (rewrites them; the server's own WAL and
        backups are out of reach and expire by its retention settings).
        """
        with self._store._writer_lock(), self._store.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            if self._store.backend == "sqlite":
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                conn.exec_driver_sql("VACUUM")
                for _ in range(max(attempts, 1)):
                    busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                    if not busy:
                        return True
                    time.sleep(0.05)
                return False
            if self._store.backend == "postgresql":
                names = [t.name for t in USER_TABLES] + [
                    "order_lines",
                    "messages",
                    "chat_transcripts",
                    "alerts",
                    "analytics_reports",
                ]
                quote = conn.dialect.identifier_preparer.quote
                conn.exec_driver_sql("VACUUM FULL " + ", ".join(quote(n) for n in names))
            return True


def _old() -> Any:
    return bindparam("old_value")


def _new() -> Any:
    return bindparam("new_value")


def _executemany(conn: Connection, statement: Any, mapping: Mapping[str, str]) -> int:
    rows = [{"old_value": old, "new_value": new} for old, new in mapping.items() if old != new]
    if not rows:
        return 0
    result = conn.execute(statement, rows)
    return max(int(result.rowcount), 0)


def dumps_rows(rows: dict[str, list[dict[str, Any]]]) -> str:
    """:meth:`ErasureRepository.rows` as JSON, its JSON columns parsed (for an export file).

    Example:
        >>> dumps_rows({"users": [{"user_id": "u_a", "attributes": '{"vip": true}'}]})
        '{"users": [{"attributes": {"vip": true}, "user_id": "u_a"}]}'
    """
    parsed: dict[str, list[dict[str, Any]]] = {}
    for table, found in rows.items():
        parsed[table] = [{k: _maybe_json(v) for k, v in row.items()} for row in found]
    return json.dumps(parsed, sort_keys=True, ensure_ascii=False, default=str)


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def discard_cached_vectors(path: Path, text_keys: Sequence[bytes]) -> int:
    """Delete the vectors of these texts (their SHA-256 keys) from an embedding cache file; how many.

    The cache (:mod:`shoplm.lm.cache`) is its own SQLite file; like the store it is checkpointed
    and VACUUMed after a delete, so the vectors leave the file's bytes too.
    """
    if not text_keys or not path.is_file():
        return 0
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        deleted = 0
        for start in range(0, len(text_keys), 500):
            chunk = list(text_keys[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            deleted += connection.execute(f"DELETE FROM vectors WHERE text_sha256 IN ({marks})", chunk).rowcount
        if deleted:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            connection.execute("VACUUM")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return deleted
    finally:
        connection.close()
