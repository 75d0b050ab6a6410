"""evaluate_hybrid: the whole engine under the leave-one-out protocol, beside every source."""

from __future__ import annotations

import numpy as np
import pytest

from shoplm.errors import InputError
from shoplm.recommend.catalog import CatalogView
from shoplm.recommend.evaluation import evaluate_hybrid
from tests.recommend.test_engine import ALL, catalog_frame, make_sources


def cycling_sequences(users: int = 90, seed: int = 0) -> dict[str, list[str]]:
    """Each user walks one of three 8-item cycles from a random phase: the next item follows the last."""
    rng = np.random.default_rng(seed)
    cycles = [ALL[0:8], ALL[8:16], ALL[16:24]]
    out = {}
    for u in range(users):
        cycle, phase, length = cycles[u % 3], int(rng.integers(8)), int(rng.integers(3, 8))
        out[f"u{u}"] = [cycle[(phase + step) % 8] for step in range(length)]
    return out


def test_every_source_the_fusion_and_the_ranker_under_both_protocols() -> None:
    catalog = CatalogView.from_frame(catalog_frame())
    sequences = cycling_sequences()
    report = evaluate_hybrid(sequences, catalog, make_sources, seed=0)
    models = report["models"]
    assert set(models) == {"popularity", "cooccurrence", "als", "text", "fused", "ranker"}
    assert report["history"] == "exclude_history" and "history excluded" in report["protocol"]
    assert report["data"]["test_users"] == 90 and report["data"]["items"] == len(ALL)
    # the next item always follows the last one: item co-occurrence finds it, popularity cannot
    assert models["cooccurrence"]["HR@5"] > 0.8
    assert models["popularity"]["NDCG@20"] < models["cooccurrence"]["NDCG@20"]
    assert report["best_single_source"] in {"cooccurrence", "als"}
    assert models["ranker"]["HR@20"] >= models["ranker"]["HR@5"] > 0.5
    best = models[report["best_single_source"]]["NDCG@20"]
    assert report["ranker_over_best_single"] == pytest.approx(models["ranker"]["NDCG@20"] / best, abs=1e-3)
    # history items are excluded before ranking: keeping them can only push targets down or keep them
    kept = report["keep_history"]
    for name in models:
        assert kept[name]["HR@20"] <= models[name]["HR@20"] + 1e-9


def test_sampled_users_and_nothing_to_evaluate() -> None:
    catalog = CatalogView.from_frame(catalog_frame())
    report = evaluate_hybrid(cycling_sequences(), catalog, make_sources, max_users=30, protocol="keep_history")
    assert report["data"]["test_users"] == 30 and report["history"] == "keep_history"
    with pytest.raises(InputError, match="nothing to evaluate"):
        evaluate_hybrid({"u1": ["p0"]}, catalog, make_sources)
    with pytest.raises(ValueError, match="protocol"):
        evaluate_hybrid(cycling_sequences(), catalog, make_sources, protocol="both")
