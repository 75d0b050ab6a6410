"""SequentialRecommender: learns next items, reads the live history, cold items, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shoplm.estimator import Estimator
from shoplm.recommend.base import Interactions
from shoplm.recommend.sequential import SequentialRecommender
from tests.estimator_contract import EstimatorContract

ITEMS = [f"i{k}" for k in range(6)]
CYCLE_A = ["i0", "i1", "i2"]  # i0 -> i1 -> i2 -> i0 ...
CYCLE_B = ["i3", "i4", "i5"]


def cyclic_data(users: int = 24, length: int = 9) -> Interactions:
    """Deterministic cyclic sequences: half the users loop over A, half over B, any phase."""
    user_ids, item_ids = [], []
    for u in range(users):
        cycle = CYCLE_A if u % 2 == 0 else CYCLE_B
        for t in range(length):
            user_ids.append(f"u{u}")
            item_ids.append(cycle[(u // 2 + t) % 3])
    return Interactions.from_arrays(user_ids, item_ids)


def text_vectors(n: int, dim: int = 8) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)


def small(**overrides: object) -> SequentialRecommender:
    params = {
        "d_model": 16,
        "n_layers": 1,
        "n_heads": 2,
        "max_len": 8,
        "dropout": 0.0,
        "lr": 5e-3,
        "epochs": 30,
        "batch_size": 8,
    }
    params.update(overrides)
    return SequentialRecommender(**params)


@pytest.fixture(scope="module")
def fitted() -> SequentialRecommender:
    torch.set_num_threads(1)
    catalog = [*ITEMS, "cold"]  # "cold" has text but no event
    return small().fit(cyclic_data(), item_text_embeddings=text_vectors(len(catalog)), item_ids=catalog)


class TestContract(EstimatorContract):
    probe_atol = 1e-5

    def make_estimator(self) -> Estimator:
        return small(epochs=3, use_attributes=True)

    def fit_estimator(self, estimator: Estimator) -> Estimator:
        catalog = [*ITEMS, "cold"]
        attributes = {"i0": ["brand1", "cat1"], "i3": ["brand2"], "cold": ["brand1"]}
        return estimator.fit(
            cyclic_data(8, 5),
            item_text_embeddings=text_vectors(len(catalog)),
            item_ids=catalog,
            item_attributes=attributes,
        )

    def probe(self, estimator: Estimator) -> np.ndarray:
        assert isinstance(estimator, SequentialRecommender)
        return np.stack([estimator.score(["i0", "i1"]), estimator.score(["i5", "cold"]), estimator.score([])])


def test_learns_the_next_item(fitted: SequentialRecommender) -> None:
    for cycle in (CYCLE_A, CYCLE_B):
        for phase in range(3):
            history = [cycle[(phase + t) % 3] for t in range(4)]
            expected = cycle[(phase + 4) % 3]
            assert fitted.recommend(history, k=1)[0][0] == expected, history


def test_live_history_changes_the_output(fitted: SequentialRecommender) -> None:
    before = fitted.score(["i0"])
    after = fitted.score(["i0", "i1"])  # an event the model never trained on as a history end
    assert not np.allclose(before, after)
    assert fitted.recommend(["i0"], k=1)[0][0] == "i1"
    assert fitted.recommend(["i0", "i1"], k=1)[0][0] == "i2"


def test_cold_item_with_text_gets_a_finite_score(fitted: SequentialRecommender) -> None:
    scores = fitted.score(["i0", "i1"])
    cold = fitted.item_index()["cold"]
    assert np.isfinite(scores[cold])
    # A history that holds only the cold item is still read (through its text vector).
    assert np.isfinite(fitted.score(["cold"])).all()
    assert fitted.seen_[cold + 1] == 0.0  # its ID vector is masked


def test_empty_and_unknown_history_fall_back_to_popularity(fitted: SequentialRecommender) -> None:
    np.testing.assert_array_equal(fitted.score([]), fitted.score(["never-seen"]))
    assert fitted.score([]).shape == (len(fitted.item_ids_),)


def test_score_batch_matches_score(fitted: SequentialRecommender) -> None:
    histories = [["i0"], ["i3", "i4", "i5", "i3"], []]
    batch = fitted.score_batch(histories)
    for row, history in zip(batch, histories, strict=True):
        np.testing.assert_allclose(row, fitted.score(history), atol=1e-5)


def test_serving_graph_and_numpy_and_torch_agree(fitted: SequentialRecommender, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert_implementations_agree(fitted, tmp_path)


def test_post_norm_recency_positions_whitened_text_cosine_schedule(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # the ablation variants learn the cycle too, and the three implementations still agree on them
    torch.set_num_threads(1)
    catalog = [*ITEMS, "cold"]
    model = small(norm="post", positions="from_end", whiten_text=True, lr_schedule="cosine").fit(
        cyclic_data(), item_text_embeddings=text_vectors(len(catalog)), item_ids=catalog
    )
    assert model.recommend(["i3", "i4"], k=1)[0][0] == "i5"
    np.testing.assert_allclose(model.text_[1 : len(catalog) + 1].mean(0), 0.0, atol=1e-5)
    assert_implementations_agree(model, tmp_path)
    with pytest.raises(ValueError, match="positions"):
        small(positions="middle").fit(cyclic_data())
    with pytest.raises(ValueError, match="lr_schedule"):
        small(lr_schedule="step", epochs=1).fit(cyclic_data())


def test_whitening_decorrelates_and_keeps_items_without_text_at_zero() -> None:
    from shoplm.recommend.sequential import _whitened

    vectors = text_vectors(60) @ np.random.default_rng(1).normal(size=(8, 8)).astype(np.float32)  # correlated
    vectors[5] = 0.0  # an item without text
    white = _whitened(vectors)
    assert not white[5].any()
    rest = np.delete(white, 5, axis=0)
    np.testing.assert_allclose(np.cov(rest, rowvar=False) * 8, np.eye(8), atol=1e-3)


def assert_implementations_agree(fitted: SequentialRecommender, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Three implementations of one network: torch (training), numpy (batches), ONNX Runtime (serving).
    from shoplm.recommend.sequential_net import _forward_histories, net_from_weights

    loaded = Estimator.load(fitted.save(tmp_path / "model"))
    assert loaded.onnx_ and getattr(loaded, "_session", None) is None
    loaded.prepare_serving()
    histories = [["i0"], ["i3", "i4", "i5", "i3"], ["i1", "cold", "i2"], ["i0", "i1", "i2"] * 5]
    net = net_from_weights(fitted)
    index = fitted.item_index()
    rows = [[index[i] + 1 for i in h] for h in histories]
    with torch.no_grad():
        table = torch.from_numpy(fitted.table_)
        torch_scores = _forward_histories(fitted, net, rows, table, torch.from_numpy(fitted.seen_))[:, 1:].numpy()
    numpy_scores = fitted.score_batch(histories)
    serving_scores = np.stack([loaded.score(h) for h in histories])
    np.testing.assert_allclose(numpy_scores, torch_scores, atol=2e-5)
    np.testing.assert_allclose(serving_scores, torch_scores, atol=2e-5)


def test_same_seed_same_model() -> None:
    torch.set_num_threads(1)
    a = small(epochs=2).fit(cyclic_data(8, 5)).score(["i0"])
    b = small(epochs=2).fit(cyclic_data(8, 5)).score(["i0"])
    np.testing.assert_array_equal(a, b)


def test_early_stopping_on_validation() -> None:
    torch.set_num_threads(1)
    model = small(epochs=30, patience=2).fit(cyclic_data(), valid=[(["i0", "i1"], "i2"), (["i3"], "i4")])
    assert model.history_[-1]["epoch"] <= 30
    assert "NDCG@20" in model.history_[0]
    assert model.best_epoch_ >= 1


def test_sampled_softmax_and_contrastive_train() -> None:
    torch.set_num_threads(1)
    model = small(epochs=25, n_negatives=4, cl_weight=0.1, label_smoothing=0.05).fit(cyclic_data())
    assert np.isfinite(model.score(["i0", "i1"])).all()
    assert model.recommend(["i0", "i1"], k=1)[0][0] == "i2"


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="multiple"):
        small(d_model=15).fit(cyclic_data())
    with pytest.raises(Exception, match="item_ids"):
        small().fit(cyclic_data(), item_text_embeddings=text_vectors(6))
