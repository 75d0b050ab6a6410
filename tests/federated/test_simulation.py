"""One tiny end-to-end Flower simulation (Ray, 3 shops, 2 rounds) through the benchmark's intent task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoplm.app.federated.bench import run_intent_task


@pytest.mark.slow  # Ray starts (about 10 s on an idle machine)
def test_federated_intent_head_runs_on_flower_and_beats_each_shop_alone(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    k, n = 6, 360
    centers = rng.normal(size=(k, 16)) * 1.5
    y = rng.integers(0, k, n)
    x = centers[y] + rng.normal(size=(n, 16))
    texts = [str(i) for i in range(n)]
    # intents i0/i1 in category c0, i2/i3 in c1...: the Dirichlet split by category skews the shops
    report = run_intent_task(
        texts,
        [f"i{v}" for v in y],
        [f"c{v // 2}" for v in y],
        shops=3,
        alpha=0.1,
        rounds=2,
        strategies=("fedavg",),
        embed=lambda batch: x[[int(t) for t in batch]],
        workdir=tmp_path,
        progress=False,
    )
    arms = report["arms"]
    assert set(arms) == {"centralized", "local_only", "fedavg"}
    # each shop wrote its own shard; only parameters went over the wire: 2 rounds x 3 shops, both ways
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [f"intent_shop{s}.npz" for s in range(3)]
    head_bytes = (16 * k + k) * 4
    assert arms["fedavg"]["rounds"] == 2
    assert 6 * head_bytes <= arms["fedavg"]["bytes_down"] < 6 * head_bytes + 6 * 400
    assert arms["fedavg"]["bytes_up"] == arms["fedavg"]["bytes_down"]
    # non-IID shops: a shop's own head fails on the intents it never saw; the federated head does not
    assert arms["fedavg"]["all_test"] > arms["local_only"]["all_test"] + 0.05
    assert arms["fedavg"]["all_test"] > 0.6
    assert len(arms["fedavg"]["valid_by_round"]) == 2
