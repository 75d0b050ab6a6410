"""``shoplm bench bandit``: creative bandits replayed over demo impression logs, against their baselines.

Each seed is one demo store (its ``impressions.parquet``, where every impression's creative was
drawn uniformly from C variants, and ``impressions_truth.json`` with the hidden per-(item,
creative) logit effects ``g``). The true click probability of every creative in an impression
follows from the logged one, with the same noise draw: ``p_c = σ(logit(p_logged) − g[i, logged] +
g[i, c])``. Policies (Thompson sampling, uniform, ε-greedy, the oracle that always shows the
truly best creative of the item) are replayed per item over the log (:func:`~shoplm.marketing.bandits.replay`);
ε is chosen on a validation seed that is not reported.

Example:
    >>> report = run_bandit_benchmark([Path("demo-seed0")], validation=Path("demo-val"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shoplm.errors import InputError
from shoplm.marketing.bandits import (
    EpsilonGreedyPolicy,
    OraclePolicy,
    ReplayResult,
    ThompsonPolicy,
    UniformPolicy,
    best_arms,
    replay,
)

__all__ = ["EPSILONS", "ImpressionLog", "read_impression_log", "run_bandit_benchmark"]

#: ε values tried on the validation seed
EPSILONS = (0.02, 0.05, 0.1, 0.2)


class ImpressionLog:
    """A demo impression log in time order with every creative's true click probability."""

    def __init__(
        self, items: list[str], logged: np.ndarray, clicks: np.ndarray, probabilities: np.ndarray, best: dict[str, int]
    ) -> None:
        self.items, self.logged, self.clicks, self.probabilities, self.best = items, logged, clicks, probabilities, best


def read_impression_log(demo_dir: Path) -> ImpressionLog:
    """The impression log and its ground truth of a demo store directory.

    Raises:
        InputError: the directory has no impression log or no truth file.
    """
    import pandas as pd

    log_path, truth_path = demo_dir / "impressions.parquet", demo_dir / "impressions_truth.json"
    if not log_path.is_file() or not truth_path.is_file():
        raise InputError(f"{demo_dir}: no impressions.parquet with impressions_truth.json (a demo store has both)")
    frame = pd.read_parquet(log_path, columns=["ts", "item_id", "creative", "clicked", "p_click"])
    frame = frame.sort_values("ts", kind="stable")
    truth = json.loads(truth_path.read_text())
    effects = {item: np.asarray(values, dtype=float) for item, values in truth["creative_effects"].items()}
    items = frame["item_id"].astype(str).tolist()
    logged = frame["creative"].to_numpy(dtype=np.int64)
    g = np.stack([effects[item] for item in items])
    p = np.clip(frame["p_click"].to_numpy(dtype=float), 1e-9, 1 - 1e-9)
    base = np.log(p / (1 - p)) - g[np.arange(len(items)), logged]
    probabilities = 1.0 / (1.0 + np.exp(-(base[:, None] + g)))
    return ImpressionLog(items, logged, frame["clicked"].to_numpy(dtype=float), probabilities, best_arms(effects))


def _policies(log: ImpressionLog, seed: int, epsilon: float) -> list[Any]:
    return [
        ThompsonPolicy(seed=seed),
        EpsilonGreedyPolicy(epsilon, seed=seed),
        UniformPolicy(seed=seed),
        OraclePolicy(log.best),
    ]


def _run(policy: Any, log: ImpressionLog) -> ReplayResult:
    return replay(policy, log.items, log.logged, log.clicks, log.probabilities)


def run_bandit_benchmark(
    demo_dirs: Sequence[Path],
    out: Path | None = None,
    *,
    validation: Path | None = None,
    seeds: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Replay every policy over each demo store's impression log; JSON and a PNG of the regret curves.

    Args:
        demo_dirs: one demo store per reported seed.
        out: write the JSON here and the chart beside it (``.png``).
        validation: a demo store on which ε is chosen (lowest regret); without one ε = 0.1.
        seeds: the seeds the demo stores were made with (reported; also the policies' seeds).

    Returns:
        ``{"policies": {name: {regret, ctr, kept, ...} averaged}, "runs": [...], "epsilon": ...}``.
    """
    seeds = list(seeds) if seeds is not None else list(range(len(demo_dirs)))
    epsilon, tried = 0.1, {}
    if validation is not None:
        log = read_impression_log(validation)
        tried = {eps: _run(EpsilonGreedyPolicy(eps, seed=999), log).regret for eps in EPSILONS}
        epsilon = min(tried, key=lambda e: tried[e])
        print(f"validation: epsilon {epsilon:g} (regret by epsilon: {tried})", file=sys.stderr)
    runs: list[dict[str, Any]] = []
    for seed, demo_dir in zip(seeds, demo_dirs, strict=True):
        log = read_impression_log(demo_dir)
        for policy in _policies(log, seed, epsilon):
            result = _run(policy, log)
            name = "epsilon_greedy" if policy.name.startswith("epsilon") else policy.name
            runs.append(
                {
                    **result.summary(),
                    "seed": seed,
                    "policy": name,
                    "curve": {"kept": result.curve_steps, "regret": result.curve_regret, "clicks": result.curve_reward},
                }
            )
            print(
                f"seed {seed} {name}: regret {result.regret:.1f} over {result.kept:,} kept events, "
                f"CTR {result.ctr:.4f}",
                file=sys.stderr,
            )
    policies: dict[str, dict[str, float]] = {}
    for name in ("thompson", "epsilon_greedy", "uniform", "oracle"):
        mine = [r for r in runs if r["policy"] == name]
        regrets = np.array([r["regret"] for r in mine])
        per_1k = np.array([1000 * r["regret"] / max(r["kept"], 1) for r in mine])
        policies[name] = {
            "regret_mean": round(float(regrets.mean()), 2),
            "regret_sd": round(float(regrets.std(ddof=1)) if len(mine) > 1 else 0.0, 2),
            "regret_per_1000_kept": round(float(per_1k.mean()), 3),
            "replay_ctr_mean": round(float(np.mean([r["ctr"] for r in mine])), 5),
            "kept_mean": round(float(np.mean([r["kept"] for r in mine])), 1),
        }
    report = {
        "protocol": {
            "method": "replay (Li et al. 2011) over the demo impression logs; the logged creative is uniform",
            "regret": "sum over kept events of p(best creative) - p(shown creative), true probabilities",
            "seeds": seeds,
            "epsilon_candidates": list(EPSILONS),
            "epsilon_validation_regret": {str(k): round(v, 2) for k, v in tried.items()},
        },
        "epsilon": epsilon,
        "policies": policies,
        "runs": [{k: v for k, v in r.items() if k != "curve"} for r in runs],
        "curves": [{"seed": r["seed"], "policy": r["policy"], **r["curve"]} for r in runs],
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
        _chart(report, out.with_suffix(".png"))
    return report


def _chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"thompson": "#3b5bdb", "epsilon_greedy": "#f08c00", "uniform": "#868e96", "oracle": "#2f9e44"}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    labelled: set[str] = set()
    for curve in report["curves"]:
        name = curve["policy"]
        label = (
            None if name in labelled else (f"ε-greedy (ε={report['epsilon']:g})" if name == "epsilon_greedy" else name)
        )
        labelled.add(name)
        ax.plot(curve["kept"], curve["regret"], color=colours[name], alpha=0.8, lw=1.4, label=label)
    ax.set_xlabel("kept (replayed) impressions")
    ax.set_ylabel("cumulative regret (expected clicks lost)")
    ax.set_title(f"Creative bandits, replay over demo impression logs ({len(report['protocol']['seeds'])} seeds)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
