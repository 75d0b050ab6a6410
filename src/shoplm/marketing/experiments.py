"""A/B tests of recommendation strategies: assignment, per-arm statistics and an always-valid test.

Pure logic: no store, no server. The application floor (:mod:`shoplm.app.experiments`) reads
the exposure and outcome events and hands them here as DataFrames.

**Unit.** The user is the randomization unit: a user is assigned to one arm of an experiment
for good (:func:`assign`, a SHA-256 hash of experiment id and user id, so every server process
agrees without shared state). Every metric is therefore per user, never per request: events of
one user are correlated, and counting requests would make the confidence intervals too narrow.

- ``exposed``: users shown the experiment's recommendations at least once;
- ``ctr`` (click-through): the share of exposed users who clicked at least once after their first
  exposure, before the experiment stopped;
- ``conversion``: the share of exposed users who purchased after their first exposure, likewise.

Outcome events are not attributed to the recommended list (a click event does not say which
widget it came from): the arms differ only by what they were shown, so any difference between
them is the strategy's effect, diluted by the clicks it did not cause.

**Intervals.** Wilson score intervals for each proportion
(``statsmodels.stats.proportion.proportion_confint``), the Wald (normal) interval for the
difference of a treatment from control (``confint_proportions_2indep``).

**Sequential test.** The mixture sequential probability ratio test (mSPRT) of Johari, Pekelis
and Walsh, "Always valid inference: bringing sequential analysis to A/B testing" (2017): with
the difference estimate ``d`` of variance ``v`` after a look and a normal mixing distribution
``N(0, tau2)`` over the true difference under the alternative, the likelihood ratio is

    Lambda = sqrt(v / (v + tau2)) * exp(tau2 * d**2 / (2 * v * (v + tau2)))

(their eq. for two-sample normal data with ``v = 2 sigma^2 / n``). The always-valid p-value
is ``p_n = min(1, min over looks <= n of 1 / Lambda)``: ``P(p_n <= alpha at any n) <= alpha`` under
no difference (Ville's inequality), so the report may be read after every new user. ``v`` is
the pooled Bernoulli variance ``p(1-p)(1/n_t + 1/n_c)``.  :data:`DEFAULT_TAU2` was chosen on a
validation simulation (``shoplm bench experiments``, benchmarks/experiments/README.md).

Example:
    >>> arms = validate_arms([Arm("control", "default", 50), Arm("treatment", "popular", 50)], {"default", "popular"})
    >>> assign("e1", "user-42", arms).name in ("control", "treatment")
    True
    >>> exposure_scene("1a2b3c4d", "control")
    'exp:1a2b3c4d:control'
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from shoplm.errors import InputError

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_TAU2",
    "METRICS",
    "MIN_EXPOSED_PER_ARM",
    "Arm",
    "arm_report",
    "assign",
    "assignment_point",
    "daily_series",
    "exposure_scene",
    "msprt_lambda",
    "msprt_p_values",
    "parse_exposure_scene",
    "user_outcomes",
    "validate_arms",
]

#: The metrics a report gives per arm; an experiment names one as the primary one for its verdict.
METRICS = ("ctr", "conversion")
#: An arm needs this many exposed users before its difference and sequential test are reported
#: (below it the normal approximation behind both is poor): "not enough data".
MIN_EXPOSED_PER_ARM = 20
#: Mixing variance of the mSPRT's normal prior over the difference in proportions: (0.02)^2,
#: effects of a couple of percentage points (chosen on a validation simulation, see the module docstring).
DEFAULT_TAU2 = 0.02**2
DEFAULT_ALPHA = 0.05
#: Outcome event types that count as a click (the user engaged with an item).
CLICK_EVENTS = ("click", "add_to_cart")
#: Outcome event types that count as a conversion.
PURCHASE_EVENTS = ("purchase",)
#: Exposure events carry ``exp:<experiment id>:<arm>`` in the events table's ``scene`` (32 characters).
SCENE_PREFIX = "exp:"
SCENE_LENGTH = 32
_ARM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,15}$")


@dataclass(frozen=True)
class Arm:
    """One arm: a name (``[a-z0-9_-]``, at most 16 characters), the strategy it serves, its traffic share."""

    name: str
    strategy: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_arms(
    arms: Sequence[Arm | dict[str, Any]], strategies: Collection[str], *, relative: bool = False
) -> list[Arm]:
    """Check an experiment's arms and return them with weights as shares summing to 1.

    Args:
        arms: two or more arms, the first is the control; weights are positive and sum to 100
            (percent) or to 1.
        strategies: the strategy names a recommender can serve.
        relative: weights are relative (any positive numbers: 1 and 3 give 25% and 75%), as the
            HTTP API takes them; otherwise they must sum to 100 or 1 (a typo guard for people).

    Returns:
        The arms, weights normalized to shares of 1.

    Raises:
        InputError: fewer than two arms, a duplicate or malformed name, an unknown strategy,
            a weight that is not positive, or weights that do not sum to 100 or 1.

    Example:
        >>> [a.weight for a in validate_arms([Arm("a", "default", 30), Arm("b", "default", 70)], {"default"})]
        [0.3, 0.7]
    """
    parsed = [a if isinstance(a, Arm) else Arm(**a) for a in arms]
    if len(parsed) < 2:
        raise InputError(f"an experiment needs at least two arms (a control and a treatment), got {len(parsed)}")
    names = [a.name for a in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"duplicate arm name(s): {', '.join(duplicates)}", field="arms")
    for arm in parsed:
        if not _ARM_NAME.match(arm.name):
            raise InputError(
                f"arm name {arm.name!r}: use 1-16 lower-case letters, digits, '_' or '-' (a letter or digit first)",
                field="arms",
            )
        if arm.strategy not in strategies:
            raise InputError(
                f"arm {arm.name!r}: unknown strategy {arm.strategy!r}; use one of {', '.join(sorted(strategies))}",
                field="arms",
            )
        if not (isinstance(arm.weight, int | float) and math.isfinite(arm.weight) and arm.weight > 0):
            raise InputError(f"arm {arm.name!r}: weight must be a positive number, got {arm.weight!r}", field="arms")
    total = float(sum(a.weight for a in parsed))
    if not math.isfinite(total):
        raise InputError("arm weights are too large", field="arms")
    if not relative and not (math.isclose(total, 100.0, abs_tol=1e-6) or math.isclose(total, 1.0, abs_tol=1e-9)):
        raise InputError(f"arm weights must sum to 100 (percent) or 1, got {total:g}", field="arms")
    return [Arm(a.name, a.strategy, a.weight / total) for a in parsed]


def assignment_point(experiment_id: str, user_id: str) -> float:
    """The user's uniform point in [0, 1) for an experiment: SHA-256 of ``experiment_id:user_id``.

    Independent across experiments (the id is hashed in), stable across processes and restarts.

    Example:
        >>> assignment_point("e1", "u1") == assignment_point("e1", "u1") != assignment_point("e2", "u1")
        True
    """
    digest = hashlib.sha256(f"{experiment_id}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(experiment_id: str, user_id: str, arms: Sequence[Arm]) -> Arm:
    """The arm of the user: the first whose cumulative share exceeds the user's point.

    Args:
        experiment_id: the experiment's id.
        user_id: the (pseudonymous) user id.
        arms: the arms as :func:`validate_arms` returns them.

    Returns:
        One of ``arms``, always the same for the same user and experiment.
    """
    point = assignment_point(experiment_id, user_id)
    total = sum(a.weight for a in arms)
    cumulative = 0.0
    for arm in arms:
        cumulative += arm.weight / total
        if point < cumulative:
            return arm
    return arms[-1]  # rounding of the last share


def exposure_scene(experiment_id: str, arm: str) -> str:
    """The ``scene`` an exposure event carries.

    Raises:
        InputError: the text would not fit the events table's scene column.
    """
    scene = f"{SCENE_PREFIX}{experiment_id}:{arm}"
    if len(scene) > SCENE_LENGTH:
        raise InputError(f"exposure scene {scene!r} is longer than {SCENE_LENGTH} characters")
    return scene


def parse_exposure_scene(scene: str) -> tuple[str, str] | None:
    """``(experiment id, arm)`` of an exposure event's scene; None for another scene.

    Example:
        >>> parse_exposure_scene("exp:1a2b3c4d:control"), parse_exposure_scene("home")
        (('1a2b3c4d', 'control'), None)
    """
    if not scene.startswith(SCENE_PREFIX):
        return None
    parts = scene[len(SCENE_PREFIX) :].split(":", 1)
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


def user_outcomes(exposures: pd.DataFrame, outcomes: pd.DataFrame, *, stop_ms: int | None = None) -> pd.DataFrame:
    """One row per exposed user: arm, first exposure and when (if ever) they clicked and purchased after it.

    Args:
        exposures: ``user_id, arm, ts_ms`` of the exposure events (a user's first exposure decides
            their arm; with a fixed split a user never sees two arms).
        outcomes: ``user_id, event_type, ts_ms`` of the exposed users' events.
        stop_ms: outcomes after this time do not count (the experiment stopped).

    Returns:
        ``user_id, arm, first_ms, click_ms, purchase_ms`` (NaN: never), one row per user.
    """
    if exposures.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _USER_COLUMNS.items()})
    first = (
        exposures.sort_values("ts_ms", kind="stable")
        .drop_duplicates("user_id", keep="first")[["user_id", "arm", "ts_ms"]]
        .rename(columns={"ts_ms": "first_ms"})
    )
    result = first.set_index("user_id")
    events = outcomes.merge(first[["user_id", "first_ms"]], on="user_id", how="inner")
    events = events[events["ts_ms"] >= events["first_ms"]]
    if stop_ms is not None:
        events = events[events["ts_ms"] <= stop_ms]
    for column, kinds in (("click_ms", CLICK_EVENTS), ("purchase_ms", PURCHASE_EVENTS)):
        hits = events[events["event_type"].isin(kinds)].groupby("user_id")["ts_ms"].min()
        result[column] = hits.reindex(result.index).astype(float)
    return result.reset_index()[list(_USER_COLUMNS)]


_USER_COLUMNS = {"user_id": object, "arm": object, "first_ms": "int64", "click_ms": float, "purchase_ms": float}


def msprt_lambda(
    successes_t: np.ndarray | float,
    n_t: np.ndarray | float,
    successes_c: np.ndarray | float,
    n_c: np.ndarray | float,
    tau2: float = DEFAULT_TAU2,
) -> np.ndarray:
    """The mSPRT likelihood ratio of treatment vs control proportions at each look (see the module docstring).

    Args:
        successes_t, n_t: treatment successes and users at each look.
        successes_c, n_c: the same for control.
        tau2: the mixing variance of the normal prior over the difference.

    Returns:
        Lambda per look; 1 (no evidence) where an arm is empty or the pooled variance is 0.

    Example:
        >>> float(msprt_lambda(50, 1000, 50, 1000)[()]) < 1     # no difference: evidence against H1
        True
    """
    st, nt, sc, nc = (np.asarray(x, dtype=np.float64) for x in (successes_t, n_t, successes_c, n_c))
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (st + sc) / (nt + nc)
        variance = pooled * (1.0 - pooled) * (1.0 / nt + 1.0 / nc)
        difference = st / nt - sc / nc
        log_lambda = 0.5 * np.log(variance / (variance + tau2)) + tau2 * difference**2 / (
            2.0 * variance * (variance + tau2)
        )
    valid = (nt > 0) & (nc > 0) & (variance > 0) & np.isfinite(log_lambda)
    return np.where(valid, np.exp(np.minimum(np.where(valid, log_lambda, 0.0), 700.0)), 1.0)


def msprt_p_values(
    successes_t: np.ndarray, n_t: np.ndarray, successes_c: np.ndarray, n_c: np.ndarray, tau2: float = DEFAULT_TAU2
) -> np.ndarray:
    """Always-valid p-values after each look: the running minimum of ``1 / Lambda``, capped at 1.

    The looks run along the last axis (a 2-D input is many experiments, one per row).

    Example:
        >>> msprt_p_values([10, 30], [100, 300], [10, 60], [100, 300]).round(3).tolist()[0]
        1.0
    """
    inverse = 1.0 / msprt_lambda(successes_t, n_t, successes_c, n_c, tau2)
    return np.minimum.accumulate(np.minimum(inverse, 1.0), axis=-1)


def _wilson(successes: int, n: int, alpha: float) -> dict[str, float | None]:
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        return {"value": None, "low": None, "high": None}
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return {"value": successes / n, "low": float(low), "high": float(high)}


def _difference(st: int, nt: int, sc: int, nc: int, alpha: float) -> dict[str, float]:
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(st, nt, sc, nc, method="wald", compare="diff", alpha=alpha)
    # Both rates 0 (or 1): no spread to estimate, the interval is the point.
    value = st / nt - sc / nc
    return {"value": value, "low": _finite(low, value), "high": _finite(high, value)}


def _finite(bound: float, fallback: float) -> float:
    return float(bound) if math.isfinite(bound) else float(fallback)


def arm_report(
    users: pd.DataFrame,
    arms: Sequence[Arm],
    *,
    looks_ms: Sequence[int] = (),
    alpha: float = DEFAULT_ALPHA,
    tau2: float = DEFAULT_TAU2,
    min_exposed: int = MIN_EXPOSED_PER_ARM,
) -> dict[str, Any]:
    """Per-arm exposures, CTR and conversion with intervals, the difference from control and the mSPRT.

    Args:
        users: :func:`user_outcomes`.
        arms: the experiment's arms; the first is the control.
        looks_ms: the times the report was (or could have been) read, oldest first, e.g. each day's
            end: the always-valid p-value is the minimum over these looks (and now) of 1 / Lambda,
            each look seeing only the users and outcomes known by then.
        alpha: the level of the intervals and of the sequential test's verdict.
        tau2: the mSPRT's mixing variance.
        min_exposed: the fewest exposed users per arm for a difference and a test.

    Returns:
        ``{"enough_data", "summary", "alpha", "tau2", "min_exposed_per_arm", "arms": [...]}``; each arm has
        ``exposed``, ``clickers``, ``ctr`` and ``converters``, ``conversion`` (value, low, high), and for a
        treatment arm with enough data ``difference`` and ``sequential`` per metric.
    """
    control = arms[0].name
    counts = {arm.name: _counts(users, arm.name) for arm in arms}
    enough = all(counts[a.name]["exposed"] >= min_exposed for a in arms)
    rows: list[dict[str, Any]] = []
    for arm in arms:
        c = counts[arm.name]
        row: dict[str, Any] = {
            "name": arm.name,
            "strategy": arm.strategy,
            "weight": arm.weight,
            "control": arm.name == control,
            "exposed": c["exposed"],
            "clickers": c["ctr"],
            "converters": c["conversion"],
            "ctr": _wilson(c["ctr"], c["exposed"], alpha),
            "conversion": _wilson(c["conversion"], c["exposed"], alpha),
            "difference": None,
            "sequential": None,
        }
        ready = c["exposed"] >= min_exposed and counts[control]["exposed"] >= min_exposed
        if arm.name != control and ready:
            cc = counts[control]
            row["difference"] = {m: _difference(c[m], c["exposed"], cc[m], cc["exposed"], alpha) for m in METRICS}
            row["sequential"] = {
                m: _sequential(users, arm.name, control, m, looks_ms, alpha=alpha, tau2=tau2) for m in METRICS
            }
        rows.append(row)
    if not any(c["exposed"] for c in counts.values()):
        summary = "not enough data: no user has been exposed yet"
    elif not enough:
        summary = f"not enough data: every arm needs {min_exposed} exposed users"
    else:
        summary = "enough data"
    return {
        "enough_data": enough,
        "summary": summary,
        "alpha": alpha,
        "tau2": tau2,
        "min_exposed_per_arm": min_exposed,
        "arms": rows,
    }


def _counts(users: pd.DataFrame, arm: str) -> dict[str, int]:
    mine = users[users["arm"] == arm]
    return {
        "exposed": len(mine),
        "ctr": int(mine["click_ms"].notna().sum()),
        "conversion": int(mine["purchase_ms"].notna().sum()),
    }


def _sequential(
    users: pd.DataFrame, arm: str, control: str, metric: str, looks_ms: Sequence[int], *, alpha: float, tau2: float
) -> dict[str, Any]:
    """The always-valid p-value over the looks (plus now, seeing everything)."""
    column = "click_ms" if metric == "ctr" else "purchase_ms"
    looks = [*looks_ms, np.inf]
    totals: dict[str, list[np.ndarray]] = {}
    for name in (arm, control):
        mine = users[users["arm"] == name]
        first = mine["first_ms"].to_numpy(np.float64)
        hit = mine[column].to_numpy(np.float64)
        n = np.array([(first <= t).sum() for t in looks], dtype=np.float64)
        s = np.array([((first <= t) & (hit <= t)).sum() for t in looks], dtype=np.float64)
        totals[name] = [s, n]
    p_values = msprt_p_values(totals[arm][0], totals[arm][1], totals[control][0], totals[control][1], tau2)
    p_value = float(p_values[-1])
    return {
        "p_value": p_value,
        "looks": len(looks),
        "significant": p_value <= alpha,
        "verdict": (
            ("better than control" if _rate(totals[arm]) > _rate(totals[control]) else "worse than control")
            if p_value <= alpha
            else "no difference shown yet"
        ),
    }


def _rate(total: list[np.ndarray]) -> float:
    successes, n = total
    return float(successes[-1] / n[-1]) if n[-1] else 0.0


def daily_series(users: pd.DataFrame, arms: Sequence[Arm], *, metric: str = "ctr") -> list[dict[str, Any]]:
    """Cumulative exposed users and the metric per arm at the end of each UTC day, oldest first.

    Example:
        >>> users = pd.DataFrame({"user_id": ["a", "b"], "arm": ["x", "y"], "first_ms": [0, 86_400_000],
        ...     "click_ms": [10.0, float("nan")], "purchase_ms": [float("nan")] * 2})
        >>> [d["arms"]["x"]["rate"] for d in daily_series(users, [Arm("x", "d", .5), Arm("y", "d", .5)])]
        [1.0, 1.0]
    """
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    if users.empty:
        return []
    column = "click_ms" if metric == "ctr" else "purchase_ms"
    day_ms = 86_400_000
    first_day = int(users["first_ms"].min()) // day_ms
    last_ms = np.nanmax(users[["first_ms", "click_ms", "purchase_ms"]].to_numpy(np.float64))
    days = range(first_day, int(last_ms) // day_ms + 1)
    series = []
    for day in days:
        end = (day + 1) * day_ms - 1
        entry: dict[str, Any] = {"day": pd.Timestamp(day * day_ms, unit="ms").strftime("%Y-%m-%d"), "arms": {}}
        for arm in arms:
            mine = users[users["arm"] == arm.name]
            seen = mine["first_ms"].to_numpy(np.float64) <= end
            n = int(seen.sum())
            hits = int((seen & (mine[column].to_numpy(np.float64) <= end)).sum())
            entry["arms"][arm.name] = {"exposed": n, "rate": hits / n if n else None}
        series.append(entry)
    return series
