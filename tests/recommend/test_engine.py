"""The engine on a small synthetic shop: scenes, reasons, rules, cold start, real time, profiles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from shoplm.app.recommender import ShopRecommender
from shoplm.app.registry import ModelRegistry
from shoplm.config import Settings
from shoplm.errors import InputError
from shoplm.ingest.pipeline import ingest
from shoplm.recommend import (
    ALSRecommender,
    CooccurrenceRecommender,
    Interactions,
    PopularityRecommender,
    TextSimilarityRecommender,
)
from shoplm.recommend.catalog import CatalogView
from shoplm.recommend.components import SOURCES
from shoplm.recommend.engine import RecommendationEngine
from shoplm.recommend.evaluation import evaluate_engine
from shoplm.recommend.ranker import HybridRanker, feature_names
from shoplm.recommend.rules import BusinessRules
from shoplm.store import Store
from tests.estimator_contract import EstimatorContract

PHONES = [f"p{i}" for i in range(8)]
CASES = [f"c{i}" for i in range(8)]
DRESSES = [f"d{i}" for i in range(8)]
ALL = PHONES + CASES + DRESSES
CATEGORY = {
    **dict.fromkeys(PHONES, "Electronics > Phones"),
    **dict.fromkeys(CASES, "Accessories > Cases"),
    **dict.fromkeys(DRESSES, "Clothing > Dresses"),
}
DIM = 8


def catalog_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ALL,
            "title": [f"{CATEGORY[i].split(' > ')[1][:-1]} {i}" for i in ALL],
            "category": [CATEGORY[i] for i in ALL],
            "price": [500.0 + n * 10 for n in range(8)] + [20.0 + n for n in range(8)] + [80.0 + n for n in range(8)],
            "stock": [5] * len(ALL),
        }
    )


def embed(items: Sequence[str], seed: int = 0) -> np.ndarray:
    """Item vectors: one direction per category, plus a little noise."""
    rng = np.random.default_rng(seed)
    axis = {"Electronics > Phones": 0, "Accessories > Cases": 1, "Clothing > Dresses": 2}
    vectors = rng.normal(0, 0.1, (len(items), DIM))
    for row, item in enumerate(items):
        vectors[row, axis[CATEGORY.get(item, "Clothing > Dresses")]] += 1.0
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


class FakeEncoder:
    """A text encoder for tests: 'phone', 'case' or 'dress' in the text picks the direction."""

    def encode(self, texts: Sequence[str], *, mode: str = "passage", **_: object) -> np.ndarray:
        words = {"phone": "p0", "case": "c0", "dress": "d0"}
        anchors = [next((v for k, v in words.items() if k in t.lower()), "d0") for t in texts]
        return embed(anchors, seed=len(texts))


def shopping(seed: int = 0, users: int = 60) -> Interactions:
    """Phone buyers then buy a case (a complement); dress shoppers browse dresses."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        start = 1_700_000_000_000 + u * 10_000_000
        if u % 2 == 0:
            seq = [*rng.choice(PHONES[:4], 3), *rng.choice(CASES[:4], 2)]
        else:
            seq = list(rng.choice(DRESSES, 5))
        rows += [(f"u{u}", item, start + step * 60_000) for step, item in enumerate(seq)]
    users_, items, ts = zip(*rows, strict=True)
    return Interactions.from_arrays(users_, items, ts)


def make_sources(data: Interactions) -> dict:
    return {
        "popularity": PopularityRecommender(by_category=True).fit(data, item_category=CATEGORY),
        "cooccurrence": CooccurrenceRecommender(min_count=1).fit(data),
        "als": ALSRecommender(factors=8, iterations=10).fit(data),
        "text": TextSimilarityRecommender().fit(data, item_ids=ALL, embeddings=embed(ALL)),
    }


@pytest.fixture(scope="module")
def engine() -> RecommendationEngine:
    catalog = CatalogView.from_frame(catalog_frame())
    return RecommendationEngine(catalog, make_sources(shopping()), query_encoder=lambda q: FakeEncoder().encode([q])[0])


def kinds(recs: list) -> list[str]:
    return [r.item_id[0] for r in recs]


def test_home_follows_the_history_and_explains(engine: RecommendationEngine) -> None:
    recs = engine.recommend(["d1", "d2"], scene="home", k=5)
    assert kinds(recs).count("d") >= 4
    assert all(r.reason and r.title for r in recs)
    assert any(r.reason.startswith("because you viewed Dresse") for r in recs)
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)


