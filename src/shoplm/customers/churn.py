"""Behavioural churn: who will not buy in the next 90 days, and why, from a transactions frame.

:class:`ChurnModel` learns from several past cutoffs at once: for each, the features of
:mod:`shoplm.customers.churn_features` computed before it and the label "no purchase in the
``horizon_days`` after it". A cutoff is used only if its label window ends within the data
given to ``fit``. The classifier is LightGBM, saved as its own text model (no pickle).

Warnings carry reasons: LightGBM's per-feature contributions (SHAP values) are summed per
reason group (recency, frequency, spend, ...), and each group pushing toward churn becomes a
sentence computed from the customer's own figures (strongest first; the basket group, the
vaguest sentence, after the others), e.g. "no purchase for 94 days, 3.1x your
usual gap (30 days)" or "spend down 60% vs the previous 90 days".

Fallback (documented, never a traceback): when the data holds no cutoff with a complete label
window and both outcomes (a shop younger than ``horizon_days`` + 30 days, or too few
customers), the model is fitted in ``fallback`` mode: the probability is BG/NBD's P(no
purchase within the horizon) fitted on the history, or, if BG/NBD cannot be fitted either
(nobody bought twice), recency / (recency + horizon); reasons come from the same sentences in
a fixed order. ``fallback_`` says which and why.

Example:
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> rows = [(f"c{c}", pd.Timestamp("2011-01-01") + pd.Timedelta(days=int(d)), f"i{rng.integers(5)}")
    ...         for c in range(40) for d in np.sort(rng.choice(60 + 5 * c, 4, replace=False))]
    >>> frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "item_id"]).assign(
    ...     invoice_id=[str(i) for i in range(len(rows))], amount=10.0, is_return=False)
    >>> model = ChurnModel(horizon_days=30, n_estimators=20, min_child_samples=5).fit(frame)
    >>> warning = model.warnings(frame, top=1)[0]
    >>> 0.0 <= warning.probability <= 1.0 and len(warning.reasons) >= 1
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd

from shoplm.customers.churn_features import FEATURE_GROUPS, churn_features, churn_labels, fit_item_vectors
from shoplm.errors import InputError
from shoplm.estimator import Estimator

#: what :meth:`ChurnModel.fit` needs of a transactions frame (``is_return`` is optional)
REQUIRED_COLUMNS = ("customer_id", "timestamp", "amount", "item_id", "invoice_id")

__all__ = ["REQUIRED_COLUMNS", "ChurnModel", "ChurnWarning", "default_cutoffs", "reason_sentences"]


@dataclass
class ChurnWarning:
    """One customer's churn risk at a cutoff, with the reasons behind it, strongest first."""

    customer_id: str
    probability: float
    reasons: list[str]
    reason_codes: list[str] = field(default_factory=list)
    cutoff: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what an HTTP route returns)."""
        return {
            "customer_id": self.customer_id,
            "probability": round(self.probability, 4),
            "reasons": self.reasons,
            "reason_codes": self.reason_codes,
            "cutoff": self.cutoff,
        }


def default_cutoffs(
    frame: pd.DataFrame, horizon_days: int = 90, min_history_days: int = 30, every: str = "SMS"
) -> list[pd.Timestamp]:
    """Cutoffs with ``min_history_days`` of history before and a full label window after.

    Args:
        frame: transactions (``timestamp``).
        horizon_days: label window length.
        min_history_days: history needed before the first cutoff.
        every: pandas frequency: "SMS" the 1st and 15th of each month (twice the training rows
            of month starts, which measured 0.001-0.003 AUC better), "MS" month starts.

    Returns:
        The cutoffs, oldest first (possibly empty).
    """
    if frame.empty:
        return []
    first = frame["timestamp"].min().normalize()
    end = frame["timestamp"].max().normalize() + pd.Timedelta(days=1)  # the data cover [first, end)
    start = (first + pd.Timedelta(days=min_history_days) - pd.Timedelta(days=1)) + pd.offsets.MonthBegin(1)
    return list(pd.date_range(start, end - pd.Timedelta(days=horizon_days), freq=every))


def _fmt_money(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def reason_sentences(row: pd.Series, horizon_days: int = 90) -> dict[str, str]:
    """A sentence per reason group, computed from one customer's features; empty when not telling.

    Args:
        row: one row of :func:`~shoplm.customers.churn_features.churn_features`.
        horizon_days: the prediction horizon (for the BG/NBD sentence).

    Returns:
        Reason group -> sentence.

    Example:
        >>> row = pd.Series({"recency_days": 94.0, "gap_mean": 30.0, "purchase_days": 5.0,
        ...     "spend_90d": 40.0, "spend_prev_90d": 100.0})
        >>> reason_sentences(row)["recency"]
        'no purchase for 94 days, 3.1x your usual gap (30 days)'
        >>> reason_sentences(row)["spend"]
        'spend down 60% vs the previous 90 days (40.00 after 100)'
    """
    value = row.get
    out: dict[str, str] = {}
    recency = value("recency_days", np.nan)
    gap = value("gap_mean", np.nan)
    if np.isfinite(recency):
        if np.isfinite(gap) and gap > 0:
            out["recency"] = f"no purchase for {recency:.0f} days, {recency / gap:.1f}x your usual gap ({gap:.0f} days)"
        else:
            out["recency"] = f"no purchase for {recency:.0f} days since the first and only one"
    recent, earlier = value("spend_90d", np.nan), value("spend_prev_90d", np.nan)
    if np.isfinite(recent) and np.isfinite(earlier) and earlier > 0 and recent <= 0:
        out["spend"] = f"nothing spent in the last 90 days, after {_fmt_money(earlier)} in the 90 before"
    elif np.isfinite(recent) and np.isfinite(earlier) and earlier > 0 and recent < earlier:
        drop = 100 * (1 - recent / earlier)
        out["spend"] = (
            f"spend down {drop:.0f}% vs the previous 90 days ({_fmt_money(recent)} after {_fmt_money(earlier)})"
        )
    orders, before, days = value("invoices_90d", np.nan), value("invoices_prev_90d", np.nan), value("purchase_days", 0)
    if np.isfinite(orders) and np.isfinite(before) and orders < before:
        plural = "" if orders == 1 else "s"
        out["frequency"] = f"{orders:.0f} order{plural} in the last 90 days, against {before:.0f} in the 90 before"
    elif np.isfinite(days) and days == 2:  # a single purchase is already said by the recency sentence
        out["frequency"] = "only 2 purchase days so far"
    share = value("return_share", 0.0)
    if np.isfinite(share) and share >= 0.05:
        out["returns"] = f"returned {100 * share:.0f}% of the value bought"
    tenure = value("tenure_days", np.nan)
    if np.isfinite(tenure) and tenure < 60:
        out["tenure"] = f"a customer for only {tenure:.0f} days"
    silent = value("bgnbd_p_silent", np.nan)
    if np.isfinite(silent):
        chance = f"{100 * silent:.0f}%"
        out["bgnbd"] = f"{chance} chance of no purchase in the next {horizon_days} days, by the buying rhythm so far"
    if any(str(k).startswith("basket_") for k in row.index):
        out["basket"] = "buys the kinds of items that lapsed customers bought"
    return out


#: reasons in this order when the model gives no contributions to rank them by
_FACT_ORDER = ("recency", "spend", "frequency", "returns", "tenure", "bgnbd")


class ChurnModel(Estimator):
    """Churn classifier over behaviour at a cutoff; see the module docstring.

    Args:
        horizon_days: churn = no purchase in this many days after the cutoff.
        n_components: size of the basket vector (0: none).
        half_life_days: time decay of the basket vector.
        bgnbd_features: add BG/NBD's P(alive) and P(silent) as features.
        num_leaves, n_estimators, learning_rate, min_child_samples: LightGBM settings. The
            defaults suit a shop of a few thousand customers and a year of history (Online
            Retail); ``shoplm bench churn`` chooses its own on a validation cutoff.
        max_cutoffs: learn from at most this many of the latest cutoffs.
        seed: LightGBM and SVD seed.
    """

    _version_modules = ("lightgbm", "sklearn", "scipy")

    def __init__(
        self,
        horizon_days: int = 90,
        n_components: int = 16,
        half_life_days: float = 90.0,
        bgnbd_features: bool = True,
        num_leaves: int = 7,
        n_estimators: int = 200,
        learning_rate: float = 0.03,
        min_child_samples: int = 100,
        max_cutoffs: int = 16,
        seed: int = 0,
    ) -> None:
        self.horizon_days = horizon_days
        self.n_components = n_components
        self.half_life_days = half_life_days
        self.bgnbd_features = bgnbd_features
        self.num_leaves = num_leaves
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.min_child_samples = min_child_samples
        self.max_cutoffs = max_cutoffs
        self.seed = seed

    # -- features ----------------------------------------------------------------------
    def features(self, frame: pd.DataFrame, cutoff: str | pd.Timestamp) -> pd.DataFrame:
        """The feature frame at ``cutoff`` with this model's item vectors (see churn_features)."""
        self.check_fitted()
        return self._features(frame, cutoff)

    def _features(self, frame: pd.DataFrame, cutoff: str | pd.Timestamp) -> pd.DataFrame:
        return churn_features(
            frame,
            cutoff,
            item_ids=self.item_ids_,
            item_vectors=self.item_vectors_,
            half_life_days=self.half_life_days,
            horizon_days=self.horizon_days,
            bgnbd=self.bgnbd_features,
        )

    def training_table(
        self, frame: pd.DataFrame, cutoffs: list[pd.Timestamp]
    ) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
        """Features and labels stacked over ``cutoffs`` (after :meth:`fit_item_vectors`)."""
        tables, labels, origin = [], [], []
        for cutoff in cutoffs:
            features = self._features(frame, cutoff)
            tables.append(features)
            labels.append(churn_labels(frame, cutoff, self.horizon_days).reindex(features.index))
            origin.append(np.full(len(features), str(pd.Timestamp(cutoff).date())))
        if not tables:
            return pd.DataFrame(), pd.Series(dtype=int), np.array([], dtype=str)
        return pd.concat(tables), pd.concat(labels), np.concatenate(origin)

    def fit_item_vectors(self, frame: pd.DataFrame) -> Self:
        """Learn the item vectors of the basket features from ``frame`` (a step of :meth:`fit`)."""
        if self.n_components > 0:
            self.item_ids_, self.item_vectors_ = fit_item_vectors(frame, self.n_components, self.seed)
        else:
            self.item_ids_, self.item_vectors_ = np.array([], dtype=str), np.zeros((0, 0))
        return self

    # -- learning ----------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, cutoffs: list[str | pd.Timestamp] | None = None) -> Self:
        """Learn from the cutoffs of ``frame`` whose label window it covers completely.

        Args:
            frame: transactions (``customer_id``, ``timestamp``, ``amount``, ``item_id``,
                ``invoice_id``[, ``is_return``]), e.g. ``read_retail_transactions(path).frame``.
            cutoffs: training cutoffs (default: :func:`default_cutoffs`, the latest ``max_cutoffs``).

        Returns:
            self; ``fallback_`` is "" for the learned model, else the fallback and why.
        """
        if self.horizon_days < 1 or self.n_components < 0 or self.half_life_days <= 0:
            raise InputError("need horizon_days ≥ 1, n_components ≥ 0 and half_life_days > 0")
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise InputError("transactions lack columns: " + ", ".join(missing))
        if frame.empty:
            raise InputError("no transactions to learn churn from")
        end = frame["timestamp"].max().normalize() + pd.Timedelta(days=1)
        chosen = default_cutoffs(frame, self.horizon_days) if cutoffs is None else [pd.Timestamp(c) for c in cutoffs]
        chosen = sorted(c for c in chosen if c + pd.Timedelta(days=self.horizon_days) <= end)[-self.max_cutoffs :]
        self.fit_item_vectors(frame[frame["timestamp"] < max(chosen)] if chosen else frame)
        table, labels, _ = self.training_table(frame, chosen)
        self.cutoffs_ = [str(c.date()) for c in chosen]
        self.booster_text_ = ""
        self.fallback_ = ""
        if len(table) < 20 or labels.nunique() < 2:
            self.fallback_ = (
                f"too little history to learn from ({len(table)} customer-cutoffs over {len(chosen)} cutoff(s) "
                f"with a complete {self.horizon_days}-day window): BG/NBD P(no purchase), else a recency rule"
            )
            self.feature_names_ = [name for names in FEATURE_GROUPS.values() for name in names]
            self.n_training_rows_ = len(table)
            return self
        self.feature_names_ = list(table.columns)
        self.booster_text_ = self._train(table, labels).model_to_string()
        self._booster = None
        self.n_training_rows_ = len(table)
        return self

    def _train(self, table: pd.DataFrame, labels: pd.Series) -> Any:
        import lightgbm

        params = {
            "objective": "binary",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "seed": self.seed,
            "num_threads": 1,
            "verbose": -1,
        }
        dataset = lightgbm.Dataset(table.to_numpy(dtype=float), labels.to_numpy(), feature_name=list(table.columns))
        return lightgbm.train(params, dataset, num_boost_round=self.n_estimators)

    @property
    def booster(self) -> Any:
        """The LightGBM booster, rebuilt from its text on first use (None in fallback mode)."""
        self.check_fitted()
        if not self.booster_text_:
            return None
        if getattr(self, "_booster", None) is None:
            import lightgbm

            self._booster = lightgbm.Booster(model_str=self.booster_text_)
        return self._booster

    # -- scoring -----------------------------------------------------------------------
    def _default_cutoff(self, frame: pd.DataFrame, cutoff: str | pd.Timestamp | None) -> pd.Timestamp:
        if cutoff is not None:
            return pd.Timestamp(cutoff)
        if frame.empty:
            raise InputError("no transactions to score")
        return frame["timestamp"].max().normalize() + pd.Timedelta(days=1)

    def _scores(self, features: pd.DataFrame, iterations: int | None = None) -> np.ndarray:
        """Churn probabilities for a feature frame."""
        aligned = features.reindex(columns=self.feature_names_)
        if self.booster is None:
            silent = aligned["bgnbd_p_silent"].to_numpy(dtype=float)
            recency = aligned["recency_days"].to_numpy(dtype=float)
            rule = recency / (recency + self.horizon_days)
            return np.where(np.isfinite(silent), silent, rule)
        return self.booster.predict(aligned.to_numpy(dtype=float), num_iteration=iterations)

    def predict_proba(
        self, frame: pd.DataFrame, cutoff: str | pd.Timestamp | None = None, *, iterations: int | None = None
    ) -> pd.Series:
        """P(churn) per customer who bought before ``cutoff`` (default: the day after the last line).

        Args:
            frame: transactions, as for :meth:`fit`.
            cutoff: the moment of prediction.
            iterations: use only the first boosting rounds (for choosing ``n_estimators``).

        Returns:
            Probabilities indexed by ``customer_id``.
        """
        self.check_fitted()
        features = self._features(frame, self._default_cutoff(frame, cutoff))
        probability = self._scores(features, iterations)
        return pd.Series(probability, index=features.index, name="churn_probability")

    def warnings(
        self,
        frame: pd.DataFrame,
        cutoff: str | pd.Timestamp | None = None,
        *,
        customer_ids: list[str] | None = None,
        top: int | None = None,
        min_probability: float = 0.0,
        max_reasons: int = 3,
    ) -> list[ChurnWarning]:
        """Churn warnings with reasons, most at risk first.

        Args:
            frame: transactions, as for :meth:`fit` (the whole history of the customers scored).
            cutoff: the moment of prediction (default: the day after the last line).
            customer_ids: only these customers (unknown ones are skipped).
            top: at most this many warnings (the dashboard list).
            min_probability: leave out customers below this risk.
            max_reasons: reasons per warning.

        Returns:
            :class:`ChurnWarning` objects sorted by decreasing probability.
        """
        self.check_fitted()
        at = self._default_cutoff(frame, cutoff)
        # Features over every customer: the BG/NBD part is a population fit.
        features = self._features(frame, at)
        if customer_ids is not None:
            features = features[features.index.isin([str(c) for c in customer_ids])]
        if features.empty:
            return []
        probability = self._scores(features)
        order = [i for i in np.argsort(-probability, kind="stable") if probability[i] >= min_probability]
        if top is not None:
            order = order[:top]
        if not order:
            return []
        chosen = features.iloc[order]
        contributions = self._group_contributions(chosen)
        result = []
        for position, (customer, row) in zip(order, chosen.iterrows(), strict=True):
            sentences = reason_sentences(row, self.horizon_days)
            codes: list[str] = []
            if contributions is not None:
                pushing = contributions.loc[customer, [g for g in contributions.columns if g in sentences]]
                codes = [g for g in pushing.sort_values(ascending=False).index if pushing[g] > 0]
                # The basket reason is the vaguest: it comes after the ones quoting the customer's figures.
                codes = [g for g in codes if g != "basket"] + [g for g in codes if g == "basket"]
            if not codes:  # fallback mode, or nothing pushes toward churn: the plain facts, in this order
                codes = [g for g in _FACT_ORDER if g in sentences]
            codes = codes[:max_reasons]
            result.append(
                ChurnWarning(
                    customer_id=str(customer),
                    probability=float(probability[position]),
                    reasons=[sentences[g] for g in codes],
                    reason_codes=codes,
                    cutoff=str(at.date()),
                )
            )
        return result

    def warning_for(
        self, frame: pd.DataFrame, customer_id: str, cutoff: str | pd.Timestamp | None = None
    ) -> ChurnWarning | None:
        """The warning of one customer (``None`` if they bought nothing before the cutoff).

        Pass the whole shop's frame, not only this customer's lines: the BG/NBD features are
        fitted on every customer (a second or two for 4,000 customers). To serve many users,
        compute :meth:`warnings` once for all and cache it.
        """
        found = self.warnings(frame, cutoff, customer_ids=[customer_id])
        return found[0] if found else None

    def _group_contributions(self, features: pd.DataFrame) -> pd.DataFrame | None:
        """Sum of SHAP contributions per reason group (positive: pushes toward churn)."""
        if self.booster is None:
            return None
        aligned = features.reindex(columns=self.feature_names_)
        raw = self.booster.predict(aligned.to_numpy(dtype=float), pred_contrib=True)[:, :-1]
        per_feature = pd.DataFrame(raw, index=features.index, columns=self.feature_names_)
        groups = {name: group for group, names in FEATURE_GROUPS.items() for name in names}
        mapping = [groups.get(name, "basket") for name in self.feature_names_]
        return per_feature.T.groupby(mapping).sum().T

    def feature_importance(self) -> dict[str, float]:
        """Total gain per reason group (empty in fallback mode)."""
        if self.booster is None:
            return {}
        gains = self.booster.feature_importance(importance_type="gain")
        groups = {name: group for group, names in FEATURE_GROUPS.items() for name in names}
        totals: dict[str, float] = {}
        for name, gain in zip(self.feature_names_, gains, strict=True):
            key = groups.get(name, "basket")
            totals[key] = totals.get(key, 0.0) + float(gain)
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

    # -- persistence -------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self.check_fitted()
        arrays: dict[str, np.ndarray] = {}
        if len(self.item_ids_):
            arrays = {"item_ids": np.asarray(self.item_ids_, dtype=str), "item_vectors": np.asarray(self.item_vectors_)}
        state = {
            "booster": self.booster_text_,
            "feature_names": self.feature_names_,
            "cutoffs": self.cutoffs_,
            "fallback": self.fallback_,
            "n_training_rows": getattr(self, "n_training_rows_", 0),
            "vector_shape": list(np.asarray(self.item_vectors_).shape),
        }
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.item_ids_ = np.asarray(arrays.get("item_ids", np.array([], dtype=str)))
        self.item_vectors_ = np.asarray(arrays.get("item_vectors", np.zeros(state["vector_shape"])))
        self.booster_text_ = state["booster"]
        self.feature_names_ = list(state["feature_names"])
        self.cutoffs_ = list(state["cutoffs"])
        self.fallback_ = state["fallback"]
        self.n_training_rows_ = int(state["n_training_rows"])
        self._booster = None
