"""Bought together: association rules (FP-growth, mlxtend) over baskets, as a candidate source.

A basket is what one user bought in one go. A source receives :class:`Interactions` (user,
item, time, weight: no order id), so baskets are rebuilt from time: a user's consecutive
events no more than ``session_gap_minutes`` apart form one session (an Online Retail invoice's
lines share one time stamp, so an invoice is one session), cut into baskets of at most
``max_basket`` consecutive events (a very long session, or a history whose times are only
positions, as in ``shoplm evaluate``'s leave-one-out split, still gives basket-sized sets).

Only the strongest kind of event in the data makes baskets: purchases when the data has any
(weight 5, :data:`~shoplm.interactions.EVENT_WEIGHTS`), every event when all weigh the same.
Rules ``A -> B`` with support, confidence and lift come from :func:`shoplm.itemsets.mine_rules`
(FP-growth), the same mining as the segments' basket rules; ``score(history)`` gives each item
the best confidence of a rule whose antecedent is in the history's newest basket, and items
no rule reaches a popularity tie-break below ``signal_floor``.

The segments package reads the same rules from invoices for the analytics; this class keeps
the one-item rules compactly for serving.

Example:
    >>> users = ["u1", "u1", "u2", "u2", "u3", "u3", "u4"]
    >>> items = ["a", "b", "a", "b", "a", "b", "c"]
    >>> model = BoughtTogetherRecommender(min_support=0.5).fit(Interactions.from_arrays(users, items))
    >>> [(item, round(score, 3)) for item, score in model.recommend(["a"], k=1, exclude_seen=True)]
    [('b', 1.0)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from shoplm.errors import InputError, ModelFileError
from shoplm.itemsets import mine_rules
from shoplm.recommend.base import CandidateSource, Interactions, scaled_to_max

#: popularity share added to every score so items no rule reaches still rank sensibly
_TIE_BREAK = 1e-6


class BoughtTogetherRecommender(CandidateSource):
    """Association rules over baskets: "bought together with what is in the basket".

    The defaults were chosen on validation invoices carved from Online Retail's training part
    (benchmarks/basket/README.md): min_support 0.001 put the hidden item of a basket in the
    top 10 for 28 % of baskets, 0.002 for 25 %, 0.005 for 17 %.

    Args:
        min_support: the least share of baskets an itemset must be in.
        min_confidence: the least confidence of a kept rule.
        max_len: the largest itemset mined (antecedent plus consequent).
        session_gap_minutes: events further apart than this start a new session.
        max_basket: the most events in one basket (a longer session is cut into baskets).
    """

    signal_floor = 1e-4
    _version_modules = ("mlxtend",)

    def __init__(
        self,
        min_support: float = 0.001,
        min_confidence: float = 0.05,
        max_len: int = 2,
        session_gap_minutes: float = 30.0,
        max_basket: int = 20,
    ) -> None:
        self.min_support = min_support
        self.min_confidence = min_confidence
        self.max_len = max_len
        self.session_gap_minutes = session_gap_minutes
        self.max_basket = max_basket

    def _check_params(self) -> None:
        if not 0 < self.min_support <= 1:
            raise InputError(f"min_support must be in (0, 1], got {self.min_support!r}")
        if not 0 <= self.min_confidence <= 1:
            raise InputError(f"min_confidence must be in [0, 1], got {self.min_confidence!r}")
        if self.max_len < 2:
            raise InputError(f"max_len must be at least 2 (a rule has two items), got {self.max_len!r}")
        if not self.session_gap_minutes >= 0 or self.max_basket < 2:
            raise InputError("session_gap_minutes must be >= 0 and max_basket at least 2")

    # -- learning ------------------------------------------------------------------------
    def baskets(self, interactions: Interactions) -> tuple[np.ndarray, np.ndarray]:
        """(basket number, item id) per kept event: see the module docstring for what a basket is."""
        strongest = interactions.weight >= interactions.weight.max()
        users, items, ts = (
            interactions.user_id[strongest],
            interactions.item_id[strongest],
            interactions.ts_ms[strongest],
        )
        new_user = np.r_[True, users[1:] != users[:-1]]
        gap = np.r_[False, np.diff(ts) > self.session_gap_minutes * 60_000]
        session = np.cumsum(new_user | gap) - 1
        starts = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
        position = np.arange(len(session)) - np.repeat(starts, np.diff(np.r_[starts, len(session)]))
        # Sessions longer than max_basket become several baskets of consecutive events.
        cut = np.r_[True, (session[1:] != session[:-1]) | (position[1:] % int(self.max_basket) == 0)]
        return np.cumsum(cut) - 1, items

    def fit(self, interactions: Interactions, **_: Any) -> Self:
        """Mine pair (or longer) rules from the baskets of ``interactions``; return self."""
        import pandas as pd

        self._check_params()
        if len(interactions) == 0:
            raise InputError("no interactions to learn from")
        basket, item_col = self.baskets(interactions)
        items, cols = np.unique(item_col, return_inverse=True)
        pairs = np.unique(basket * len(items) + cols)
        rows, cols = pairs // len(items), pairs % len(items)
        n_baskets = int(basket[-1]) + 1
        counts = np.bincount(cols, minlength=len(items)).astype(np.float64)
        rules, _n, _itemsets = mine_rules(
            pd.DataFrame({"invoice_id": rows, "item_id": cols}),
            min_support=self.min_support,
            min_confidence=self.min_confidence,
            min_lift=0.0,
            max_len=int(self.max_len),
        )
        antecedent, consequent, confidence, lift = [], [], [], []
        # One item to one item: the history's newest basket is matched item by item.
        for a, c, conf, lf in rules[["antecedents", "consequents", "confidence", "lift"]].itertuples(index=False):
            if len(a) == 1 and lf > 1:
                for item in c:
                    antecedent.append(next(iter(a)))
                    consequent.append(item)
                    confidence.append(conf)
                    lift.append(lf)
        order = np.lexsort((consequent, -np.asarray(confidence, dtype=np.float64), antecedent))
        a_sorted = np.asarray(antecedent, dtype=np.int64)[order]
        self.item_ids_ = items.astype(str)
        self.indptr_ = np.r_[0, np.cumsum(np.bincount(a_sorted, minlength=len(items)))].astype(np.int64)
        self.indices_ = np.asarray(consequent, dtype=np.int32)[order]
        self.confidence_ = np.asarray(confidence, dtype=np.float32)[order]
        self.lift_ = np.asarray(lift, dtype=np.float32)[order]
        self.item_baskets_ = counts.astype(np.float32)
        self.n_baskets_ = n_baskets
        self._derive()
        return self

    def _derive(self) -> None:
        self._popularity = scaled_to_max(self.item_baskets_)
        self._item_index = None

    # -- querying ------------------------------------------------------------------------
    def score(self, history: Sequence[str]) -> np.ndarray:
        """Each item's best rule confidence from the history's newest ``max_basket`` items."""
        self.check_fitted()
        index = self.item_index()
        basket = [index[h] for h in history[-int(self.max_basket) :] if h in index]
        if not basket:
            return self._popularity.copy()
        scores = _TIE_BREAK * self._popularity
        for item in set(basket):
            start, end = self.indptr_[item], self.indptr_[item + 1]
            targets = self.indices_[start:end]
            # the best rule counts; the popularity tie-break orders rules of equal confidence
            scores[targets] = np.maximum(
                scores[targets], self.confidence_[start:end] + _TIE_BREAK * self._popularity[targets]
            )
        return scores

    def rules(self, item_id: str, k: int = 10) -> list[tuple[str, float, float]]:
        """The ``k`` strongest rules from ``item_id``: (consequent, confidence, lift), best first."""
        self.check_fitted()
        position = self.item_index().get(str(item_id))
        if position is None:
            return []
        start = int(self.indptr_[position])
        end = min(int(self.indptr_[position + 1]), start + max(k, 0))
        return [
            (str(self.item_ids_[j]), float(c), float(lf))
            for j, c, lf in zip(
                self.indices_[start:end], self.confidence_[start:end], self.lift_[start:end], strict=True
            )
        ]

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "item_ids": self.item_ids_,
            "indptr": self.indptr_,
            "indices": self.indices_,
            "confidence": self.confidence_,
            "lift": self.lift_,
            "item_baskets": self.item_baskets_,
        }
        return arrays, {"n_baskets": self.n_baskets_}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.item_ids_ = arrays["item_ids"].astype(str)
        self.indptr_ = np.asarray(arrays["indptr"], dtype=np.int64)
        self.indices_ = np.asarray(arrays["indices"], dtype=np.int32)
        self.confidence_ = np.asarray(arrays["confidence"], dtype=np.float32)
        self.lift_ = np.asarray(arrays["lift"], dtype=np.float32)
        self.item_baskets_ = np.asarray(arrays["item_baskets"], dtype=np.float32)
        self.n_baskets_ = int(state["n_baskets"])
        if len(self.indptr_) != len(self.item_ids_) + 1 or self.indptr_[-1] != len(self.indices_):
            raise ModelFileError("bought-together model arrays are inconsistent (indptr does not match indices)")
        self._derive()