def test_item_detail_shows_similar_and_bought_together_never_the_item(engine: RecommendationEngine) -> None:
    recs = engine.recommend([], scene="item_detail", item_id="p1", k=6)
    assert "p1" not in [r.item_id for r in recs]
    assert set(kinds(recs)) <= {"p", "c"}
    assert all("p1" in r.reason or "Phone p1" in r.reason for r in recs)
    # Without its item the page gets the user's own picks, as the home page would.
    home = engine.recommend(["d1", "d2"], scene="home", k=4)
    assert engine.recommend(["d1", "d2"], scene="item_detail", k=4) == home
    assert engine.recommend(["d1", "d2"], scene="cart", cart=[], k=4) == home


def test_cart_prefers_complements_to_substitutes(engine: RecommendationEngine) -> None:
    recs = engine.recommend(["p0"], scene="cart", cart=["p1"], k=4)
    assert recs[0].item_id.startswith("c")
    assert "p1" not in [r.item_id for r in recs]
    assert recs[0].reason.startswith("goes with")


def test_post_purchase_never_offers_the_same_kind_first(engine: RecommendationEngine) -> None:
    recs = engine.recommend(["p2"], scene="post_purchase", purchased=["p2"], k=3)
    assert kinds(recs)[0] == "c"
    assert "p2" not in [r.item_id for r in recs]


def test_search_matches_the_query_then_the_taste(engine: RecommendationEngine) -> None:
    recs = engine.recommend(["p1", "p2"], scene="search", query="summer dress", k=5)
    assert kinds(recs) == ["d"] * 5
    assert all(r.reason == "matches “summer dress”" for r in recs)
    assert engine.recommend(["p1"], scene="search", k=3) == engine.recommend(["p1"], scene="home", k=3)


def test_cold_start_is_popular_never_an_error(engine: RecommendationEngine) -> None:
    for history in ([], ["never-seen-item"]):
        recs = engine.recommend(history, k=5)
        assert len(recs) == 5
        assert all(r.reason.startswith("popular") for r in recs)


def test_bad_requests(engine: RecommendationEngine) -> None:
    with pytest.raises(InputError, match="unknown scene"):
        engine.recommend([], scene="checkout")
    with pytest.raises(InputError, match="k must be"):
        engine.recommend([], k=0)


def test_align_maps_model_order_to_catalog_positions_skipping_unknown_ids() -> None:
    from shoplm.recommend.catalog import align

    catalog = CatalogView.from_frame(pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["A", "B", "C"]}))
    source, positions = align(np.array(["c", "zz", "a"]), catalog)
    assert source.tolist() == [0, 2] and positions.tolist() == [2, 0]
    catalog.upsert(pd.DataFrame({"item_id": ["zz"], "title": ["new"]}))  # the catalog grows: lookups follow
    source, positions = align(np.array(["c", "zz", "a"], dtype=object), catalog)
    assert source.tolist() == [0, 1, 2] and positions.tolist() == [2, 3, 0]
    assert align(np.array([], dtype=str), catalog)[0].size == 0


def test_rules_stock_purchases_price_diversity_boost_bury(engine: RecommendationEngine) -> None:
    base = [r.item_id for r in engine.recommend(["p0", "p1"], k=6)]
    out_of_stock = engine.catalog.index[base[0]]
    engine.catalog.in_stock[out_of_stock] = False
    try:
        assert base[0] not in [r.item_id for r in engine.recommend(["p0", "p1"], k=6)]
    finally:
        engine.catalog.in_stock[out_of_stock] = True
    purchased = engine.recommend(["p0", "p1"], k=6, purchased=[base[1]], rules=BusinessRules(exclude_purchased=True))
    assert base[1] not in [r.item_id for r in purchased]
    cheap = engine.recommend(["p0", "p1"], k=6, rules=BusinessRules(max_price=100))
    assert all(engine.catalog.price[engine.catalog.index[r.item_id]] <= 100 for r in cheap)
    capped = engine.recommend(["p0", "p1", "c0"], k=4, rules=BusinessRules(max_per_category=1))
    assert len({engine.catalog.top_category[engine.catalog.index[r.item_id]] for r in capped}) >= 3
    boosted = engine.recommend(["p0", "p1"], k=3, rules=BusinessRules(boost={"d7": 10.0}))
    assert boosted[0].item_id == "d7"
    buried = engine.recommend(["p0", "p1"], k=6, rules=BusinessRules(bury=frozenset({base[0]})))
    assert buried[0].item_id != base[0]


