from __future__ import annotations

import sqlite3
import time

import pandas as pd
import pytest

from shoplm.errors import ShoplmError
from shoplm.store import Store, UpsertResult
from shoplm.store.schema import TABLES


def _items(titles: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(len(titles))],
            "title": titles,
            "description": "",
            "category": "Kitchen > Mugs",
            "brand": "",
            "price": 9.5,
            "currency": "CNY",
            "stock": 3,
            "language": "en",
            "attributes": "{}",
            "content_hash": [f"h-{t}" for t in titles],
            "updated_ms": 1,
        }
    )


def test_every_table_is_created(any_store: Store) -> None:
    assert set(any_store.counts()) == set(TABLES)
    assert all(count == 0 for count in any_store.counts().values())


def test_upsert_inserts_updates_and_skips_unchanged(any_store: Store) -> None:
    assert any_store.upsert("items", _items(["mug", "cup"])) == UpsertResult(inserted=2)
    assert any_store.upsert("items", _items(["mug", "cup"])) == UpsertResult(unchanged=2)
    assert any_store.upsert("items", _items(["mug", "big cup", "plate"])) == UpsertResult(1, 1, 1)
    catalog = any_store.items.catalog()
    assert catalog["title"].tolist() == ["mug", "big cup", "plate"]
    assert catalog["price"].tolist() == [9.5, 9.5, 9.5]


def test_append_only_table_counts_existing_keys_unchanged(any_store: Store) -> None:
    events = pd.DataFrame(
        {
            "event_id": ["e1", "e2"],
            "user_id": ["u1", "u1"],
            "item_id": ["a", None],
            "event_type": ["view", "search"],
            "ts_ms": [2, 1],
            "scene": "",
            "query": ["", "红色"],
            "session_id": "s",
            "suspected_bot": False,
        }
    )
    assert any_store.upsert("events", events).inserted == 2
    assert any_store.upsert("events", events).unchanged == 2
    frame = any_store.events.frame(["event_id", "item_id", "query", "ts_ms"])
    assert frame["event_id"].tolist() == ["e2", "e1"]  # time order
    assert frame["query"].tolist() == ["红色", ""]
    assert frame["ts_ms"].dtype == "int64"
    assert pd.isna(frame["item_id"].iloc[0])


def test_more_rows_than_one_lookup_batch(any_store: Store) -> None:
    n = 2_345
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "user_id": "u",
            "item_id": "a",
            "event_type": "view",
            "ts_ms": range(n),
            "scene": "",
            "query": "",
            "session_id": "",
            "suspected_bot": False,
        }
    )
    assert any_store.upsert("events", events.iloc[:1000]).inserted == 1000
    assert any_store.upsert("events", events) == UpsertResult(inserted=n - 1000, unchanged=1000)
    chunks = list(any_store.iter_frames("events", ["event_id"], chunk_rows=1000))
    assert [len(c) for c in chunks] == [1000, 1000, 345]


def test_failed_transaction_loses_nothing_stored(any_store: Store) -> None:
    any_store.upsert("items", _items(["mug"]))
    broken = _items(["cup", "plate"])
    broken.loc[1, "title"] = None  # NOT NULL: the whole batch must roll back
    with pytest.raises(Exception, match=r"(?i)null"):
        any_store.upsert("items", broken.iloc[[0, 1]].assign(item_id=["n1", "n2"]))
    assert any_store.items.catalog()["item_id"].tolist() == ["i0"]


def test_arrow_read(any_store: Store) -> None:
    any_store.upsert("items", _items(["mug", "cup"]))
    table = any_store.arrow("items", ["item_id", "price"])
    assert table.column_names == ["item_id", "price"]
    assert table.num_rows == 2


def test_unknown_column_is_a_clear_error(store: Store) -> None:
    with pytest.raises(ShoplmError, match="no column"):
        store.frame("items", ["nope"])


def test_sqlite_file_uses_wal_mode(store: Store) -> None:
    store.upsert("items", _items(["mug"]))
    path = store.engine.url.database
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(ShoplmError, match="unsupported database URL"):
        Store.open("mysql://localhost/shop")


def _events(rows: list[tuple[str, str | None, str, int, bool]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"event_id": f"e{n}", "user_id": user, "item_id": item, "event_type": kind, "ts_ms": ts,
             "scene": "", "query": "", "session_id": "", "suspected_bot": bot}
            for n, (user, item, kind, ts, bot) in enumerate(rows)
        ]
    )  # fmt: skip


def test_live_history_is_the_newest_item_events_without_bot_bursts(any_store: Store) -> None:
    any_store.upsert(
        "events",
        _events(
            [
                ("u1", "a", "view", 1, False),
                ("u1", "b", "purchase", 3, False),
                ("u1", "c", "view", 2, True),  # a bot-like burst: not history
                ("u1", None, "search", 4, False),  # no item: not history
                ("u1", "d", "add_to_cart", 5, False),
                ("u2", "z", "view", 6, False),
            ]
        ),
    )
    assert any_store.events.history("u1", limit=10) == [("a", "view"), ("b", "purchase"), ("d", "add_to_cart")]
    assert any_store.events.history("u1", limit=2) == [("b", "purchase"), ("d", "add_to_cart")]
    assert any_store.events.history("nobody", limit=5) == []


def test_a_server_store_checkpoints_in_the_background_not_in_commits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "shop.sqlite"
    store = Store.open(f"sqlite:///{path}", background_checkpoints=0.05)
    try:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        store.upsert("items", _items([f"mug {n}" for n in range(2000)]))
        wal = path.with_name(path.name + "-wal")
        with sqlite3.connect(path) as reader:  # the background thread copied the WAL into the file
            deadline = time.monotonic() + 10
            while reader.execute("SELECT count(*) FROM items").fetchone()[0] != 2000 or not _checkpointed(path):
                assert time.monotonic() < deadline, "no checkpoint within 10 s"
                time.sleep(0.05)
        assert wal.exists()
    finally:
        store.close()
    plain = Store.open(f"sqlite:///{tmp_path / 'cli.sqlite'}")
    with plain.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    plain.close()


def _checkpointed(path) -> bool:  # type: ignore[no-untyped-def]
    # Read the database file alone (no WAL): the rows are there once a checkpoint copied them.
    with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as direct:
        try:
            return direct.execute("SELECT count(*) FROM items").fetchone()[0] == 2000
        except sqlite3.DatabaseError:
            return False
