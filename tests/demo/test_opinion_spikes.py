"""The demo store's opinion spikes: appended reviews that follow every review rule, and nothing else changes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from shoplm.demo import DemoManifest, DemoSizes, generate_demo_store, opinion_spikes
from shoplm.demo import vocab as V

SIZES = DemoSizes(n_items=400, n_users=1000, n_events=30_000)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoManifest, DemoManifest]:
    with_spikes = generate_demo_store(tmp_path_factory.mktemp("spikes"), seed=1, sizes=SIZES)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(opinion_spikes, "inject_opinion_spikes", lambda builder: [])
        without = generate_demo_store(tmp_path_factory.mktemp("nospikes"), seed=1, sizes=SIZES)
    return with_spikes, without


def _truth(m: DemoManifest) -> dict:
    return json.loads(m.ground_truth.read_text(encoding="utf-8"))


def test_spikes_only_append_reviews_every_other_byte_is_unchanged(stores: tuple[DemoManifest, DemoManifest]) -> None:
    with_spikes, without = stores
    for kind, path in with_spikes.files.items():
        if kind != "reviews":
            assert path.read_bytes() == without.files[kind].read_bytes(), kind
    spiked, plain = with_spikes.files["reviews"].read_bytes(), without.files["reviews"].read_bytes()
    assert len(spiked) > len(plain) and spiked.startswith(plain)
    truth, plain_truth = _truth(with_spikes), _truth(without)
    assert plain_truth["opinion_spikes"] == [] and len(truth["opinion_spikes"]) >= 3
    added = {r for s in truth["opinion_spikes"] for r in s["review_ids"]}
    assert set(truth["reviews"]) - set(plain_truth["reviews"]) == added
    for key in set(truth) - {"reviews", "opinion_spikes"}:
        assert truth[key] == plain_truth[key], key


def test_each_spike_is_a_burst_of_themed_negative_reviews_about_its_key(
    stores: tuple[DemoManifest, DemoManifest],
) -> None:
    m = stores[0]
    truth = _truth(m)
    reviews = pd.read_json(m.files["reviews"], lines=True, dtype=False).set_index("review_id")
    items = pd.read_csv(m.files["items"], dtype=str, keep_default_na=False).set_index("item_id")
    first_new = len(reviews) - sum(len(s["review_ids"]) for s in truth["opinion_spikes"])
    starts = []
    for spike in truth["opinion_spikes"]:
        rows = reviews.loc[spike["review_ids"]]
        assert len(rows) == sum(spike["per_day"]) and 1 <= len(spike["per_day"]) <= 5 and spike["per_day"][-1] > 0
        assert all(int(r[1:]) > first_new for r in spike["review_ids"])  # ids after the existing ones
        key_of = {
            "item": rows["item_id"],
            "brand": rows["item_id"].map(items["brand"]),
            "category": rows["item_id"].map(items["category"]),
        }
        assert (key_of[spike["level"]] == spike["key"]).all()
        days = pd.to_datetime(rows["timestamp"], utc=True).dt.strftime("%Y-%m-%d")
        assert days.min() == spike["start"] and days.max() == spike["end"]
        assert (rows["rating"] <= 2).all()
        _, english, chinese = opinion_spikes.THEMES[spike["theme"]]
        for text, language in zip(rows["text"], rows["language"], strict=True):
            assert any(s in text for s in (chinese if language == "zh" else english)), text
            assert any(p in text for p in V.OVERALL[language]["negative"])
        for review_id in spike["review_ids"]:
            assert truth["reviews"][review_id]["sentiment"] == "negative"
        starts.append(spike["start"])
    assert starts == sorted(starts) and len(set(starts)) == len(starts)  # one stretch of the window each
