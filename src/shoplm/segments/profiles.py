"""Embedding segments: k-means (scikit-learn) on customer profile vectors.

A customer's profile vector joins what they buy and how they buy:

- their *mix*: the customer × item spend table, each row scaled to sum 1, projected on
  ``n_components`` axes learned by truncated SVD (the item groups customers buy together),
  then scaled to unit length, so the mix says *what* and not *how much*;
- their *habits*: log recency, log frequency and log(1 + net revenue), standardized.

The mix weighs ``mix_weight`` against the habits (default 1: comparable). ``n_clusters=None``
picks k from ``k_range`` by the silhouette score on a sample of at most ``silhouette_sample``
customers (the highest wins; benchmarks/basket/README.md gives the scores on Online Retail).
``assign`` projects any frame's customers on the learned axes and takes the nearest centre;
items unseen at ``fit`` do not count in the mix.

Example:
    >>> import pandas as pd
    >>> rows = [(f"{c}{i}", c, item, 10.0) for c in ["a", "b", "c", "d"] for i, item in enumerate(["x", "y"])]
    >>> rows += [(f"{c}{i}", c, item, 99.0) for c in ["e", "f", "g", "h"] for i, item in enumerate(["p", "q"])]
    >>> frame = pd.DataFrame(rows, columns=["invoice_id", "customer_id", "item_id", "amount"])
    >>> frame["timestamp"], frame["is_return"] = pd.Timestamp("2024-01-01"), False
    >>> model = ProfileSegments(n_clusters=2, n_components=2).fit(frame)
    >>> groups = model.assign(frame).groupby("segment")["customer_id"].apply("".join)
    >>> sorted(groups)
    ['abcd', 'efgh']
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.estimator import Estimator
from shoplm.segments.rfm import customer_rfm

PROFILE_COLUMNS = ["invoice_id", "customer_id", "item_id", "timestamp", "amount", "is_return"]


def _spend_table(frame: pd.DataFrame, customers: np.ndarray, item_ids: np.ndarray) -> Any:
    """Customers × items sale amounts (scipy CSR), rows scaled to sum 1; unknown items left out."""
    from scipy import sparse

    sales = frame[~frame["is_return"].to_numpy(bool) & (frame["customer_id"].astype(str) != "")]
    rows = pd.Index(customers).get_indexer(sales["customer_id"].astype(str))
    cols = pd.Index(item_ids).get_indexer(sales["item_id"].astype(str))
    keep = (rows >= 0) & (cols >= 0)
    amount = np.abs(sales["amount"].to_numpy(np.float64))[keep]
    table = sparse.csr_matrix((amount, (rows[keep], cols[keep])), shape=(len(customers), len(item_ids)))
    totals = np.asarray(table.sum(axis=1)).ravel()
    return sparse.diags(np.where(totals > 0, 1.0 / np.maximum(totals, 1e-12), 0.0)) @ table


def _habits(rfm: pd.DataFrame) -> np.ndarray:
    """log recency, log frequency, log(1 + net revenue) per customer."""
    return np.column_stack(
        [
            np.log1p(rfm["recency_days"].to_numpy(np.float64)),
            np.log1p(rfm["frequency"].to_numpy(np.float64)),
            np.log1p(np.maximum(rfm["monetary"].to_numpy(np.float64), 0.0)),
        ]
    )


class ProfileSegments(Estimator):
    """k-means segments of customer profile vectors (purchase mix + habits).

    Args:
        n_clusters: how many segments; None: chosen by silhouette over ``k_range``.
        k_range: the smallest and largest k tried when ``n_clusters`` is None.
        n_components: SVD axes of the purchase mix.
        mix_weight: weight of the mix against the three habit features.
        silhouette_sample: customers the silhouette score is computed on (a random sample).
        seed: random seed of the SVD, k-means and the sample.
    """

    _version_modules = ("sklearn",)

    def __init__(
        self,
        n_clusters: int | None = None,
        k_range: tuple[int, int] | list[int] = (3, 8),
        n_components: int = 16,
        mix_weight: float = 1.0,
        silhouette_sample: int = 3000,
        seed: int = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.k_range = list(k_range)
        self.n_components = n_components
        self.mix_weight = mix_weight
        self.silhouette_sample = silhouette_sample
        self.seed = seed

    def _check(self, frame: pd.DataFrame) -> None:
        missing = [c for c in PROFILE_COLUMNS if c not in frame.columns]
        if missing:
            raise InputError("profile segments need transactions: missing column(s) " + ", ".join(missing))
        low, high = self.k_range
        if self.n_clusters is not None and self.n_clusters < 2:
            raise InputError(f"n_clusters must be at least 2, got {self.n_clusters!r}")
        if not 2 <= low <= high:
            raise InputError(f"k_range must be (low, high) with 2 <= low <= high, got {self.k_range!r}")

    def _features(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        rfm = customer_rfm(frame)
        mix = _spend_table(frame, rfm["customer_id"].to_numpy(str), self.item_ids_) @ self.components_.T
        norms = np.linalg.norm(mix, axis=1, keepdims=True)
        mix = np.where(norms > 0, mix / np.maximum(norms, 1e-12), 0.0)
        habits = (_habits(rfm) - self.habit_mean_) / self.habit_scale_
        # Unit-length mix (norm 1) against three standardized habits (norm about sqrt(3)).
        weight = float(self.mix_weight) * np.sqrt(habits.shape[1])
        return rfm, np.hstack([weight * mix, habits]).astype(np.float64)

    def fit(self, transactions: pd.DataFrame, **_: Any) -> Self:
        """Learn the mix axes, the habit scaling, k (if not given) and the k-means centres; return self."""
        from sklearn.cluster import KMeans
        from sklearn.decomposition import TruncatedSVD
        from sklearn.metrics import silhouette_score

        self._check(transactions)
        rfm = customer_rfm(transactions)
        sold = transactions[~transactions["is_return"].to_numpy(bool) & (transactions["customer_id"] != "")]
        self.item_ids_ = np.unique(sold["item_id"].astype(str).to_numpy())
        table = _spend_table(transactions, rfm["customer_id"].to_numpy(str), self.item_ids_)
        n_components = max(1, min(int(self.n_components), len(self.item_ids_) - 1, len(rfm) - 1))
        if n_components >= 2:
            svd = TruncatedSVD(n_components=n_components, random_state=self.seed).fit(table)
            self.components_ = svd.components_.astype(np.float32)
        else:  # one or two items: each item is its own axis
            self.components_ = np.eye(len(self.item_ids_), dtype=np.float32)
        habits = _habits(rfm)
        self.habit_mean_ = habits.mean(axis=0)
        self.habit_scale_ = np.where(habits.std(axis=0) > 0, habits.std(axis=0), 1.0)
        _, features = self._features(transactions)
        low, high = self.k_range
        high = min(high, len(features) - 1)
        if self.n_clusters is None and high < low:
            raise InputError(f"too few customers ({len(features)}) to choose among {self.k_range[0]}+ segments")
        candidates = [int(self.n_clusters)] if self.n_clusters is not None else list(range(low, high + 1))
        if len(features) < candidates[0]:
            raise InputError(f"{len(features)} customers cannot make {candidates[0]} segments")
        rng = np.random.default_rng(self.seed)
        sample = rng.choice(len(features), min(len(features), int(self.silhouette_sample)), replace=False)
        silhouettes: dict[int, float] = {}
        best: tuple[float, Any] = (-np.inf, None)
        for k in candidates:
            model = KMeans(n_clusters=k, n_init=4, random_state=self.seed).fit(features)
            labels = model.labels_[sample]
            score = float(silhouette_score(features[sample], labels)) if len(set(labels)) > 1 else -1.0
            silhouettes[k] = round(score, 4)
            if score > best[0]:
                best = (score, model)
        centers = best[1].cluster_centers_.astype(np.float64)
        # Numbered by value: segment 1 has the highest revenue habit (the last feature).
        self.centers_ = centers[np.argsort(-centers[:, -1], kind="stable")]
        self.silhouettes_ = silhouettes
        self.n_customers_ = len(features)
        return self

    def assign(self, transactions: pd.DataFrame) -> pd.DataFrame:
        """Each customer's R/F/M measures and nearest segment (``segment`` = "segment N", ``cluster`` = N).

        Args:
            transactions: the shared transactions frame.

        Returns:
            Columns ``customer_id, recency_days, frequency, monetary, first_days, cluster, segment``.
        """
        self.check_fitted()
        self._check(transactions)
        rfm, features = self._features(transactions)
        distances = ((features[:, None, :] - self.centers_[None, :, :]) ** 2).sum(axis=2)
        rfm["cluster"] = distances.argmin(axis=1).astype(np.int64)
        rfm["segment"] = [f"segment {c + 1}" for c in rfm["cluster"]]
        return rfm

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "item_ids": self.item_ids_,
            "components": self.components_,
            "habit_mean": np.asarray(self.habit_mean_, dtype=np.float64),
            "habit_scale": np.asarray(self.habit_scale_, dtype=np.float64),
            "centers": self.centers_,
        }
        state = {"silhouettes": {str(k): v for k, v in self.silhouettes_.items()}, "n_customers": self.n_customers_}
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.item_ids_ = arrays["item_ids"].astype(str)
        self.components_ = np.asarray(arrays["components"], dtype=np.float32)
        self.habit_mean_ = np.asarray(arrays["habit_mean"], dtype=np.float64)
        self.habit_scale_ = np.asarray(arrays["habit_scale"], dtype=np.float64)
        self.centers_ = np.asarray(arrays["centers"], dtype=np.float64)
        self.silhouettes_ = {int(k): float(v) for k, v in state["silhouettes"].items()}
        self.n_customers_ = int(state["n_customers"])
