"""Creative bandits: which ad variant of an item to show, learned from clicks while showing them.

:class:`ThompsonBandit` keeps a Beta(α, β) posterior of the click-through rate of every arm
(ad variant) of every key (an item; or ``item|scene`` for per-scene arms, the optional
context), starting from the prior Beta(``prior_alpha``, ``prior_beta``). To choose, it draws
one CTR from each arm's posterior and shows the arm with the highest draw (Thompson sampling):
arms are shown as often as they are likely to be the best, so exploration fades by itself as
the posteriors narrow. It is an :class:`~shoplm.estimator.Estimator`: its learned counts are
saved as arrays (keys and arms as strings, clicks and misses as floats) beside ``meta.json``.

:func:`replay` evaluates a policy offline on a log whose shown arm was drawn uniformly at random
(the demo's impression log): an event is kept only when the policy chooses the logged arm, and
the policy then learns its click (Li, Chu, Langford & Wang, WSDM 2011). Because the logged arm
is uniform and independent of everything else, the kept events are distributed as if the policy
had been live, so the replayed reward is unbiased. With the true click probability of every arm
(which the demo's ground truth gives), the regret of each kept event against the best arm is
known exactly.

Example:
    >>> bandit = ThompsonBandit(seed=0).fit(["I1"] * 4, ["a", "a", "b", "b"], [1, 1, 0, 0])
    >>> [round(p.mean, 2) for p in bandit.posterior("I1")]
    [0.75, 0.25]
    >>> bandit.choose("I1", ["a", "b"]) in {"a", "b"}
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, Self

import numpy as np

from shoplm.errors import InputError
from shoplm.estimator import Estimator

__all__ = [
    "ArmPosterior",
    "EpsilonGreedyPolicy",
    "OraclePolicy",
    "Policy",
    "ReplayResult",
    "ThompsonBandit",
    "UniformPolicy",
    "replay",
]


@dataclass(frozen=True)
class ArmPosterior:
    """One arm's data and Beta posterior: mean CTR, the central ``level`` interval, P(best arm)."""

    arm: str
    impressions: int
    clicks: int
    alpha: float
    beta: float
    mean: float
    low: float
    high: float
    p_best: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ThompsonBandit(Estimator):
    """Beta-Bernoulli Thompson sampling over the arms of each key (see the module docstring).

    Args:
        prior_alpha: prior clicks + 1 of an arm never shown (1: a uniform prior).
        prior_beta: prior non-clicks + 1.
        seed: seed of the draws (``choose``) and of the Monte Carlo ``p_best``.
    """

    def __init__(self, prior_alpha: float = 1.0, prior_beta: float = 1.0, seed: int = 0) -> None:
        self.prior_alpha = prior_alpha
        self.prior_beta = prior_beta
        self.seed = seed

    def fit(self, keys: Sequence[str], arms: Sequence[str], rewards: Sequence[float]) -> Self:
        """Learn from logged (key, arm, reward) triples; rewards are 0/1 clicks (or fractions).

        Raises:
            InputError: sequences of different lengths, a reward outside [0, 1], a prior not above 0.
        """
        if self.prior_alpha <= 0 or self.prior_beta <= 0:
            raise InputError("prior_alpha and prior_beta must be above 0")
        if not len(keys) == len(arms) == len(rewards):
            raise InputError(f"keys, arms and rewards differ in length: {len(keys)}, {len(arms)}, {len(rewards)}")
        values = np.asarray(rewards, dtype=float)
        if values.size and (not np.isfinite(values).all() or values.min() < 0 or values.max() > 1):
            raise InputError("rewards must be between 0 and 1 (a click is 1)")
        self.counts_: dict[str, dict[str, list[float]]] = {}
        self._rng = np.random.default_rng(self.seed)
        for key, arm, reward in zip(keys, arms, values.tolist(), strict=True):
            self.update(str(key), str(arm), reward)
        return self

    def update(self, key: str, arm: str, reward: float) -> None:
        """Add one shown ``arm`` of ``key`` and its reward (a click: 1)."""
        if not hasattr(self, "counts_"):
            self.fit([], [], [])
        cell = self.counts_.setdefault(key, {}).setdefault(arm, [0.0, 0.0])
        cell[0] += reward
        cell[1] += 1.0 - reward

    def choose(self, key: str, arms: Sequence[str] | None = None) -> str:
        """The arm to show: the highest of one draw from each arm's posterior.

        Args:
            key: the item (or item|scene).
            arms: the arms available; default the arms seen for ``key``.

        Raises:
            InputError: no arms given and none seen for ``key``.
        """
        self.check_fitted()
        names = list(arms) if arms is not None else list(self.counts_.get(key, {}))
        if not names:
            raise InputError(f"no arms for {key!r}: name them, or fit on its impressions first")
        seen = self.counts_.get(key, {})
        successes = np.array([seen.get(a, (0.0, 0.0))[0] for a in names])
        failures = np.array([seen.get(a, (0.0, 0.0))[1] for a in names])
        draws = self._rng.beta(self.prior_alpha + successes, self.prior_beta + failures)
        return names[int(np.argmax(draws))]

    def posterior(self, key: str, arms: Sequence[str] | None = None, *, level: float = 0.9) -> list[ArmPosterior]:
        """Every arm's posterior for ``key``, in the order of ``arms`` (default: sorted seen arms).

        Example:
            >>> post = ThompsonBandit().fit(["I1"], ["a"], [1]).posterior("I1", ["a", "b"])
            >>> [(p.arm, p.impressions, round(p.mean, 3)) for p in post]
            [('a', 1, 0.667), ('b', 0, 0.5)]
        """
        from scipy.stats import beta as beta_dist

        self.check_fitted()
        seen = self.counts_.get(key, {})
        names = list(arms) if arms is not None else sorted(seen)
        if not names:
            return []
        a = np.array([self.prior_alpha + seen.get(n, (0.0, 0.0))[0] for n in names])
        b = np.array([self.prior_beta + seen.get(n, (0.0, 0.0))[1] for n in names])
        low, high = beta_dist.ppf((1 - level) / 2, a, b), beta_dist.ppf((1 + level) / 2, a, b)
        rng = np.random.default_rng(self.seed)  # p_best is the same each time it is asked
        wins = np.bincount(np.argmax(rng.beta(a, b, size=(4000, len(names))), axis=1), minlength=len(names))
        out = []
        for i, name in enumerate(names):
            clicks, misses = seen.get(name, (0.0, 0.0))
            out.append(
                ArmPosterior(
                    name,
                    round(clicks + misses),
                    round(clicks),
                    float(a[i]),
                    float(b[i]),
                    float(a[i] / (a[i] + b[i])),
                    float(low[i]),
                    float(high[i]),
                    float(wins[i] / 4000),
                )
            )
        return out

    def keys(self) -> list[str]:
        """The keys with data, sorted."""
        self.check_fitted()
        return sorted(self.counts_)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        cells = [(key, arm, counts) for key, arms in self.counts_.items() for arm, counts in arms.items()]
        arrays = {
            "keys": np.array([c[0] for c in cells], dtype=np.str_),
            "arms": np.array([c[1] for c in cells], dtype=np.str_),
            "counts": np.array([c[2] for c in cells], dtype=np.float64).reshape(-1, 2),  # clicks, misses
        }
        return arrays, {"cells": len(cells)}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.counts_ = {}
        if state.get("cells"):
            for key, arm, counts in zip(arrays["keys"], arrays["arms"], arrays["counts"], strict=True):
                self.counts_.setdefault(str(key), {})[str(arm)] = [float(counts[0]), float(counts[1])]
        self._rng = np.random.default_rng(self.seed)


