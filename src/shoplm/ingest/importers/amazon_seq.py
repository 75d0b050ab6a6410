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
from shoplm.ingest.sequences import read_item_texts, read_sequences
from shoplm.store import Store

__all__ = ["AmazonSequenceImporter", "read_item_texts", "read_sequences"]

START_MS = 1_577_836_800_000  # 2020-01-01T00:00Z
DAY_MS = 86_400_000


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
