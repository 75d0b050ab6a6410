"""Backup under write load and restore, on SQLite and PostgreSQL; bad backup files are refused."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pandas as pd
import pytest

from shoplm.errors import InputError
from shoplm.store import Store
from shoplm.store.backup import backup_store, restore_store


def event_pair(n: int) -> pd.DataFrame:
    """Two events written in one transaction: a restored store has both or neither."""
    return pd.DataFrame(
        {
            "event_id": [f"w{n}-a", f"w{n}-b"],
            "user_id": f"u{n % 7}",
            "item_id": f"i{n % 11}",
            "event_type": "view",
            "ts_ms": [1_700_000_000_000 + n, 1_700_000_000_000 + n],
            "scene": "",
            "query": "",
            "session_id": "",
            "suspected_bot": False,
        }
    )


class Writer(threading.Thread):
    """Upserts event pairs until stopped; ``acked`` holds each pair's number once its commit returned."""

    def __init__(self, store: Store) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.acked: list[int] = []
        self.stop = threading.Event()
        self.progress = threading.Condition()
        self.error: BaseException | None = None

    def run(self) -> None:
        n = 0
        try:
            while not self.stop.is_set():
                self.store.upsert("events", event_pair(n))
                with self.progress:
                    self.acked.append(n)
                    self.progress.notify_all()
                n += 1
        except BaseException as exc:  # reported by the test
            self.error = exc
            with self.progress:
                self.progress.notify_all()

    def wait_for(self, count: int) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: len(self.acked) >= count or self.error is not None, timeout=60)
        assert self.error is None, self.error


def stored_pairs(store: Store) -> dict[int, set[str]]:
    """The writer's pairs in the store: pair number -> the sides ("a", "b") found."""
    pairs: dict[int, set[str]] = {}
    for event_id in store.frame("events", ["event_id"])["event_id"]:
        if not event_id.startswith("w"):
            continue
        number, side = event_id[1:].split("-")
        pairs.setdefault(int(number), set()).add(side)
    return pairs


def test_a_backup_taken_under_write_load_restores_every_acknowledged_event(any_store: Store, tmp_path: Path) -> None:
    # Some bulk first, so that the backup takes long enough (0.1-0.7 s) for writes to land meanwhile.
    bulk = event_pair(0).sample(20_000, replace=True, random_state=0)
    bulk["event_id"] = [f"bulk-{n}" for n in range(len(bulk))]
    any_store.upsert("events", bulk)
    writer = Writer(any_store)
    writer.start()
    try:
        writer.wait_for(30)
        acknowledged_before = list(writer.acked)
        result = backup_store(any_store, tmp_path / "shop.backup")
        acknowledged_by_end = len(writer.acked)
        assert acknowledged_by_end > len(acknowledged_before)  # the writer went on during the backup
        writer.wait_for(acknowledged_by_end + 20)  # written after the backup: must not come back
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert writer.error is None
    assert result.backend == any_store.backend and result.bytes > 0
    written = set(writer.acked)
    assert stored_pairs(any_store).keys() == written

    restore_store(any_store, tmp_path / "shop.backup")

    restored = stored_pairs(any_store)
    assert set(acknowledged_before) <= restored.keys()  # every event acknowledged before the backup
    assert all(sides == {"a", "b"} for sides in restored.values())  # no transaction half there
    assert restored.keys() <= written
    assert not restored.keys() & set(writer.acked[acknowledged_by_end:])  # the store as of the backup
    assert any_store.count("events") == len(bulk) + 2 * len(restored)
    # The restored store is a working store: it takes writes and finds them.
    any_store.upsert("events", event_pair(10**6))
    assert any_store.count("events") == len(bulk) + 2 * len(restored) + 2


def test_restore_refuses_a_missing_or_corrupt_file_and_changes_nothing(store: Store, tmp_path: Path) -> None:
    store.upsert("events", event_pair(1))
    backup = backup_store(store, tmp_path / "good.backup").path
    with pytest.raises(InputError, match="exists already"):
        backup_store(store, backup)
    store.upsert("events", event_pair(2))

    with pytest.raises(InputError, match="no such backup file"):
        restore_store(store, tmp_path / "missing.backup")
    text_file = tmp_path / "notes.backup"
    text_file.write_text("not a database at all\n")
    with pytest.raises(InputError, match="not a shoplm backup"):
        restore_store(store, text_file)
    corrupt = tmp_path / "corrupt.backup"
    data = bytearray(backup.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)  # every page after the first overwritten
    corrupt.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt"):
        restore_store(store, corrupt)
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(InputError, match="not a shoplm store"):
        restore_store(store, foreign)
    pg_dump_like = tmp_path / "dump.backup"
    pg_dump_like.write_bytes(b"PGDMP" + b"\x00" * 100)
    with pytest.raises(InputError, match="PostgreSQL dump; the store is sqlite"):
        restore_store(store, pg_dump_like)

    assert sorted(stored_pairs(store)) == [1, 2]  # nothing changed by the refusals
    restore_store(store, backup)
    assert sorted(stored_pairs(store)) == [1]


@pytest.mark.postgres
def test_postgres_refuses_a_corrupt_dump(postgres_url: str, tmp_path: Path) -> None:
    with Store.open(postgres_url) as store:
        store.upsert("events", event_pair(1))
        dump = backup_store(store, tmp_path / "pg.backup").path
        assert dump.read_bytes().startswith(b"PGDMP")
        broken = tmp_path / "broken.backup"
        broken.write_bytes(dump.read_bytes()[:40])
        with pytest.raises(InputError, match="not a readable PostgreSQL dump"):
            restore_store(store, broken)
        Store.open(f"sqlite:///{tmp_path / 'shop.sqlite'}").close()
        with pytest.raises(InputError, match="SQLite backup; the store is postgresql"):
            restore_store(store, tmp_path / "shop.sqlite")
        store.upsert("events", event_pair(2))
        restore_store(store, dump)
        assert sorted(stored_pairs(store)) == [1]
