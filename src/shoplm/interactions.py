"""User-item interactions: the one training input every recommender and evaluation protocol reads.

It sits on the ground floor (beside the estimator contract) because both ``evaluate`` (split
protocols) and the domain packages (recommenders) read it, and neither may import the other.

Example:
    >>> data = Interactions.from_arrays(["u1", "u1", "u2"], ["a", "b", "a"], [1, 2, 3])
    >>> data.sequences()["u1"]
    ['a', 'b']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shoplm.errors import InputError

#: how much one event of each type says about interest (used by sources that weight events)
EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.0,
    "search": 0.0,
    "add_to_cart": 3.0,
    "rate": 3.0,
    "purchase": 5.0,
}


def scaled_to_max(values: np.ndarray) -> np.ndarray:
    """``values`` divided by their maximum (float64; all zeros when empty or nothing positive).

    Example:
        >>> scaled_to_max(np.array([2.0, 4.0])).tolist()
        [0.5, 1.0]
    """
    values = np.asarray(values, dtype=np.float64)
    top = values.max() if len(values) else 0.0
    return values / top if top > 0 else np.zeros(len(values))


@dataclass(frozen=True)
class Interactions:
    """User-item events as parallel arrays, sorted by (user, time). Built once, read by every source."""

    user_id: np.ndarray  # str
    item_id: np.ndarray  # str
    ts_ms: np.ndarray  # int64
    weight: np.ndarray  # float32

    @classmethod
    def from_arrays(
        cls,
        user_id: Sequence[Any],
        item_id: Sequence[Any],
        ts_ms: Sequence[int] | None = None,
        weight: Sequence[float] | None = None,
    ) -> Interactions:
        users = np.asarray(user_id).astype(str)
        items = np.asarray(item_id).astype(str)
        if len(users) != len(items):
            raise InputError(f"user_id has {len(users)} values but item_id has {len(items)}")
        ts = np.arange(len(users), dtype=np.int64) if ts_ms is None else np.asarray(ts_ms, dtype=np.int64)
        w = np.ones(len(users), dtype=np.float32) if weight is None else np.asarray(weight, dtype=np.float32)
        order = np.lexsort((ts, users))
        return cls(users[order], items[order], ts[order], w[order])

    @classmethod
    def from_frame(cls, events: pd.DataFrame, *, weights: dict[str, float] | None = None) -> Interactions:
        """From a store events frame (``user_id, item_id, ts_ms`` and optionally ``event_type``).

        Events without an item (searches) and event types of weight 0 are left out.
        """
        missing = {"user_id", "item_id", "ts_ms"} - set(events.columns)
        if missing:
            raise InputError(f"events frame lacks column(s) {sorted(missing)}")
        frame = events[events["item_id"].notna() & (events["item_id"] != "")]
        if "event_type" in frame.columns:
            table = EVENT_WEIGHTS if weights is None else weights
            w = frame["event_type"].map(table).fillna(0.0).to_numpy(np.float32)
            keep = w > 0
            frame, w = frame[keep], w[keep]
        else:
            w = None
        return cls.from_arrays(frame["user_id"].to_numpy(), frame["item_id"].to_numpy(), frame["ts_ms"].to_numpy(), w)

    def __len__(self) -> int:
        return len(self.user_id)

    def sequences(self) -> dict[str, list[str]]:
        """Each user's items in time order."""
        if len(self) == 0:
            return {}
        bounds = np.flatnonzero(self.user_id[1:] != self.user_id[:-1]) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(self)]])
        return {str(self.user_id[s]): self.item_id[s:e].tolist() for s, e in zip(starts, ends, strict=True)}

    def hold_out_last(self, users: set[str] | None = None) -> tuple[Interactions, dict[str, str]]:
        """These interactions without each user's newest event, and the held-out items.

        ``users`` limits the hold-out to those users (default: every user).
        """
        keep = np.ones(len(self), dtype=bool)
        held_out: dict[str, str] = {}
        ends = np.flatnonzero(np.r_[self.user_id[1:] != self.user_id[:-1], True]) if len(self) else []
        for end in ends:
            user = str(self.user_id[end])
            if users is None or user in users:
                keep[end] = False
                held_out[user] = str(self.item_id[end])
        kept = Interactions(self.user_id[keep], self.item_id[keep], self.ts_ms[keep], self.weight[keep])
        return kept, held_out

    def items(self) -> np.ndarray:
        """The distinct item ids, sorted."""
        return np.unique(self.item_id)
