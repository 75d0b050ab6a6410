"""The app floor's path: a demo store ingested, its tables read back, features built and scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shoplm.config import Settings
from shoplm.demo.generator import DemoSizes, generate_demo_store
from shoplm.ingest.pipeline import ingest
from shoplm.risk import FraudScorer, build_order_features
from shoplm.risk.bench import fraud_labels
from shoplm.store import Store


def test_features_from_the_stores_tables(tmp_path: Path, settings: Settings, store: Store) -> None:
    sizes = DemoSizes(n_items=120, n_users=300, n_events=20_000, n_categories=6)
    demo = generate_demo_store(tmp_path / "demo", seed=3, sizes=sizes)
    for kind in ("items", "users", "events", "orders"):
        ingest(kind, demo.files[kind], store=store, settings=settings)
    features = build_order_features(
        store.frame("orders"),
        store.frame("order_lines"),
        users=store.frame("users"),
        events=store.frame("events", ["user_id", "ts_ms", "session_id", "event_type", "suspected_bot"]),
        items=store.frame("items", ["item_id", "price"]),
    )
    # Ids are pseudonymised at ingest, consistently: the account signals survive.
    assert features["account_age_hours"].notna().all()
    assert features["session_seconds"].notna().mean() > 0.95
    labels, _ = fraud_labels(demo.out_dir, features.index)
    assert labels.sum() >= 3
    scores = FraudScorer(n_estimators=30).fit(features).score(features)
    top = np.argsort(-scores)[: int(labels.sum())]
    assert labels[top].mean() >= 0.6  # the blatant injected fraud leads the list
