"""FraudScorer: a PyOD ensemble (ECOD, IsolationForest, COPOD) plus readable rules, per order.

How an order's score is made:

1. Its features (:func:`shoplm.risk.features.build_order_features`) have unknown values filled
   with the training medians. With ``one_sided`` the harmless side of each feature is cut at the
   median (a long-time customer is not "anomalous" for having many orders; a brand-new one is),
   so the detectors look only at the risky tail.
2. Each detector scores the order; its score is standardised with the mean and standard
   deviation of its scores on the training orders (a z-score), and the z-scores are combined by
   ``combine`` (their mean or their max).
3. Each fired rule (:mod:`shoplm.risk.rules`) adds ``rule_weight`` points.

An order is an alert when its score reaches ``threshold_``, the score of the top ``alert_rate``
share of training orders. Explanations name the rules that fired and the features whose values
are in the rarest risky tail of the training orders.

Saving keeps the training matrix and learned numbers (no pickle); loading refits the detectors
on that matrix, which is deterministic (ECOD and COPOD have no randomness, IsolationForest uses
``random_state``), so a loaded model scores exactly like the saved one.

Example:
    >>> import numpy as np, pandas as pd
    >>> from shoplm.risk.features import FEATURE_NAMES
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame(rng.gamma(2.0, 1.0, (200, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    >>> frame[["country_mismatch", "new_address", "orders_24h", "bot_events_24h", "prior_refunds"]] = 0.0
    >>> frame["prior_refund_share"] = 0.0
    >>> scorer = FraudScorer(detectors="ecod,copod", n_estimators=20).fit(frame)
    >>> scores = scorer.score(frame)
    >>> scores.shape, bool(np.isfinite(scores).all())
    ((200,), True)
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.estimator import Estimator
from shoplm.risk.features import FEATURE_NAMES, FEATURES
from shoplm.risk.rules import RuleSettings, fired_rules, rule_matrix

__all__ = ["DETECTORS", "FraudScorer"]

DETECTORS: tuple[str, ...] = ("ecod", "iforest", "copod")
_DIRECTION = np.array([spec.direction for spec in FEATURES], dtype=np.float64)
#: features an explanation names at most, and how rare (share of training orders) their tail must be
_TOP_FEATURES = 4
_RARE_TAIL = 0.05
_MIN_TRAINING_ORDERS = 20


class FraudScorer(Estimator):
    """Order-level fraud scores from three PyOD detectors and six readable rules.

    Args:
        detectors: comma-separated detector names among ``ecod``, ``iforest``, ``copod``.
        combine: ``mean`` or ``max`` of the standardised detector scores.
        rule_weight: points each fired rule adds to the score (0: detectors only).
        one_sided: cut each feature's harmless side at the training median before the detectors.
        alert_rate: share of training orders above the alert threshold.
        n_estimators: trees of the IsolationForest.
        max_train_orders: a larger training set is sampled down to this many orders (seeded).
        random_state: seed of the IsolationForest and of the sampling.
        velocity_orders, new_account_hours, high_value_quantile, refund_share, refund_min_orders,
            bot_events: the rules' thresholds (see :class:`~shoplm.risk.rules.RuleSettings`).
        currency: shown after amounts in the rules' sentences.
    """

    _version_modules = ("pyod", "sklearn")

    def __init__(
        self,
        detectors: str = "ecod,iforest,copod",
        combine: str = "mean",
        rule_weight: float = 1.0,
        one_sided: bool = True,
        alert_rate: float = 0.01,
        n_estimators: int = 100,
        max_train_orders: int = 50_000,
        random_state: int = 0,
        velocity_orders: int = 3,
        new_account_hours: float = 24.0,
        high_value_quantile: float = 0.95,
        refund_share: float = 0.5,
        refund_min_orders: int = 3,
        bot_events: int = 1,
        currency: str = "",
    ) -> None:
        self.detectors = detectors
        self.combine = combine
        self.rule_weight = rule_weight
        self.one_sided = one_sided
        self.alert_rate = alert_rate
        self.n_estimators = n_estimators
        self.max_train_orders = max_train_orders
        self.random_state = random_state
        self.velocity_orders = velocity_orders
        self.new_account_hours = new_account_hours
        self.high_value_quantile = high_value_quantile
        self.refund_share = refund_share
        self.refund_min_orders = refund_min_orders
        self.bot_events = bot_events
        self.currency = currency

    # -- settings ------------------------------------------------------------------------------
    @property
    def detector_names(self) -> list[str]:
        """The detectors in use, in the order given."""
        return [name.strip().lower() for name in self.detectors.split(",") if name.strip()]

    @property
    def rule_settings(self) -> RuleSettings:
        """The rules' thresholds as a :class:`RuleSettings`."""
        return RuleSettings(
            velocity_orders=self.velocity_orders,
            new_account_hours=self.new_account_hours,
            high_value_quantile=self.high_value_quantile,
            refund_share=self.refund_share,
            refund_min_orders=self.refund_min_orders,
            bot_events=self.bot_events,
        )

    def _check_params(self) -> None:
        unknown = [name for name in self.detector_names if name not in DETECTORS]
        if unknown or (not self.detector_names and self.rule_weight <= 0):
            raise InputError(f"detectors must be among {', '.join(DETECTORS)} (got {self.detectors!r})")
        if self.combine not in ("mean", "max"):
            raise InputError(f"combine must be 'mean' or 'max', not {self.combine!r}")
        if not 0 < self.alert_rate < 1:
            raise InputError(f"alert_rate must be between 0 and 1, not {self.alert_rate}")
        if not 0 < self.high_value_quantile < 1:
            raise InputError(f"high_value_quantile must be between 0 and 1, not {self.high_value_quantile}")
        if self.rule_weight < 0:
            raise InputError(f"rule_weight must be 0 or more, not {self.rule_weight}")

    # -- learning ------------------------------------------------------------------------------
    @staticmethod
    def _matrix(features: pd.DataFrame) -> np.ndarray:
        if not isinstance(features, pd.DataFrame):
            raise InputError("features must be the frame of build_order_features()")
        missing = [name for name in FEATURE_NAMES if name not in features.columns]
        if missing:
            raise InputError(f"the feature frame lacks {missing}: build it with build_order_features()")
        try:
            return features[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"feature columns must be numbers ({exc})") from exc

    def fit(self, features: pd.DataFrame) -> Self:
        """Learn the detectors, their score scales, the high-value line and the alert threshold.

        Args:
            features: training orders, a frame of :func:`~shoplm.risk.features.build_order_features`
                (no labels: the scorer is unsupervised).

        Returns:
            self
        """
        self._check_params()
        matrix = self._matrix(features)
        if len(matrix) < _MIN_TRAINING_ORDERS:
            raise InputError(f"need at least {_MIN_TRAINING_ORDERS} orders to learn from, got {len(matrix)}")
        if len(matrix) > self.max_train_orders:
            rows = np.random.default_rng(self.random_state).choice(len(matrix), self.max_train_orders, replace=False)
            matrix = matrix[np.sort(rows)]
        # A feature unknown for every order (no events at all, say) is filled with 0.
        known = np.isfinite(matrix)
        fill = np.array(
            [np.median(matrix[known[:, j], j]) if known[:, j].any() else 0.0 for j in range(matrix.shape[1])]
        )
        self._set_state(
            {"train_matrix": self._filled(matrix, fill), "fill": fill},
            {"high_value_amount": float(np.quantile(self._filled(matrix, fill)[:, 0], self.high_value_quantile))},
        )
        train = pd.DataFrame(self.train_matrix_, columns=list(FEATURE_NAMES))
        z = {name: (s - self.score_mean_[name]) / self.score_std_[name] for name, s in self._train_raw.items()}
        scores = self._combine(z, train, len(train))
        self.threshold_ = float(np.quantile(scores, 1.0 - self.alert_rate))
        return self

    @staticmethod
    def _filled(matrix: np.ndarray, fill: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(matrix), matrix, fill[None, :])

    def _one_sided(self, filled: np.ndarray) -> np.ndarray:
        if not self.one_sided:
            return filled
        return np.where(_DIRECTION > 0, np.maximum(filled, self.fill_), np.minimum(filled, self.fill_))

    def _detector_input(self, filled: np.ndarray) -> np.ndarray:
        return self._one_sided(filled)[:, self.active_]

    def _fit_detectors(self) -> None:
        from pyod.models.copod import COPOD
        from pyod.models.ecod import ECOD
        from pyod.models.iforest import IForest

        factories = {
            "ecod": lambda: ECOD(),
            "copod": lambda: COPOD(),
            "iforest": lambda: IForest(n_estimators=self.n_estimators, random_state=self.random_state),
        }
        x = self._detector_input(self.train_matrix_)
        self.detectors_ = {}
        if x.shape[1] == 0:
            return
        for name in self.detector_names:
            self.detectors_[name] = factories[name]().fit(x)

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.train_matrix_ = np.array(arrays["train_matrix"], dtype=np.float64)
        self.fill_ = np.array(arrays["fill"], dtype=np.float64)
        self.high_value_amount_ = float(state["high_value_amount"])
        # Constant columns carry no signal and make ECOD's skewness undefined.
        self.active_ = np.flatnonzero(np.ptp(self._one_sided(self.train_matrix_), axis=0) > 0)
        self._sorted_columns = np.sort(self.train_matrix_, axis=0)
        self._fit_detectors()
        raw = self._raw_detector_scores(self.train_matrix_)
        self._train_raw = raw  # fit's alert threshold reuses them
        self.score_mean_ = {name: float(np.mean(s)) for name, s in raw.items()}
        self.score_std_ = {name: float(np.std(s)) or 1.0 for name, s in raw.items()}
        if "threshold" in state:
            self.threshold_ = float(state["threshold"])

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return (
            {"train_matrix": self.train_matrix_, "fill": self.fill_},
            {
                "high_value_amount": self.high_value_amount_,
                "threshold": self.threshold_,
                "feature_names": list(FEATURE_NAMES),
                "training_orders": len(self.train_matrix_),
            },
        )

    # -- scoring -------------------------------------------------------------------------------
    def _raw_detector_scores(self, filled: np.ndarray) -> dict[str, np.ndarray]:
        x = self._detector_input(filled)
        return {name: np.asarray(det.decision_function(x), dtype=np.float64) for name, det in self.detectors_.items()}

    def _z_scores(self, filled: np.ndarray) -> dict[str, np.ndarray]:
        raw = self._raw_detector_scores(filled)
        return {name: (s - self.score_mean_[name]) / self.score_std_[name] for name, s in raw.items()}

    def _score_filled(self, features: pd.DataFrame, filled: np.ndarray) -> np.ndarray:
        return self._combine(self._z_scores(filled), features, len(filled))

    def _combine(self, z: dict[str, np.ndarray], features: pd.DataFrame, n: int) -> np.ndarray:
        if z:
            stacked = np.column_stack(list(z.values()))
            combined = stacked.mean(axis=1) if self.combine == "mean" else stacked.max(axis=1)
        else:
            combined = np.zeros(n)
        points = self.rule_hits(features).sum(axis=1) if self.rule_weight > 0 else 0.0
        return np.asarray(combined, dtype=np.float64) + self.rule_weight * points

    def detector_scores(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each detector's standardised score (z-score on the training orders) per order."""
        self.check_fitted()
        return self._z_scores(self._filled(self._matrix(features), self.fill_))

    def rule_hits(self, features: pd.DataFrame) -> np.ndarray:
        """Boolean (orders x :data:`~shoplm.risk.rules.RULE_NAMES`): which rule fires where."""
        self.check_fitted()
        return rule_matrix(features, self.rule_settings, high_value_amount=self.high_value_amount_)

    def score(self, features: pd.DataFrame) -> np.ndarray:
        """The fraud score of each order (higher is riskier; ``threshold_`` and above is an alert).

        Args:
            features: a frame of :func:`~shoplm.risk.features.build_order_features`.

        Returns:
            Float array, one score per row.
        """
        self.check_fitted()
        return self._score_filled(features, self._filled(self._matrix(features), self.fill_))

    # -- explanations --------------------------------------------------------------------------
    def feature_tails(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per order and feature: the percentile among training orders, and the risky tail's share.

        The tail share is the share of training orders at least as extreme in the risky
        direction (as high for a +1 feature, as low for a -1 one): small means rare.
        """
        self.check_fitted()
        filled = self._filled(self._matrix(features), self.fill_)
        n = len(self._sorted_columns)
        below_or_equal = np.column_stack(
            [np.searchsorted(self._sorted_columns[:, j], filled[:, j], side="right") for j in range(filled.shape[1])]
        )
        below = np.column_stack(
            [np.searchsorted(self._sorted_columns[:, j], filled[:, j], side="left") for j in range(filled.shape[1])]
        )
        tail = np.where(_DIRECTION > 0, (n - below) / n, below_or_equal / n)
        return 100.0 * below_or_equal / n, tail

    def explain(self, features: pd.DataFrame, *, scores: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Every order's score with the rules that fired and its rarest risky features, JSON-ready.

        Args:
            features: a frame of :func:`~shoplm.risk.features.build_order_features`.
            scores: the orders' scores when already computed (saves scoring twice).

        Returns:
            One dict per row: ``order_id``, ``user_id``, ``score``, ``alert`` (score reaches
            ``threshold_``), ``rules`` (``[{name, text}]``), ``features`` (up to four
            ``{name: {value, percentile}}`` whose risky tail holds at most 5% of training
            orders, rarest first) and ``detectors`` (each detector's z-score).
        """
        self.check_fitted()
        scores = self.score(features) if scores is None else scores
        percentile, tail = self.feature_tails(features)
        z = self.detector_scores(features)
        hits = self.rule_hits(features)
        filled = self._filled(self._matrix(features), self.fill_)
        out = []
        for i, (order_id, row) in enumerate(features.iterrows()):
            rare = [j for j in np.argsort(tail[i], kind="stable") if tail[i, j] <= _RARE_TAIL][:_TOP_FEATURES]
            rules = (
                fired_rules(row, self.rule_settings, high_value_amount=self.high_value_amount_, currency=self.currency)
                if hits[i].any()
                else []
            )
            out.append(
                {
                    "order_id": str(order_id),
                    "user_id": str(row.get("user_id", "")),
                    "score": round(float(scores[i]), 4),
                    "alert": bool(scores[i] >= self.threshold_),
                    "rules": [rule.to_dict() for rule in rules],
                    "features": {
                        FEATURE_NAMES[j]: {
                            "value": _json_number(filled[i, j]),
                            "percentile": round(float(percentile[i, j]), 1),
                        }
                        for j in rare
                    },
                    "detectors": {name: round(float(values[i]), 3) for name, values in z.items()},
                }
            )
        return out

    def alerts(
        self, features: pd.DataFrame, *, limit: int | None = None, threshold: float | None = None
    ) -> list[dict[str, Any]]:
        """The orders whose score reaches the alert threshold, riskiest first, explained.

        Args:
            features: a frame of :func:`~shoplm.risk.features.build_order_features`.
            limit: at most this many alerts.
            threshold: overrides ``threshold_``.

        Returns:
            The dicts of :meth:`explain` for the alerting orders, by descending score.
        """
        self.check_fitted()
        if limit is not None and limit < 1:
            raise InputError(f"limit must be at least 1, not {limit}")
        scores = self.score(features)
        line = self.threshold_ if threshold is None else float(threshold)
        chosen = np.flatnonzero(scores >= line)
        chosen = chosen[np.argsort(-scores[chosen], kind="stable")][:limit]
        return self.explain(features.iloc[chosen], scores=scores[chosen])


def _json_number(value: float) -> float | int:
    if math.isfinite(value) and float(value).is_integer():
        return int(value)
    return round(float(value), 2)