def test_learned_ranker_is_an_estimator_and_beats_nothing_less_than_chance() -> None:
    catalog = CatalogView.from_frame(catalog_frame())
    results = evaluate_engine(shopping(users=80), catalog, make_sources, max_users=40)
    assert set(results) == {"popularity", "cooccurrence", "als", "text", "fused", "ranker"}
    chance_hr10 = 10 / len(ALL)
    assert results["ranker"]["HR@10"] > chance_hr10
    assert results["fused"]["HR@10"] > chance_hr10


class TestHybridRankerContract(EstimatorContract):
    def make_estimator(self) -> HybridRanker:
        return HybridRanker(n_estimators=20, num_leaves=7)

    def fit_estimator(self, estimator: HybridRanker) -> HybridRanker:
        catalog = CatalogView.from_frame(catalog_frame())
        return estimator.fit(shopping(users=60), catalog=catalog, source_factory=make_sources)

    def probe(self, estimator: HybridRanker) -> np.ndarray:
        rng = np.random.default_rng(0)
        return estimator.rerank(rng.random((12, len(feature_names(list(SOURCES))))))


# -- the store-bound recommender: real time, new items, profiles, refresh --------------
def events_frame(interactions: Interactions) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": interactions.user_id,
            "item_id": interactions.item_id,
            "event_type": "view",
            "timestamp": interactions.ts_ms,
        }
    )


@pytest.fixture
def shop(store: Store, settings: Settings) -> ShopRecommender:
    ingest("items", catalog_frame(), store=store, settings=settings)
    data = shopping()
    ingest("events", events_frame(data), store=store, settings=settings)
    stored = Interactions.from_frame(store.frame("events", ["user_id", "item_id", "ts_ms", "event_type"]))
    registry = ModelRegistry(settings.models_dir)
    version = registry.new_version()
    for name, model in make_sources(stored).items():
        model.save(version / name)
    registry.publish(version.name)
    loaded = ShopRecommender.load(store, settings)
    assert loaded.version == version.name
    loaded._encoder = FakeEncoder()
    return loaded


def test_new_events_change_the_next_answer_at_once(shop: ShopRecommender, store: Store, settings: Settings) -> None:
    before = shop.recommend("u0", k=5)  # a phone buyer
    assert kinds(before).count("d") == 0
    now = 1_700_100_000_000
    fresh = pd.DataFrame(
        {
            "user_id": "u0",
            "item_id": DRESSES[:4] * 3,
            "event_type": "view",
            "timestamp": [now + i * 1000 for i in range(12)],
        }
    )
    ingest("events", fresh, store=store, settings=settings)
    after = shop.recommend("u0", k=5)
    assert kinds(after).count("d") >= 3  # no retrain: the live history did it


def test_unknown_user_gets_cold_start(shop: ShopRecommender) -> None:
    recs = shop.recommend("somebody-new", k=4)
    assert len(recs) == 4 and all(r.reason.startswith("popular") for r in recs)
    assert shop.recommend(None, k=2)


def test_session_items_count_before_they_are_stored(shop: ShopRecommender) -> None:
    recs = shop.recommend("u1", k=5, session=["p0", "p1", "p2", "p3"] * 3)
    assert kinds(recs).count("d") < 5


def test_a_new_catalog_item_is_recommendable_immediately(
    shop: ShopRecommender, store: Store, settings: Settings
) -> None:
    # An event for an item the catalog does not know yet is kept ...
    ingest(
        "events",
        pd.DataFrame(
            {"user_id": ["u3"], "item_id": ["d-new"], "event_type": ["view"], "timestamp": [1_700_200_000_000]}
        ),
        store=store,
        settings=settings,
    )
    assert store.frame("events", ["item_id"])["item_id"].eq("d-new").sum() == 1
    # ... and once the catalog has it, it can be recommended by its text.
    row = pd.DataFrame(
        {
            "item_id": ["d-new"],
            "title": ["Linen summer dress"],
            "category": ["Clothing > Dresses"],
            "price": [90.0],
            "stock": [3],
        }
    )
    assert shop.add_items(row) == ["d-new"]
    found = shop.recommend("u0", scene="search", query="dress", k=len(DRESSES) + 1)
    assert "d-new" in [r.item_id for r in found]
    similar = shop.recommend(None, scene="item_detail", item_id="d-new", k=5)
    assert kinds(similar)[0] == "d"


def test_profile_has_readable_tags_and_a_vector(shop: ShopRecommender) -> None:
    profile = shop.profile("u0")
    assert profile.top_categories[0][0] in {"Electronics", "Accessories"}
    assert "Electronics" in profile.tags
    assert profile.price_band in {"budget", "mid", "premium"}
    assert len(profile.vector) == 8  # the ALS factors
    assert profile.to_dict()["user_id"].startswith("u_")
    with pytest.raises(InputError, match="empty"):
        shop.profile(" ")


