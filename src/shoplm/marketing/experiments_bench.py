"""``shoplm bench experiments``: peeking at A/B tests, naive z-tests against the mSPRT, by simulation.

Each simulated experiment has two arms of Bernoulli users (base rate :data:`BASE_RATE`, the
treatment adds an absolute ``effect``); users arrive in batches of :data:`BATCH` per arm, and
after every batch (a "peek", :data:`LOOKS` of them) each procedure may stop and declare a
difference:

- ``naive_peeking``: a two-sided two-proportion z-test at level alpha after every batch, stopping
  at the first p < alpha (what reading a dashboard every day does to a fixed-horizon test);
- ``fixed_horizon``: the same z-test once, at the planned end (valid, but no early stop);
- ``msprt``: the always-valid p-value of :func:`~shoplm.marketing.experiments.msprt_p_values`.

The mSPRT's mixing variance tau² is chosen on validation runs (seeds ``seed + 1000 ...``): the
candidate with the highest mean power over the effects whose A/A type-I error stays at or below
alpha. The reported figures come from fresh runs (``seed``).

Example:
    >>> report = run_experiments_benchmark(None, runs=50, seed=3)
    >>> report["type_i_error"]["msprt"] <= report["type_i_error"]["naive_peeking"]
    True
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm

from shoplm.marketing.experiments import DEFAULT_ALPHA, msprt_p_values

__all__ = ["run_experiments_benchmark", "simulate"]

BASE_RATE = 0.10
BATCH = 100
LOOKS = 100
EFFECTS = (0.0, 0.005, 0.01, 0.02)
TAU_CANDIDATES = (0.005, 0.01, 0.02, 0.05, 0.1)


def simulate(
    effect: float, *, runs: int, seed: int, base_rate: float = BASE_RATE, batch: int = BATCH, looks: int = LOOKS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (treatment successes, control successes, users per arm) after each look, one row per run."""
    rng = np.random.default_rng(seed)
    treatment = rng.binomial(batch, base_rate + effect, size=(runs, looks)).cumsum(axis=1)
    control = rng.binomial(batch, base_rate, size=(runs, looks)).cumsum(axis=1)
    users = np.broadcast_to(np.arange(1, looks + 1) * batch, (runs, looks)).astype(np.float64)
    return treatment.astype(np.float64), control.astype(np.float64), users


def _z_p_values(st: np.ndarray, sc: np.ndarray, n: np.ndarray) -> np.ndarray:
    pooled = (st + sc) / (2 * n)
    se = np.sqrt(pooled * (1 - pooled) * 2 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (st - sc) / n / se, 0.0)
    return 2 * norm.sf(np.abs(z))


def _procedures(
    effect: float, *, runs: int, seed: int, tau2s: tuple[float, ...], alpha: float
) -> dict[str, dict[str, float]]:
    """Rejection rate and mean users per arm at stopping (the horizon when never stopped), per procedure."""
    st, sc, n = simulate(effect, runs=runs, seed=seed)
    horizon = n[0, -1]
    found: dict[str, dict[str, float]] = {}
    z = _z_p_values(st, sc, n)
    signals = {"naive_peeking": z <= alpha, "fixed_horizon": None}
    for tau2 in tau2s:
        signals[f"msprt:{tau2:g}"] = msprt_p_values(st, n, sc, n, tau2) <= alpha
    for name, hits in signals.items():
        if hits is None:  # one look, at the end
            rejected = z[:, -1] <= alpha
            found[name] = {"rejected": float(rejected.mean()), "users_per_arm": float(horizon)}
            continue
        stopped = hits.any(axis=1)
        first = np.where(stopped, hits.argmax(axis=1), LOOKS - 1)
        found[name] = {"rejected": float(stopped.mean()), "users_per_arm": float(n[0, first].mean())}
    return found


