"""Evaluation splits: leave-one-out (the sequential-recommendation standard) and temporal.

Example:
    >>> split = leave_one_out({"u": ["a", "b", "c", "d"]})
    >>> split.train["u"], split.valid["u"], split.test["u"]
    (['a', 'b'], 'c', 'd')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from shoplm.interactions import Interactions


@dataclass(frozen=True)
class LeaveOneOut:
    """Per user: training prefix, validation target, test target.

    The validation history is ``train[u]``; the test history is ``train[u] + [valid[u]]``.
    Users with too few events to give a target are left out of ``valid``/``test`` but keep
    their events in ``train``.
    """

    train: dict[str, list[str]]
    valid: dict[str, str]
    test: dict[str, str]

    def valid_cases(self) -> list[tuple[str, list[str], str]]:
        """``(user, history, target)`` for validation."""
        return [(u, self.train[u], t) for u, t in self.valid.items()]

    def test_cases(self) -> list[tuple[str, list[str], str]]:
        """``(user, history, target)`` for test: history includes the validation item."""
        cases = []
        for u, t in self.test.items():
            history = self.train[u] + ([self.valid[u]] if u in self.valid else [])
            cases.append((u, history, t))
        return cases

    def train_interactions(self) -> Interactions:
        """The training prefixes as :class:`Interactions` (time = position in the sequence)."""
        users, items, ts = [], [], []
        for u, seq in self.train.items():
            users.extend([u] * len(seq))
            items.extend(seq)
            ts.extend(range(len(seq)))
        return Interactions.from_arrays(users, items, ts)


def leave_one_out(sequences: Mapping[str, Sequence[str]], *, min_train: int = 1) -> LeaveOneOut:
    """Last item -> test, second-to-last -> validation, the rest -> training.

    A user needs ``min_train + 2`` items to give both targets; with ``min_train + 1`` items
    they give a test target only (no validation), with fewer all events stay in training.
    """
    train: dict[str, list[str]] = {}
    valid: dict[str, str] = {}
    test: dict[str, str] = {}
    for user, seq in sequences.items():
        seq = list(seq)
        if len(seq) >= min_train + 2:
            train[user], valid[user], test[user] = seq[:-2], seq[-2], seq[-1]
        elif len(seq) >= min_train + 1:
            train[user], test[user] = seq[:-1], seq[-1]
        else:
            train[user] = seq
    return LeaveOneOut(train, valid, test)


@dataclass(frozen=True)
class TemporalSplit:
    """Events before ``cutoff_ms`` train; later events are the test targets, one case each."""

    train: Interactions
    test: Interactions
    cutoff_ms: int


def temporal_split(
    interactions: Interactions, *, cutoff_ms: int | None = None, test_fraction: float = 0.1
) -> TemporalSplit:
    """Split at a global time cutoff (no look-ahead across users).

    Without ``cutoff_ms`` the cutoff is the time quantile that leaves ``test_fraction`` of
    the events for test.
    """
    if len(interactions) == 0:
        raise ValueError("no interactions to split")
    if cutoff_ms is None:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError("test_fraction must be in (0, 1)")
        cutoff_ms = int(np.quantile(interactions.ts_ms, 1.0 - test_fraction, method="higher"))
    before = interactions.ts_ms < cutoff_ms

    def take(mask: np.ndarray) -> Interactions:
        return Interactions(
            interactions.user_id[mask], interactions.item_id[mask], interactions.ts_ms[mask], interactions.weight[mask]
        )

    return TemporalSplit(take(before), take(~before), int(cutoff_ms))


def cold_start_mask(targets: Iterable[str], train_items: Iterable[str]) -> np.ndarray:
    """Boolean mask over ``targets``: True where the target item never occurs in training."""
    known = set(map(str, train_items))
    return np.array([str(t) not in known for t in targets], dtype=bool)
