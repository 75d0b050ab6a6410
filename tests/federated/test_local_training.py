"""The shops' local steps and the server's aggregation, without Ray."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from flwr.app import ArrayRecord, MetricRecord, RecordDict
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

from shoplm.app.federated.intent import IntentShard, fit_central_head, head_predict, local_head_step
from shoplm.app.federated.seqrec import SeqrecShard, initial_arrays, seqrec_ranks, seqrec_template, training_windows
from shoplm.errors import InputError
from shoplm.evaluate.metrics import ndcg
from shoplm.federated import run_federated
from shoplm.federated.simulation import _CountingGrid


def _blobs(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).normal(size=(k, 8)) * 2
    y = rng.integers(0, k, n)
    return centers[y] + rng.normal(size=(n, 8)), y


def test_local_head_step_learns_and_proximal_term_holds_it_near_the_global_head() -> None:
    x, y = _blobs(200, 4, 0)
    start = [np.zeros((8, 4)), np.zeros(4)]
    free = local_head_step(x, y, start, l2=1e-4, mu=0.0, max_iter=50)
    held = local_head_step(x, y, start, l2=1e-4, mu=10.0, max_iter=50)
    assert (head_predict(free, x) == y).mean() > 0.9
    assert np.linalg.norm(held[0]) < 0.5 * np.linalg.norm(free[0])


def test_local_step_from_the_centralized_optimum_stays_there() -> None:
    x, y = _blobs(200, 4, 1)
    central = fit_central_head(x, y, n_classes=4, l2=1e-2)
    again = IntentShard(x, y).train(central, {"l2": 1e-2, "local-iters": 30})[0]
    assert np.allclose(again[0], central[0], atol=1e-3)


def test_fedavg_aggregation_is_the_example_weighted_mean_of_the_shops_heads() -> None:
    shops = [_blobs(n, 3, seed) for n, seed in ((30, 2), (90, 3))]
    start = [np.zeros((8, 3), np.float32), np.zeros(3, np.float32)]
    replies = []
    for x, y in shops:
        arrays, n = IntentShard(x, y).train(start, {"l2": 1e-3, "local-iters": 10})
        replies.append(RecordDict({"arrays": ArrayRecord(arrays), "metrics": MetricRecord({"num-examples": n})}))
    merged = aggregate_arrayrecords(replies, "num-examples").to_numpy_ndarrays()
    first, second = (r["arrays"].to_numpy_ndarrays() for r in replies)
    assert np.allclose(merged[0], 0.25 * first[0] + 0.75 * second[0], atol=1e-6)


def test_counting_grid_counts_the_parameter_bytes_both_ways() -> None:
    def message(*arrays: np.ndarray) -> SimpleNamespace:
        record = ArrayRecord(list(arrays))
        return SimpleNamespace(has_content=lambda: True, content=SimpleNamespace(array_records={"arrays": record}))

    class Grid:
        def send_and_receive(self, messages, *, timeout=None):
            return [message(np.zeros(10, np.float32)) for _ in messages]

    grid = _CountingGrid(Grid())
    grid.send_and_receive([message(np.zeros((4, 5), np.float32)), message(np.zeros(20, np.float32))])
    assert (grid.down, grid.up) >= (160, 80)  # payload bytes, plus each array's small header
    assert grid.down < 160 + 2 * 200 and grid.up < 80 + 2 * 200


def test_seqrec_shard_learns_a_repeated_pattern() -> None:
    model = seqrec_template(6, d_model=16, n_layers=1, n_heads=1, max_len=8, dropout=0.0, lr=1e-2, batch_size=8)
    sequences = [[1, 2, 3, 4, 5, 6]] * 16
    shard = SeqrecShard(*training_windows(sequences, 8), model)
    start = initial_arrays(model, seed=0)
    cases = [([1, 2, 3], 4), ([2, 3, 4, 5], 6)]
    before = ndcg(seqrec_ranks(model, start, cases).keep_history, 1)
    arrays, n = shard.train(start, {"local-epochs": 20})
    assert n == 16 * 5
    assert before < 1.0
    assert ndcg(seqrec_ranks(model, arrays, cases).keep_history, 1) == 1.0
    # FedProx with a strong pull barely moves away from the global parameters
    held, _ = shard.train(start, {"local-epochs": 2, "proximal-mu": 1e4})
    moved, _ = shard.train(start, {"local-epochs": 2})
    delta = lambda a: sum(float(np.abs(p - q).sum()) for p, q in zip(a, start, strict=True))  # noqa: E731
    assert delta(held) < 0.5 * delta(moved)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "fedsgd"}, "unknown strategy"),
        ({"rounds": 0}, "rounds"),
        ({"dp_noise": float("nan")}, "noise"),
        ({"dp_noise": 1.0, "dp_clip": None}, "clipping norm"),
        ({"proximal_mu": -1.0}, "mu"),
    ],
)
def test_run_federated_refuses_bad_settings_before_starting_ray(kwargs: dict, message: str) -> None:
    settings = {"rounds": 2, **kwargs}
    with pytest.raises(InputError, match=message):
        run_federated(["a.npz", "b.npz"], IntentShard, [np.zeros(1)], **settings)


def test_dp_epsilon_grows_with_rounds_and_shrinks_with_noise() -> None:
    from shoplm.federated import dp_epsilon

    assert dp_epsilon(2.0, 10) < dp_epsilon(1.0, 10) < dp_epsilon(1.0, 40)
    assert dp_epsilon(0.0, 10) == float("inf")
    # one round at z = 1: rho = 0.5, epsilon = 0.5 + 2 sqrt(0.5 ln 1e5)
    assert abs(dp_epsilon(1.0, 1) - (0.5 + 2 * (0.5 * 11.512925) ** 0.5)) < 1e-4


def test_seqrec_shard_file_holds_only_the_shops_windows_and_loads_back(tmp_path) -> None:
    from shoplm.app.federated.seqrec import load_seqrec_trainer

    text = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    model = seqrec_template(6, text, d_model=8, n_layers=1, n_heads=1, max_len=4, batch_size=4)
    catalog = tmp_path / "catalog.npz"
    np.savez(catalog, text=text, n_items=6)
    shard = SeqrecShard(*training_windows([[1, 2, 3], [4, 5, 6, 1, 2, 3]], 4), model)
    path = shard.save(tmp_path / "shop0.npz", catalog)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["catalog", "inputs", "lengths", "shape", "targets"]
    loaded = load_seqrec_trainer(str(path))
    assert [w.tolist() for w in loaded.inputs] == [w.tolist() for w in shard.inputs]
    assert loaded.model.d_model == 8 and np.array_equal(loaded.model.text_[1:], text)
    start = initial_arrays(loaded.model, seed=0)
    arrays, n = loaded.train(start, {"local-epochs": 1})
    assert n == sum(len(t) for t in shard.targets)
    assert [a.shape for a in arrays] == [a.shape for a in start]
