"""CTR features (no leakage, serving equals training), the three models' contract, the bench's output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from shoplm.demo import DemoSizes, generate_demo_store
from shoplm.errors import InputError
from shoplm.estimator import Estimator
from shoplm.marketing.ctr import CreativeScorer, CtrScorer, GbmCtr, LogisticCtr
from shoplm.marketing.ctr_bench import read_demo_logs, run_ctr_benchmark, write_outputs
from shoplm.marketing.ctr_deep import DeepCtr
from shoplm.marketing.ctr_features import CtrFeaturizer
from tests.estimator_contract import EstimatorContract

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("ctr-demo")
    generate_demo_store(out, seed=5, sizes=DemoSizes(n_items=200, n_users=300, n_events=5_000, n_requests=600))
    return read_demo_logs(out)


def _vectors(n: int, dim: int = 24) -> np.ndarray:
    """Stand-in item vectors (the real ones come from e5; the features only need some geometry)."""
    v = np.random.default_rng(0).normal(size=(n, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def table(logs) -> tuple[CtrFeaturizer, pd.DataFrame]:
    featurizer = CtrFeaturizer(text_dims=4, profile_dims=8).fit(
        logs.impressions, logs.events, logs.items, _vectors(len(logs.items))
    )
    return featurizer, featurizer.log_features(logs.impressions, logs.events)


def test_features_never_see_the_impression_or_the_future(logs, table) -> None:
    featurizer, features = table
    imps = logs.impressions
    cut = imps["ts_ms"].quantile(0.5)
    early = (imps["ts_ms"] <= cut).to_numpy()
    # Flip every later click and drop the later events: the earlier rows' features stay the same.
    changed = imps.assign(clicked=np.where(early, imps["clicked"], ~imps["clicked"]))
    again = featurizer.log_features(changed, logs.events[logs.events["ts_ms"] <= cut])
    pd.testing.assert_frame_equal(again[early], features[early])
    assert not again[~early].equals(features[~early])
    # The first impression of each user knows no clicks of theirs yet, whatever that request's clicks are.
    first = ~imps.duplicated("user_id")
    assert (features.loc[first.to_numpy(), "user_clicks"] == 0).all()
    assert {"text_pref", "text_taste", "emb_0", "item_creative_ctr", "creative"} <= set(features.columns)


def test_serving_features_equal_the_logs_features_after_the_last_impression(logs, table) -> None:
    featurizer, _ = table
    imps = logs.impressions
    user = imps["user_id"].value_counts().index[0]
    items = logs.items["item_id"].head(5).tolist()
    after = int(imps["ts_ms"].max()) + 1  # an hour of day 12 request after everything
    after = after - after % 86_400_000 + 86_400_000 + 12 * 3_600_000
    probe = pd.DataFrame(
        {
            "request_id": "probe",
            "position": range(5),
            "user_id": user,
            "item_id": items,
            "ts_ms": after,
            "scene": "search",
            "clicked": False,
            "creative": np.nan,
        }
    )
    logged = featurizer.log_features(pd.concat([imps, probe], ignore_index=True), logs.events).tail(5)
    served = featurizer.request_features(user, items, scene="search", hour=12)
    np.testing.assert_allclose(served, logged.to_numpy(), atol=1e-6)  # the state is kept in float32
    unknown = featurizer.request_features("someone-new", ["no-such-item"])
    assert unknown.shape == (1, len(featurizer.feature_names)) and np.isfinite(unknown).all()


def test_models_learn_clicks_and_serve_from_a_matrix(logs, table) -> None:
    from sklearn.metrics import roc_auc_score

    featurizer, features = table
    y = logs.impressions["clicked"].to_numpy()
    half = len(y) // 2
    model = LogisticCtr(categorical=featurizer.cardinalities).fit(features[:half], y[:half])
    assert roc_auc_score(y[half:], model.predict_proba(features[half:])) > 0.57  # chance: 0.5; 2,400 rows to learn
    scorer = CtrScorer(featurizer, model)
    p = scorer.score(logs.impressions["user_id"].iloc[0], logs.items["item_id"].head(20).tolist())
    assert p.shape == (20,) and ((p > 0) & (p < 1)).all()
    # Position bias learnt: the same items score lower further down the page.
    items = logs.items["item_id"].head(20).tolist()
    top = scorer.score("u", items, positions=[0] * 20)
    low = scorer.score("u", items, positions=[7] * 20)
    assert top.mean() > low.mean()
    with pytest.raises(InputError, match="both clicked and unclicked"):
        LogisticCtr().fit(features[:10], np.zeros(10))


def test_creative_scorer_is_the_ad_copy_engines_variant_scorer(logs, table) -> None:
    from shoplm.marketing.adcopy import AdItem

    featurizer, features = table
    y = logs.impressions["clicked"].to_numpy()
    model = LogisticCtr(categorical=featurizer.cardinalities).fit(features, y)
    item_id = str(logs.items["item_id"].iloc[0])
    title = str(logs.items["title"].iloc[0])
    encode = lambda texts: np.array([[1.0, 0.0] if t == title or "match" in t else [0.6, 0.8] for t in texts])  # noqa: E731
    scorer = CreativeScorer(CtrScorer(featurizer, model), encode)
    scores = scorer(AdItem(item_id, title), "search", ["a match", "unrelated words"])
    base = CtrScorer(featurizer, model).score("", [item_id], scene="search", positions=[0])[0]
    assert scores[0] == pytest.approx(base) and scores[1] < scores[0]


def test_bench_reports_every_model_against_the_oracle(logs, tmp_path: Path) -> None:
    one_each = {"logistic": (1.0,), "lightgbm": (15,), "dcn_v2": (8,)}
    results = run_ctr_benchmark(
        logs, _vectors(len(logs.items)), test_days=30, val_days=20, settings=one_each, log=lambda _m: None
    )
    json_path, png = write_outputs(results, tmp_path / "ctr.json")
    written = json.loads(json_path.read_text())
    assert set(written["models"]) == {"logistic", "lightgbm", "dcn_v2"}
    for name, metrics in written["models"].items():
        assert set(metrics) == {"AUC", "logloss", "ECE"}, name
        assert 0.5 < metrics["AUC"] <= written["oracle_auc"] + 0.05
    assert 0.7 < written["oracle_auc"] < 0.9
    assert set(written["without_text"]) == set(written["models"]) and written["cold_items"]["oracle"]["n"] > 0
    assert set(written["serving_ms_per_100"]) == set(written["models"])
    assert png.stat().st_size > 10_000


def _tiny() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"category": rng.integers(0, 4, 300).astype(float), "x": rng.normal(size=300)})
    return X, rng.random(300) < 1 / (1 + np.exp(-(X["x"].to_numpy() - 1)))


class TestLogisticContract(EstimatorContract):
    def make_estimator(self) -> Estimator:
        return LogisticCtr(categorical={"category": 4}, C=0.5)

    def fit_estimator(self, estimator: Estimator) -> Estimator:
        return estimator.fit(*_tiny())

    def probe(self, estimator: Estimator) -> np.ndarray:
        return estimator.predict_proba(_tiny()[0])


class TestGbmContract(TestLogisticContract):
    def make_estimator(self) -> Estimator:
        return GbmCtr(categorical={"category": 4}, max_rounds=20)


class TestDeepContract(TestLogisticContract):
    probe_atol = 1e-5

    def make_estimator(self) -> Estimator:
        return DeepCtr(categorical={"category": 4}, epochs=2, batch_size=128)


class TestFeaturizerContract(EstimatorContract):
    def make_estimator(self) -> Estimator:
        return CtrFeaturizer(text_dims=2, profile_dims=3)

    def _data(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        items = pd.DataFrame(
            {
                "item_id": list("abcd"),
                "category": list("XXYY"),
                "brand": list("pqpq"),
                "price": [1.0, 2.0, 3.0, 4.0],
                "language": ["en"] * 4,
            }
        )
        imps = pd.DataFrame(
            {
                "request_id": [f"r{i // 2}" for i in range(12)],
                "position": [0, 1] * 6,
                "user_id": ["u1", "u1", "u2", "u2"] * 3,
                "item_id": list("abcd") * 3,
                "ts_ms": [i // 2 for i in range(12)],
                "scene": "home",
                "clicked": [True, False] * 6,
            }
        )
        return items, imps

    def fit_estimator(self, estimator: Estimator) -> Estimator:
        items, imps = self._data()
        return estimator.fit(imps, None, items, _vectors(4, 5))

    def probe(self, estimator: Estimator) -> np.ndarray:
        return estimator.request_features("u1", ["a", "c", "zz"], scene="home")
