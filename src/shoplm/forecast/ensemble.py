"""The shoplm ensemble: per demand class, the model or equal-weight combination that validated best,
with conformal prediction intervals from its validation errors.

Choice: for each class of series (smooth, erratic, intermittent, lumpy SKUs, ``new`` SKUs,
category aggregates), every candidate model and the equal-weight means of the best 2 and 3 are
scored by MASE on rolling-origin validation windows (which must end before any reported one);
the lowest wins. A class with fewer than :data:`MIN_CLASS_ROWS` validation points uses the choice
made over all series.

Intervals (split conformal): the chosen forecast's validation errors, scaled by each series'
in-sample naive error, give per class and per step ahead the empirical quantiles
``(1 - level) / 2`` and ``(1 + level) / 2``; a forecast's interval is the mean plus those scaled
quantiles, clipped at 0. A step beyond the validated horizon reuses the last step's quantiles
widened by ``sqrt(step / last step)``.

Example:
    >>> rng = np.random.default_rng(0)
    >>> y = rng.poisson(10, 400).astype(float)
    >>> frame = pd.DataFrame({"y": y, "good": y + rng.normal(0, 1, 400), "bad": y + 5.0, "scale": 3.0,
    ...                       "series_class": "smooth", "step": np.tile([1, 2], 200)})
    >>> selector = EnsembleSelector(candidates=["good", "bad"]).fit(frame)
    >>> selector.choice_["smooth"]
    ['good']
    >>> out = selector.predict(frame)
    >>> bool(0.75 < ((out["lo-80"] <= y) & (y <= out["hi-80"])).mean() < 0.85)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.estimator import Estimator

MIN_CLASS_ROWS = 40
ALL = "all"


class EnsembleSelector(Estimator):
    """Chooses a model (or an equal-weight mean of the best ones) per series class; conformal intervals.

    Args:
        candidates: the model columns it may choose from.
        levels: interval levels in percent.
        max_members: largest equal-weight combination tried (of the best single models).
    """

    def __init__(self, candidates: Sequence[str] = (), levels: Sequence[int] = (80, 95), max_members: int = 3) -> None:
        self.candidates = list(candidates)
        self.levels = list(levels)
        self.max_members = max_members

    def fit(self, validation: pd.DataFrame) -> Self:
        """Learn from validation forecasts.

        Args:
            validation: one row per series, window and step with ``y``, ``scale`` (> 0, the
                series' in-sample naive error at the window's origin), ``series_class``,
                ``step`` (1 = next week) and a column per candidate.
        """
        needed = {"y", "scale", "series_class", "step", *self.candidates}
        missing = sorted(needed - set(validation.columns))
        if missing:
            raise InputError("validation frame lacks columns: " + ", ".join(missing))
        if not self.candidates:
            raise InputError("no candidate model to choose from")
        rows = validation[validation["scale"] > 0]
        if rows.empty:
            raise InputError("no validation point with a positive scale: the series are constant")
        self.choice_: dict[str, list[str]] = {}
        self.validation_mase_: dict[str, dict[str, float]] = {}
        self.quantiles_: dict[str, dict[str, list[list[float]]]] = {}
        self.n_steps_ = int(rows["step"].max())
        groups = [(ALL, rows), *((str(c), g) for c, g in rows.groupby("series_class", sort=True))]
        for name, group in groups:
            if name != ALL and len(group) < MIN_CLASS_ROWS:
                continue
            scores = self._score(group)
            best = min(scores, key=lambda key: scores[key])
            self.choice_[name] = best.split("+")
            self.validation_mase_[name] = {key: round(value, 4) for key, value in scores.items()}
            errors = (group["y"].to_numpy() - self._combine(group, self.choice_[name])) / group["scale"].to_numpy()
            self.quantiles_[name] = self._quantiles(errors, group["step"].to_numpy())
        return self

    def _score(self, group: pd.DataFrame) -> dict[str, float]:
        actual, scale = group["y"].to_numpy(), group["scale"].to_numpy()
        single = {m: float(np.mean(np.abs(actual - group[m].to_numpy()) / scale)) for m in self.candidates}
        ranked = sorted(single, key=lambda m: single[m])
        scores = dict(single)
        for size in range(2, min(self.max_members, len(ranked)) + 1):
            members = ranked[:size]
            scores["+".join(members)] = float(np.mean(np.abs(actual - self._combine(group, members)) / scale))
        return scores

    @staticmethod
    def _combine(frame: pd.DataFrame, members: Sequence[str]) -> np.ndarray:
        return frame[list(members)].to_numpy(dtype=float).mean(axis=1)

    def _quantiles(self, errors: np.ndarray, steps: np.ndarray) -> dict[str, list[list[float]]]:
        out: dict[str, list[list[float]]] = {}
        for level in self.levels:
            alpha = (100 - level) / 200
            per_step = []
            for step in range(1, self.n_steps_ + 1):
                chosen = errors[steps == step]
                chosen = chosen if len(chosen) >= 10 else errors  # too few points at that step: pool
                per_step.append([float(np.quantile(chosen, alpha)), float(np.quantile(chosen, 1 - alpha))])
            out[str(level)] = per_step
        return out

    def members(self, series_class: str) -> list[str]:
        """The models averaged for a series of ``series_class`` (the overall choice if unseen)."""
        self.check_fitted()
        return self.choice_.get(series_class, self.choice_[ALL])

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The ensemble's forecast and intervals.

        Args:
            frame: rows with the candidate columns, ``scale``, ``series_class`` and ``step``.

        Returns:
            Frame (same index) with ``mean``, ``lo-<level>``, ``hi-<level>`` and ``members``.
        """
        self.check_fitted()
        out = pd.DataFrame(index=frame.index)
        out["mean"] = 0.0
        out["members"] = ""
        scale = frame["scale"].to_numpy(dtype=float)
        steps = frame["step"].to_numpy(dtype=int)
        for level in self.levels:
            out[f"lo-{level}"] = 0.0
            out[f"hi-{level}"] = 0.0
        for series_class, group in frame.groupby("series_class", sort=False):
            key = str(series_class) if str(series_class) in self.choice_ else ALL
            members = self.choice_[key]
            at = frame.index.get_indexer(group.index)
            mean = self._combine(group, members)
            out.iloc[at, out.columns.get_loc("mean")] = mean
            out.iloc[at, out.columns.get_loc("members")] = "+".join(members)
            for level in self.levels:
                table = np.asarray(self.quantiles_[key][str(level)])
                index = np.clip(steps[at], 1, self.n_steps_) - 1
                widen = np.sqrt(np.maximum(steps[at], self.n_steps_) / self.n_steps_)
                lo = mean + table[index, 0] * widen * scale[at]
                hi = mean + table[index, 1] * widen * scale[at]
                out.iloc[at, out.columns.get_loc(f"lo-{level}")] = np.maximum(np.minimum(lo, mean), 0.0)
                out.iloc[at, out.columns.get_loc(f"hi-{level}")] = np.maximum(hi, mean)
        return out

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        classes = sorted(self.quantiles_)
        # quantiles as one array (class, level, step, lo/hi) in the hashed arrays file
        table = np.array([[self.quantiles_[c][str(level)] for level in self.levels] for c in classes], dtype=np.float64)
        state = {"choice": self.choice_, "validation_mase": self.validation_mase_, "classes": classes}
        return {"quantiles": table}, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.choice_ = {k: list(v) for k, v in state["choice"].items()}
        self.validation_mase_ = state["validation_mase"]
        table = np.asarray(arrays["quantiles"], dtype=np.float64)
        self.quantiles_ = {
            c: {str(level): table[i, j].tolist() for j, level in enumerate(self.levels)}
            for i, c in enumerate(state["classes"])
        }
        self.n_steps_ = int(table.shape[2])