def run_experiments_benchmark(
    out: Path | None, *, runs: int = 5000, seed: int = 1, alpha: float = DEFAULT_ALPHA
) -> dict[str, Any]:
    """Choose tau² on validation runs, then report type-I error, power and stopping time on fresh runs.

    Args:
        out: write the JSON report here and a PNG chart beside it (None: neither).
        runs: simulated experiments per effect size.
        seed: seed of the reported runs; validation runs use ``seed + 1000 + i``.
        alpha: the level of every test.

    Returns:
        ``{"protocol", "validation", "tau2", "type_i_error", "power", "stopping_users", "seconds"}``.
    """
    started = time.perf_counter()
    tau2s = tuple(t**2 for t in TAU_CANDIDATES)
    validation: dict[str, dict[str, float]] = {}
    for i, effect in enumerate(EFFECTS):
        print(f"validation: effect {effect:g}", file=sys.stderr, flush=True)
        result = _procedures(effect, runs=runs, seed=seed + 1000 + i, tau2s=tau2s, alpha=alpha)
        for tau2 in tau2s:
            entry = validation.setdefault(f"{tau2:g}", {"type_i_error": 0.0, "mean_power": 0.0})
            rate = result[f"msprt:{tau2:g}"]["rejected"]
            if effect == 0:
                entry["type_i_error"] = rate
            else:
                entry["mean_power"] += rate / (len(EFFECTS) - 1)
    valid = {k: v for k, v in validation.items() if v["type_i_error"] <= alpha} or validation
    chosen = float(max(valid, key=lambda k: valid[k]["mean_power"]))

    power: dict[str, dict[str, float]] = {}
    stopping: dict[str, dict[str, float]] = {}
    type_i: dict[str, float] = {}
    for i, effect in enumerate(EFFECTS):
        print(f"reported runs: effect {effect:g}", file=sys.stderr, flush=True)
        result = _procedures(effect, runs=runs, seed=seed + i, tau2s=(chosen,), alpha=alpha)
        result["msprt"] = result.pop(f"msprt:{chosen:g}")
        if effect == 0:
            type_i = {name: r["rejected"] for name, r in result.items()}
        else:
            power[f"{effect:g}"] = {name: r["rejected"] for name, r in result.items()}
        stopping[f"{effect:g}"] = {name: r["users_per_arm"] for name, r in result.items()}
    report: dict[str, Any] = {
        "protocol": {
            "runs_per_effect": runs,
            "seed": seed,
            "validation_seeds": [seed + 1000 + i for i in range(len(EFFECTS))],
            "alpha": alpha,
            "base_rate": BASE_RATE,
            "batch_users_per_arm": BATCH,
            "looks": LOOKS,
            "horizon_users_per_arm": BATCH * LOOKS,
            "effects_absolute": list(EFFECTS),
            "tau_candidates": list(TAU_CANDIDATES),
        },
        "validation": validation,
        "tau2": chosen,
        "type_i_error": type_i,
        "power": power,
        "stopping_users": stopping,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        _chart(report, out.with_suffix(".png"))
    return report


def _chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("naive_peeking", "fixed_horizon", "msprt")
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(14, 4.2))
    alpha = report["protocol"]["alpha"]
    left.bar(names, [report["type_i_error"][n] for n in names], color=["C0", "C1", "C2"])  # as in the other panels
    left.axhline(alpha, color="black", linestyle="--", label=f"alpha = {alpha:g}")
    left.set_title("A/A: type-I error with a peek after every batch")
    left.legend()
    effects = list(report["power"])
    for name in names:
        middle.plot([float(e) for e in effects], [report["power"][e][name] for e in effects], marker="o", label=name)
        right.plot(
            [float(e) for e in report["stopping_users"]],
            [report["stopping_users"][e][name] for e in report["stopping_users"]],
            marker="o",
            label=name,
        )
    middle.set_title("power (share of runs declaring a difference)")
    middle.set_xlabel(f"absolute lift over a {report['protocol']['base_rate']:.0%} rate")
    right.set_title("mean users per arm at stopping")
    right.set_xlabel("absolute lift")
    middle.legend()
    right.legend()
    fig.suptitle(f"mSPRT (tau² = {report['tau2']:g}, chosen on validation runs) vs naive peeking")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
