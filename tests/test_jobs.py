"""The application jobs on a tiny store: encode with cache, train, describe, the demo."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from typer.testing import CliRunner

from shoplm.app import jobs
from shoplm.cli import app
from shoplm.cli.common import progress_bar
from shoplm.config import Settings
from shoplm.ingest.pipeline import ingest
from shoplm.store import Store

ITEMS = pd.DataFrame(
    {
        "item_id": ["d1", "d2", "c1", "c2"],
        "title": ["红色连衣裙", "Red summer dress", "USB-C 快充充电器", "USB-C fast charger 65W"],
        "category": ["Clothing > Dresses", "Clothing > Dresses", "Electronics > Chargers", "Electronics > Chargers"],
        "price": [99, 120, 59, 45],
    }
)


def test_encode_catalog_caches_and_is_multilingual(store: Store, settings: Settings) -> None:
    ingest("items", ITEMS, store=store, settings=settings)
    first = jobs.encode_catalog(store, settings, progress=False)
    assert (first.count, first.cache_hits) == (4, 0)
    second = jobs.encode_catalog(store, settings, progress=False)
    assert second.cache_hits == 4  # nothing re-encoded
    ids, vectors = jobs.load_item_embeddings(settings)
    assert list(ids) == ["c1", "c2", "d1", "d2"] and vectors.shape == (4, 384)
    sims = vectors @ vectors.T
    # The Chinese dress is closer to the English dress than to either charger.
    assert sims[2, 3] > sims[2, 0] and sims[2, 3] > sims[2, 1]
    ingest(
        "items",
        ITEMS.assign(title=ITEMS["title"].where(ITEMS["item_id"] != "c2", "Wireless mouse")),
        store=store,
        settings=settings,
    )
    third = jobs.encode_catalog(store, settings, progress=False)
    assert third.cache_hits == 3  # only the changed title reached the model


def test_train_and_describe(store: Store, settings: Settings) -> None:
    ingest("items", ITEMS, store=store, settings=settings)
    rng = np.random.default_rng(0)
    users = [f"U{n}" for n in range(40)]
    rows = []
    for n, user in enumerate(users):
        group = ["d1", "d2"] if n % 2 else ["c1", "c2"]
        for step in range(6):
            rows.append((user, group[rng.integers(2)], "view", 1_700_000_000 + n * 100 + step))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp"])
    ingest("events", events, store=store, settings=settings)
    jobs.encode_catalog(store, settings, progress=False)
    trained = jobs.train_recommenders(store, settings)
    assert {"popularity", "cooccurrence", "als", "text", "sequential", "ranker"} <= set(trained)
    for name in set(trained) - {"ranker"}:
        loaded = jobs.load_model(settings, name)
        assert loaded.recommend(["d1"], k=1, exclude_seen=True)[0][0] in {"d2", "c1", "c2"}
    assert jobs.load_model(settings, "cooccurrence").recommend(["d1"], k=1, exclude_seen=True)[0][0] == "d2"
    # the ranker learned from every source, the time-capped sequential model included
    assert "sequential" in jobs.load_model(settings, "ranker").sources_
    summary = jobs.describe(settings)
    assert summary["counts"]["events"] == 240
    assert set(summary["models"]) == set(trained)


def test_demo_small_end_to_end(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "demo", pseudonymization_key="k", recommend={"sequential_minutes": 0.2})
    out = io.StringIO()
    console = Console(file=out, width=120)
    result = jobs.run_demo(settings, console=console, progress_bar=progress_bar, small=True)
    text = out.getvalue()
    assert result["counts"]["items"] == 400 and result["counts"]["events"] > 10_000
    # The impression logs are ingested and every stored review is scored on arrival.
    assert result["counts"]["impressions"] > 0
    assert result["counts"]["review_sentiment"] == result["counts"]["reviews"] > 0
    assert "trained als" in text and "recently:" in text
    assert result["samples"] and all(s["recommendations"]["home"] for s in result["samples"])
    assert "because you" in text and "item_detail" in text and "post_purchase" in text
    again = jobs.run_demo(settings, console=Console(file=io.StringIO()), progress_bar=progress_bar, small=True)
    assert again["counts"] == result["counts"]  # a second run adds nothing
    info = CliRunner().invoke(app, ["info", "--data-dir", str(settings.data_dir)])
    assert info.exit_code == 0 and "als" in info.output
    # Every text the ground truth says holds PII is masked; the others are untouched.
    truth = json.loads((settings.data_dir / "demo-source" / "ground_truth.json").read_text())
    store = Store.open(settings.database_url)
    reviews = store.frame("reviews", ["review_id", "text"]).set_index("review_id")["text"]
    messages = store.frame("messages", ["message_id", "text"]).set_index("message_id")["text"]
    flagged = [reviews[i] for i in truth["pii"]["reviews"]] + [messages[i] for i in truth["pii"]["messages"]]
    assert flagged and all("[email]" in t or "[phone]" in t for t in flagged)
    others = reviews.drop(truth["pii"]["reviews"])
    assert not others.str.contains(r"\[(?:email|phone)\]").any()
    store.close()
    raw = b"".join(p.read_bytes() for p in settings.data_dir.glob("shoplm.sqlite*"))
    for domain in (b"@qq.com", b"@163.com", b"@gmail.com", b"@outlook.com"):
        assert domain not in raw, domain
