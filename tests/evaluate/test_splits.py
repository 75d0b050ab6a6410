"""Leave-one-out, temporal split and the cold-start slice."""

from __future__ import annotations

import numpy as np

from shoplm.evaluate import cold_start_mask, leave_one_out, temporal_split
from shoplm.interactions import Interactions


def test_leave_one_out_takes_last_two() -> None:
    split = leave_one_out({"u": ["a", "b", "c", "d"], "v": ["x", "y"], "w": ["z"]})
    assert split.train == {"u": ["a", "b"], "v": ["x"], "w": ["z"]}
    assert split.valid == {"u": "c"}
    assert split.test == {"u": "d", "v": "y"}
    assert split.valid_cases() == [("u", ["a", "b"], "c")]
    assert split.test_cases() == [("u", ["a", "b", "c"], "d"), ("v", ["x"], "y")]


def test_leave_one_out_train_interactions_keep_order() -> None:
    split = leave_one_out({"u": ["a", "b", "c", "d", "e"]})
    assert split.train_interactions().sequences() == {"u": ["a", "b", "c"]}


def test_temporal_split_at_cutoff() -> None:
    data = Interactions.from_arrays(["u", "u", "v", "v"], ["a", "b", "c", "d"], [1, 5, 2, 9])
    split = temporal_split(data, cutoff_ms=5)
    assert sorted(split.train.item_id.tolist()) == ["a", "c"]
    assert sorted(split.test.item_id.tolist()) == ["b", "d"]
    assert split.cutoff_ms == 5


def test_temporal_split_by_fraction() -> None:
    data = Interactions.from_arrays(["u"] * 10, list("abcdefghij"), list(range(10)))
    split = temporal_split(data, test_fraction=0.2)
    assert split.test.item_id.tolist() == ["i", "j"]
    assert len(split.train) == 8


def test_cold_start_mask() -> None:
    mask = cold_start_mask(["a", "x", "b", "y"], ["a", "b", "c"])
    assert mask.tolist() == [False, True, False, True]
    assert mask.dtype == np.bool_