def test_refresh_refits_cheap_sources_from_the_store(shop: ShopRecommender, store: Store, settings: Settings) -> None:
    old = shop.engine.sources["cooccurrence"]
    now = 1_700_300_000_000
    pairs = pd.DataFrame(
        {
            "user_id": [f"n{i // 2}" for i in range(40)],
            "item_id": ["d7", "c7"] * 20,
            "event_type": "view",
            "timestamp": [now + i * 1000 for i in range(40)],
        }
    )
    ingest("events", pairs, store=store, settings=settings)
    timings = shop.refresh()
    assert set(timings) == {"popularity", "cooccurrence"}
    assert shop.engine.sources["cooccurrence"] is not old
    assert "c7" not in [i for i, _ in old.similar("d7", 3)]
    assert shop.engine.sources["cooccurrence"].similar("d7", 1)[0][0] == "c7"
    complements = shop.recommend(None, scene="cart", cart=["d7"], k=1)
    assert complements[0].item_id == "c7" and complements[0].reason == "goes with Dresse d7"


def test_a_seen_item_says_so_instead_of_naming_itself(engine: RecommendationEngine) -> None:
    recs = engine.recommend(["d1", "d1", "d2", "d1"], k=8)
    reasons = {r.item_id: r.reason for r in recs}
    assert reasons["d1"] == "you viewed this recently"
    assert all(r.item_id not in r.reason for r in recs if r.item_id not in ("d1", "d2"))


def test_home_feed_caps_the_items_already_seen_and_labels_them(engine: RecommendationEngine) -> None:
    history = ["d1", "d2", "d3", "d4", "d5", "d6"]  # a shopper who looked at many dresses
    free = engine.recommend(history, k=6, rules=BusinessRules())
    capped = engine.recommend(history, k=6, rules=BusinessRules(max_seen_share=0.34))
    seen_free = [r for r in free if r.item_id in history]
    seen_capped = [r for r in capped if r.item_id in history]
    assert len(seen_free) > 2  # without the cap, re-views crowd the feed
    assert 0 < len(seen_capped) <= 2 and len(capped) == 6  # floor(0.34 * 6) = 2; new items fill the rest
    assert all(r.reason == "you viewed this recently" for r in seen_capped)
    # a cap of 0 shows only new items (enough exist here)
    none = engine.recommend(history, k=6, rules=BusinessRules(max_seen_share=0.0))
    assert not [r for r in none if r.item_id in history]


def test_items_ingested_after_training_join_the_text_source_at_load(
    shop: ShopRecommender, store: Store, settings: Settings
) -> None:
    row = pd.DataFrame({"item_id": ["d-late"], "title": ["Silk dress"], "category": ["Clothing > Dresses"]})
    ingest("items", row, store=store, settings=settings)
    reloaded = ShopRecommender(store, shop.engine, shop.pseudonymizer, encoder=FakeEncoder())
    assert reloaded.sync_catalog(store.items.catalog()) == ["d-late"]
    assert "d-late" in reloaded.engine.sources["text"].item_ids_.tolist()
    assert reloaded.sync_catalog(store.items.catalog()) == []


def test_refresh_scheduler_runs_and_stops(shop: ShopRecommender) -> None:
    import time

    from shoplm.app.recommender import RefreshScheduler

    scheduler = RefreshScheduler(shop, minutes=0.001).start()
    deadline = time.time() + 20
    while scheduler.runs < 1 and time.time() < deadline:
        time.sleep(0.05)
    scheduler.stop()
    assert scheduler.runs >= 1 and scheduler.last_error is None
    with pytest.raises(InputError, match="positive"):
        RefreshScheduler(shop, minutes=0)


def test_hold_out_last_removes_exactly_the_newest_event_of_the_chosen_users() -> None:
    data = Interactions.from_arrays(["a", "a", "a", "b", "b"], ["x", "y", "z", "x", "w"], [1, 2, 3, 1, 2])
    kept, held = data.hold_out_last({"a"})
    assert held == {"a": "z"}
    assert kept.sequences() == {"a": ["x", "y"], "b": ["x", "w"]}
    assert data.hold_out_last()[1] == {"a": "z", "b": "w"}


def test_profile_of_an_unknown_user_is_empty_not_an_error(shop: ShopRecommender) -> None:
    profile = shop.profile("nobody-at-all")
    assert (profile.events, profile.tags, profile.vector, profile.price_band) == (0, [], [], "unknown")
