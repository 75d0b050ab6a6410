"""The sequence format of the sequential-recommendation literature (e.g. Amazon "Toys and Games").

A directory with ``sequences.txt`` (one user a line: ``user_id item_id item_id ...`` in time
order), optionally ``items.tsv`` (tab-separated with a header; first column the item id,
last column the item text) and ``item2attributes.json`` (item id -> attribute ids).

The files carry no timestamps, so the importer gives each user's n-th item the time
``start + n days`` (same order, one purchase a day), which keeps the sequence order that the
standard protocol uses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from shoplm.config import Settings
from shoplm.errors import InputError
from shoplm.ingest.pipeline import IngestReport, ProgressCallback, ingest
from shoplm.store import Store

START_MS = 1_577_836_800_000  # 2020-01-01T00:00Z
DAY_MS = 86_400_000


def read_sequences(path: Path) -> dict[str, list[str]]:
    """``sequences.txt`` as user -> items; a malformed line raises :class:`InputError` naming it."""
    if not path.is_file():
        raise InputError("no such file (expected sequences.txt: 'user item item ...' per line)", path=path)
    sequences: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise InputError("a user with no items (expected 'user item item ...')", path=path, line=number)
            if parts[0] in sequences:
                raise InputError(f"user {parts[0]!r} appears a second time", path=path, line=number)
            sequences[parts[0]] = parts[1:]
    if not sequences:
        raise InputError("the file holds no sequences", path=path)
    return sequences


def read_item_texts(path: Path) -> pd.DataFrame:
    """``items.tsv`` as a frame of ``item_id`` and ``title`` (first and last columns)."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    if frame.shape[1] < 2:
        raise InputError("expected at least two tab-separated columns (item id ... text)", path=path)
    return pd.DataFrame({"item_id": frame.iloc[:, 0].str.strip(), "title": frame.iloc[:, -1].str.strip()})


class AmazonSequenceImporter:
    help = "a directory with sequences.txt [items.tsv, item2attributes.json] (Amazon/S3Rec sequence format)"

    def run(
        self, path: Path, *, store: Store, settings: Settings, progress: ProgressCallback | None = None
    ) -> list[IngestReport]:
        directory = Path(path)
        if not directory.is_dir():
            raise InputError("expected a directory holding sequences.txt", path=directory)
        sequences = read_sequences(directory / "sequences.txt")
        rejects_dir = settings.data_dir / "rejects"
        reports = []
        items_path = directory / "items.tsv"
        if items_path.is_file():
            items = read_item_texts(items_path)
            attributes_path = directory / "item2attributes.json"
            if attributes_path.is_file():
                attributes = json.loads(attributes_path.read_text())
                items["attributes"] = items["item_id"].map(
                    lambda i: json.dumps({"attribute_ids": attributes.get(i, [])})
                )
            items["title"] = items["title"].where(items["title"] != "", "item " + items["item_id"])
            reports.append(
                ingest("items", items, store=store, settings=settings, rejects_path=rejects_dir / "amazon-items.csv")
            )
        users, item_ids, stamps = [], [], []
        for user, items_of_user in sequences.items():
            for position, item in enumerate(items_of_user):
                users.append(user)
                item_ids.append(item)
                stamps.append(START_MS + position * DAY_MS)
        events = pd.DataFrame({"user_id": users, "item_id": item_ids, "event_type": "purchase", "timestamp": stamps})
        # Position in the sequence makes each event unique even when an item repeats.
        events["event_id"] = "seq-" + events["user_id"] + "-" + events.groupby("user_id").cumcount().astype(str)
        reports.append(
            ingest(
                "events",
                events,
                store=store,
                settings=settings,
                rejects_path=rejects_dir / "amazon-events.csv",
                progress=progress,
            )
        )
        return reports
