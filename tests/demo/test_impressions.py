"""The demo impression logs: well-formed, biased like a shop's, and from the documented click model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shoplm.demo import DemoManifest, DemoSizes, generate_demo_store
from shoplm.demo.impressions import CLICK_MODEL, N_CREATIVES, SLOTS, TRUTH_FILE, oracle_auc, title_vectors

SMALL = DemoSizes(n_items=200, n_users=300, n_events=5_000)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoManifest:
    return generate_demo_store(tmp_path_factory.mktemp("imp"), seed=3, sizes=SMALL)


@pytest.fixture(scope="module")
def impressions(demo: DemoManifest) -> pd.DataFrame:
    return pd.read_parquet(demo.files["impressions"])


def test_every_request_shows_k_distinct_items_in_positions(demo: DemoManifest, impressions: pd.DataFrame) -> None:
    df = impressions
    assert len(df) == demo.counts["impressions"] == 4 * SMALL.n_users * SLOTS
    per = df.groupby("request_id")
    assert (per.size() == SLOTS).all()
    assert (per["item_id"].nunique() == SLOTS).all()
    assert (per["position"].apply(lambda p: sorted(p) == list(range(SLOTS)))).all()
    assert (per["user_id"].nunique() == 1).all() and (per["ts"].nunique() == 1).all()
    assert set(df["scene"]) == {"home", "search", "item_detail"}
    assert set(df["creative"]) == set(range(N_CREATIVES))
    assert not (df["added_to_cart"].astype(bool) & ~df["clicked"].astype(bool)).any()
    items = pd.read_csv(demo.files["items"], dtype=str)
    users = pd.read_csv(demo.files["users"], dtype=str)
    assert set(df["item_id"]) <= set(items["item_id"]) and set(df["user_id"]) <= set(users["user_id"])
    assert df["ts"].max() < int(demo.end.timestamp() * 1000)
    # Request ids follow time.
    first = per["ts"].first().sort_index()
    assert first.is_monotonic_increasing


def test_clicks_follow_the_click_model(demo: DemoManifest, impressions: pd.DataFrame) -> None:
    df = impressions
    truth = json.loads((demo.out_dir / TRUTH_FILE).read_text())
    auc = oracle_auc(df["clicked"].to_numpy(), df["p_click"].to_numpy())
    assert 0.75 <= auc <= 0.85
    assert truth["oracle_auc"] == pytest.approx(auc, abs=1e-3)
    assert truth["click_model"]["c"] == CLICK_MODEL.c
    # Clicks are calibrated to p_click, and position bias is visible in the logs.
    assert df["clicked"].mean() == pytest.approx(df["p_click"].mean(), abs=0.015)
    by_pos = df.groupby("position")["clicked"].mean()
    assert by_pos[0] > by_pos[SLOTS - 1] + 0.05
    # Creatives are uniform and their hidden effects move the click probability.
    shares = df["creative"].value_counts(normalize=True)
    assert shares.between(0.2, 0.3).all()
    effects = truth["creative_effects"]
    g = np.array([effects[i][c] for i, c in zip(df["item_id"], df["creative"], strict=True)])
    logit = np.log(df["p_click"] / (1 - df["p_click"]))
    assert np.corrcoef(g, logit)[0, 1] > 0.1


def test_other_files_do_not_change_with_the_impressions(demo: DemoManifest, tmp_path: Path) -> None:
    other = generate_demo_store(tmp_path, seed=3, sizes=DemoSizes(200, 300, 5_000, n_requests=50))
    for kind, path in demo.files.items():
        same = path.read_bytes() == other.files[kind].read_bytes()
        assert same == (kind != "impressions"), kind
    assert demo.ground_truth.read_bytes() == other.ground_truth.read_bytes()
    assert other.counts["impressions"] == 50 * SLOTS


def test_title_vectors_put_twins_and_shared_words_close() -> None:
    v = title_vectors(["Lumo Wireless Earbuds Black", "Lumo 无线耳机 黑色", "Lumo Yoga Mat", "Kato Yoga Mat"])
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0)
    assert v[0] @ v[1] > 0.95  # the same words in the other language
    assert v[2] @ v[3] > v[0] @ v[3]  # sharing "Yoga Mat" beats sharing nothing


def test_ingest_pseudonymizes_users_and_never_stores_p_click(demo: DemoManifest, tmp_path: Path) -> None:
    from shoplm.config import Settings
    from shoplm.ingest.pipeline import ingest
    from shoplm.ingest.pseudonymize import Pseudonymizer
    from shoplm.store import Store

    settings = Settings(data_dir=tmp_path)
    store = Store.open(settings.database_url)
    report = ingest("impressions", demo.files["impressions"], store=store, settings=settings)
    assert report.accepted == demo.counts["impressions"] and report.rejected == 0
    stored = store.impressions.frame()
    assert "p_click" not in store.frame("impressions").columns
    raw = pd.read_parquet(demo.files["impressions"]).sort_values(["ts", "request_id", "position"])
    assert list(stored["user_id"][:3]) == [Pseudonymizer(settings.hmac_key).user(u) for u in raw["user_id"][:3]]
    assert stored["clicked"].sum() == raw["clicked"].sum()
    assert ingest("impressions", demo.files["impressions"], store=store, settings=settings).duplicates == len(raw)
    bad = raw.head(3).assign(clicked=[0, 2, 1], position=[0, 1, -1])
    again = ingest("impressions", bad, store=store, settings=settings)
    assert again.rejected == 2 and set(again.rejects["field"]) == {"clicked", "position"}