# --------------------------------------------------------------------------------------------
# Policies and the replay evaluation
# --------------------------------------------------------------------------------------------


class Policy(Protocol):
    """What :func:`replay` needs of a policy: choose an arm index of a key, learn a reward."""

    name: str

    def choose(self, key: str, n_arms: int) -> int: ...

    def update(self, key: str, arm: int, reward: float) -> None: ...


class ThompsonPolicy:
    """:class:`ThompsonBandit` as a replay policy over arms ``0..n-1``."""

    def __init__(self, seed: int = 0, prior_alpha: float = 1.0, prior_beta: float = 1.0) -> None:
        self.name = "thompson"
        self.bandit = ThompsonBandit(prior_alpha, prior_beta, seed).fit([], [], [])

    def choose(self, key: str, n_arms: int) -> int:
        return int(self.bandit.choose(key, [str(i) for i in range(n_arms)]))

    def update(self, key: str, arm: int, reward: float) -> None:
        self.bandit.update(key, str(arm), reward)


class UniformPolicy:
    """Every arm equally often: the logging policy, the baseline."""

    def __init__(self, seed: int = 0) -> None:
        self.name = "uniform"
        self._rng = np.random.default_rng(seed)

    def choose(self, key: str, n_arms: int) -> int:
        return int(self._rng.integers(n_arms))

    def update(self, key: str, arm: int, reward: float) -> None:
        pass


class EpsilonGreedyPolicy:
    """The arm of highest observed CTR (unseen arms first), a random arm with probability ``epsilon``."""

    def __init__(self, epsilon: float = 0.1, seed: int = 0) -> None:
        self.name = f"epsilon_greedy({epsilon:g})"
        self.epsilon = epsilon
        self._rng = np.random.default_rng(seed)
        self._counts: dict[str, np.ndarray] = {}

    def choose(self, key: str, n_arms: int) -> int:
        counts = self._counts.setdefault(key, np.zeros((n_arms, 2)))
        if self._rng.random() < self.epsilon:
            return int(self._rng.integers(n_arms))
        means = np.where(counts[:, 1] > 0, counts[:, 0] / np.maximum(counts[:, 1], 1), np.inf)
        best = np.flatnonzero(means == means.max())
        return int(self._rng.choice(best))

    def update(self, key: str, arm: int, reward: float) -> None:
        self._counts[key][arm] += (reward, 1.0)


class OraclePolicy:
    """Always the truly best arm of each key (known only in a simulation): zero regret."""

    def __init__(self, best: dict[str, int]) -> None:
        self.name = "oracle"
        self.best = best

    def choose(self, key: str, n_arms: int) -> int:
        return self.best[key]

    def update(self, key: str, arm: int, reward: float) -> None:
        pass


@dataclass
class ReplayResult:
    """A policy's replay: kept events, clicks, and cumulative regret sampled along the kept events."""

    policy: str
    events: int
    kept: int
    clicks: int
    ctr: float
    regret: float
    curve_steps: list[int]
    curve_regret: list[float]
    curve_reward: list[float]

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("curve_")}


def replay(
    policy: Policy,
    keys: Sequence[str],
    logged_arms: np.ndarray,
    rewards: np.ndarray,
    arm_probabilities: np.ndarray,
    *,
    curve_points: int = 200,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Replay ``policy`` over a log in time order (Li et al., 2011; see the module docstring).

    Args:
        policy: the policy evaluated; it learns from the kept events only.
        keys: each event's key (item).
        logged_arms: the arm each event showed, drawn uniformly at random by the logger.
        rewards: each event's click (0/1).
        arm_probabilities: ``(events, arms)`` true click probabilities of every arm in each
            event; the regret of a kept event is its best arm's minus the shown arm's.
        curve_points: how many points of the cumulative curves are kept.
        progress: called with (events done, events) now and then.

    Returns:
        The replay's totals and cumulative curves (regret: expected clicks lost to the best arm).
    """
    n, n_arms = arm_probabilities.shape
    if not len(keys) == len(logged_arms) == len(rewards) == n:
        raise InputError("keys, logged arms, rewards and arm probabilities differ in length")
    best = arm_probabilities.max(axis=1)
    lost: list[float] = []  # per kept event: expected clicks lost to the best arm
    got: list[float] = []  # per kept event: the logged click
    for i, (key, arm) in enumerate(zip(keys, logged_arms.tolist(), strict=True)):
        if progress is not None and i % 20_000 == 0:
            progress(i, n)
        if policy.choose(key, n_arms) != arm:
            continue
        reward = float(rewards[i])
        lost.append(float(best[i] - arm_probabilities[i, arm]))
        got.append(reward)
        policy.update(key, arm, reward)
    regret, clicks = np.cumsum(lost), np.cumsum(got)
    points = (
        np.unique(np.linspace(1, len(lost), min(curve_points, len(lost))).astype(int)) if lost else np.array([], int)
    )
    return ReplayResult(
        policy.name,
        n,
        len(lost),
        int(clicks[-1]) if lost else 0,
        float(clicks[-1] / len(lost)) if lost else 0.0,
        float(regret[-1]) if lost else 0.0,
        points.tolist(),
        [round(float(regret[k - 1]), 4) for k in points],
        [float(clicks[k - 1]) for k in points],
    )


def best_arms(effects: dict[str, Iterable[float]]) -> dict[str, int]:
    """The best arm of each key from its true per-arm effects (the oracle's choice).

    Example:
        >>> best_arms({"I1": [0.1, -0.2, 0.3]})
        {'I1': 2}
    """
    return {key: int(np.argmax(list(values))) for key, values in effects.items()}
