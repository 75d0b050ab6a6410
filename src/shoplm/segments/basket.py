"""Basket rules: FP-growth (mlxtend) over invoices, with support, confidence and lift.

A basket is one invoice's set of distinct items. Returns are handled explicitly: return lines
(``is_return``, which covers Online Retail's cancelled ``C`` invoices) are not purchases and
are dropped before mining, so a cancelled invoice forms no basket and an item taken back
does not count as bought together with anything.

Mining runs on the invoice × item one-hot table, restricted first to the items that can be
frequent (an item below ``min_support`` can be in no frequent itemset), so the table stays
small: on Online Retail (about 20,000 sale invoices, 3,900 items) ``min_support=0.01`` leaves
about 800 items and mines 3,400 rules in about 10 s on one core; the benchmark's choice, pairs at
0.002, about a minute (benchmarks/basket/README.md).

Rules are stored as string and number arrays (no pickle): the items of every antecedent and
consequent flattened, with offsets, and one support / confidence / lift per rule.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"invoice_id": ["1", "1", "2", "2", "3"], "item_id": ["a", "b", "a", "b", "c"]})
    >>> rules = BasketRules(min_support=0.5, min_confidence=0.5).fit(frame)
    >>> [(r["antecedents"], r["consequents"], r["confidence"]) for r in rules.top_rules(2)]
    [(['a'], ['b'], 1.0), (['b'], ['a'], 1.0)]
    >>> rules.recommend(["a"], k=1)
    [('b', 1.0)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from shoplm.errors import InputError, ModelFileError
from shoplm.estimator import Estimator
from shoplm.itemsets import mine_rules

#: How a consequent is scored for a basket: the best matching rule's confidence, lift, or their product.
SCORINGS = ("confidence", "lift", "confidence_lift")
#: Mine on a dense boolean table up to this many cells (fast), above it on a sparse one (small).


def sale_baskets(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The distinct (invoice, item) pairs of sales, and how many return lines were left out.

    Args:
        frame: transactions with at least ``invoice_id`` and ``item_id`` (and ``is_return``,
            if the frame has returns).

    Returns:
        ``(pairs, return_lines)``: a frame of distinct ``invoice_id, item_id`` pairs.
    """
    missing = [c for c in ("invoice_id", "item_id") if c not in frame.columns]
    if missing:
        raise InputError("basket rules need invoice lines: missing column(s) " + ", ".join(missing))
    returns = frame["is_return"].to_numpy(bool) if "is_return" in frame.columns else np.zeros(len(frame), bool)
    sales = frame.loc[~returns, ["invoice_id", "item_id"]].astype(str)
    return sales.drop_duplicates(ignore_index=True), int(returns.sum())


def _flatten(sets: Iterable[Iterable[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Item sets -> (items sorted within each set, flattened; offsets)."""
    lists = [sorted(map(str, s)) for s in sets]
    flat = np.array([item for group in lists for item in group], dtype=np.str_)
    offsets = np.concatenate([[0], np.cumsum([len(group) for group in lists])]).astype(np.int64)
    return flat, offsets


class BasketRules(Estimator):
    """Association rules mined with FP-growth over invoices; recommends what completes a basket.

    Args:
        min_support: the least share of baskets an itemset must be in.
        min_confidence: the least confidence, P(consequent | antecedent), of a kept rule.
        min_lift: the least lift of a kept rule (above 1: the items go together more than by chance).
        max_len: the largest itemset mined (antecedent plus consequent); None: no limit.
        scoring: how :meth:`recommend` scores a consequent, one of :data:`SCORINGS`.
    """

    _version_modules = ("mlxtend", "pandas")

    def __init__(
        self,
        min_support: float = 0.01,
        min_confidence: float = 0.1,
        min_lift: float = 1.0,
        max_len: int | None = 3,
        scoring: str = "confidence",
    ) -> None:
        self.min_support = min_support
        self.min_confidence = min_confidence
        self.min_lift = min_lift
        self.max_len = max_len
        self.scoring = scoring

    def _check_params(self) -> None:
        if not 0 < self.min_support <= 1:
            raise InputError(f"min_support must be in (0, 1], got {self.min_support!r}")
        if not 0 <= self.min_confidence <= 1:
            raise InputError(f"min_confidence must be in [0, 1], got {self.min_confidence!r}")
        if self.max_len is not None and self.max_len < 2:
            raise InputError(f"max_len must be at least 2 (a rule has two items), got {self.max_len!r}")
        if self.scoring not in SCORINGS:
            raise InputError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")

    # -- learning ------------------------------------------------------------------------
    def fit(self, transactions: pd.DataFrame, **_: Any) -> Self:
        """Mine the rules of the sale invoices of a transactions frame.

        Args:
            transactions: the shared transactions frame (``invoice_id``, ``item_id``, ``is_return``;
                ``description`` is kept for reading the rules, when present).

        Returns:
            self.
        """
        self._check_params()
        baskets, return_lines = sale_baskets(transactions)
        if baskets.empty:
            raise InputError("no sale line to mine basket rules from (every line is a return)")
        rules, n_baskets, n_itemsets = mine_rules(
            baskets,
            min_support=self.min_support,
            min_confidence=self.min_confidence,
            min_lift=self.min_lift,
            max_len=self.max_len,
        )
        # Best first, ties in item order, so the same data gives the same rules in the same order.
        rules = rules.assign(
            _a=rules["antecedents"].map(lambda s: "\x1f".join(sorted(s))),
            _c=rules["consequents"].map(lambda s: "\x1f".join(sorted(s))),
        ).sort_values(["lift", "confidence", "support", "_a", "_c"], ascending=[False, False, False, True, True])
        self.antecedent_items_, self.antecedent_offsets_ = _flatten(rules["antecedents"])
        self.consequent_items_, self.consequent_offsets_ = _flatten(rules["consequents"])
        self.support_ = rules["support"].to_numpy(np.float64)
        self.confidence_ = rules["confidence"].to_numpy(np.float64)
        self.lift_ = rules["lift"].to_numpy(np.float64)
        named = set(self.antecedent_items_.tolist()) | set(self.consequent_items_.tolist())
        titles = _descriptions(transactions, named)
        self.described_items_ = np.array(list(titles), dtype=np.str_)
        self.descriptions_ = np.array(list(titles.values()), dtype=np.str_)
        self.n_baskets_ = n_baskets
        self.n_itemsets_ = n_itemsets
        self.return_lines_ = return_lines
        self._derive()
        return self

    def _derive(self) -> None:
        # item -> rules whose antecedent holds it: a basket touches only its items' rules.
        by_item: dict[str, list[int]] = {}
        self._antecedent_sizes = np.diff(self.antecedent_offsets_)
        for r in range(len(self.support_)):
            start, end = self.antecedent_offsets_[r], self.antecedent_offsets_[r + 1]
            for item in self.antecedent_items_[start:end]:
                by_item.setdefault(str(item), []).append(r)
        self._rules_by_item = {item: np.array(rules, dtype=np.int64) for item, rules in by_item.items()}
        # Consequents as codes into one vocabulary, so scoring a basket is array work.
        self._vocabulary, self._consequent_codes = np.unique(self.consequent_items_, return_inverse=True)
        self._titles = dict(zip(self.described_items_.tolist(), self.descriptions_.tolist(), strict=True))

    # -- reading the rules --------------------------------------------------------------
    @property
    def n_rules(self) -> int:
        """How many rules were kept."""
        self.check_fitted()
        return len(self.support_)

    def rule(self, r: int) -> dict[str, Any]:
        """Rule ``r`` as a JSON-ready dict (items, their descriptions and the three measures)."""
        antecedents = self.antecedent_items_[self.antecedent_offsets_[r] : self.antecedent_offsets_[r + 1]].tolist()
        consequents = self.consequent_items_[self.consequent_offsets_[r] : self.consequent_offsets_[r + 1]].tolist()
        return {
            "antecedents": antecedents,
            "consequents": consequents,
            "antecedent_names": [self._titles.get(i, "") for i in antecedents],
            "consequent_names": [self._titles.get(i, "") for i in consequents],
            "support": round(float(self.support_[r]), 6),
            "confidence": round(float(self.confidence_[r]), 6),
            "lift": round(float(self.lift_[r]), 6),
        }

    def top_rules(self, n: int = 20, *, by: str = "lift") -> list[dict[str, Any]]:
        """The ``n`` best rules by ``by`` (``lift``, ``confidence`` or ``support``), JSON-ready.

        Ties are broken by the other two measures, so the order is stable.
        """
        self.check_fitted()
        measures = {"lift": self.lift_, "confidence": self.confidence_, "support": self.support_}
        if by not in measures:
            raise InputError(f"rules are ordered by lift, confidence or support, not {by!r}")
        others = [v for k, v in measures.items() if k != by]
        order = np.lexsort((-others[1], -others[0], -measures[by]))
        return [self.rule(int(r)) for r in order[: max(n, 0)]]

    def rules_frame(self) -> pd.DataFrame:
        """Every rule, one row each: antecedents and consequents as tuples, support, confidence, lift."""
        self.check_fitted()
        rows = [self.rule(r) for r in range(self.n_rules)]
        frame = pd.DataFrame(rows, columns=["antecedents", "consequents", "support", "confidence", "lift"])
        for column in ("antecedents", "consequents"):
            frame[column] = frame[column].map(tuple)
        return frame

    # -- recommending ---------------------------------------------------------------------
    def scores(self, basket_items: Sequence[str]) -> dict[str, float]:
        """Item -> score for the items that complete ``basket_items`` (see ``scoring``).

        A rule applies when the basket holds its whole antecedent; each of its consequents not
        already in the basket gets the rule's score, and an item keeps its best rule's score.
        """
        self.check_fitted()
        basket = {str(i) for i in basket_items}
        candidates = [self._rules_by_item[i] for i in basket if i in self._rules_by_item]
        if not candidates:
            return {}
        rules, hits = np.unique(np.concatenate(candidates), return_counts=True)
        rules = rules[hits == self._antecedent_sizes[rules]]
        if self.scoring == "confidence":
            value = self.confidence_[rules]
        elif self.scoring == "lift":
            value = self.lift_[rules]
        else:
            value = self.confidence_[rules] * self.lift_[rules]
        # Every consequent of every applying rule, with the rule's value; each item keeps its best.
        starts = self.consequent_offsets_[rules]
        sizes = self.consequent_offsets_[rules + 1] - starts
        flat = np.repeat(starts - np.r_[0, np.cumsum(sizes)[:-1]], sizes) + np.arange(int(sizes.sum()))
        codes, values = self._consequent_codes[flat], np.repeat(value, sizes)
        order = np.lexsort((codes, -values))
        codes, first = np.unique(codes[order], return_index=True)
        best = values[order][first]
        return {
            str(item): float(v)
            for item, v in zip(self._vocabulary[codes].tolist(), best.tolist(), strict=True)
            if item not in basket
        }

    def recommend(self, basket_items: Sequence[str], k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` best (item, score) pairs completing the basket, best first (ties by item id).

        Args:
            basket_items: the items in the basket (unknown ones are ignored).
            k: how many items at most.

        Returns:
            Fewer than ``k`` pairs when fewer rules apply; ``[]`` when none does.
        """
        found = self.scores(basket_items)
        return sorted(found.items(), key=lambda pair: (-pair[1], pair[0]))[: max(k, 0)]

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "antecedent_items": self.antecedent_items_,
            "antecedent_offsets": self.antecedent_offsets_,
            "consequent_items": self.consequent_items_,
            "consequent_offsets": self.consequent_offsets_,
            "support": self.support_,
            "confidence": self.confidence_,
            "lift": self.lift_,
            "described_items": self.described_items_,
            "descriptions": self.descriptions_,
        }
        state = {"n_baskets": self.n_baskets_, "n_itemsets": self.n_itemsets_, "return_lines": self.return_lines_}
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.antecedent_items_ = arrays.get("antecedent_items", np.array([], dtype=np.str_)).astype(str)
        self.consequent_items_ = arrays.get("consequent_items", np.array([], dtype=np.str_)).astype(str)
        self.antecedent_offsets_ = np.asarray(arrays["antecedent_offsets"], dtype=np.int64)
        self.consequent_offsets_ = np.asarray(arrays["consequent_offsets"], dtype=np.int64)
        self.support_ = np.asarray(arrays["support"], dtype=np.float64)
        self.confidence_ = np.asarray(arrays["confidence"], dtype=np.float64)
        self.lift_ = np.asarray(arrays["lift"], dtype=np.float64)
        self.described_items_ = arrays.get("described_items", np.array([], dtype=np.str_)).astype(str)
        self.descriptions_ = arrays.get("descriptions", np.array([], dtype=np.str_)).astype(str)
        n = len(self.support_)
        if len(self.antecedent_offsets_) != n + 1 or self.antecedent_offsets_[-1] != len(self.antecedent_items_):
            raise ModelFileError("basket rules arrays are inconsistent (antecedent offsets do not match the items)")
        if len(self.consequent_offsets_) != n + 1 or self.consequent_offsets_[-1] != len(self.consequent_items_):
            raise ModelFileError("basket rules arrays are inconsistent (consequent offsets do not match the items)")
        self.n_baskets_ = int(state["n_baskets"])
        self.n_itemsets_ = int(state["n_itemsets"])
        self.return_lines_ = int(state["return_lines"])
        self._derive()


def _descriptions(frame: pd.DataFrame, items: set[str]) -> dict[str, str]:
    """Item -> its most frequent non-empty description, for the given items (empty without a column)."""
    if "description" not in frame.columns or not items:
        return {}
    lines = frame.loc[frame["item_id"].astype(str).isin(items), ["item_id", "description"]].astype(str)
    lines = lines[lines["description"].str.strip() != ""]
    if lines.empty:
        return {}
    counted = lines.value_counts().reset_index(name="n").sort_values(["item_id", "n"], ascending=[True, False])
    first = counted.drop_duplicates("item_id")
    return dict(zip(first["item_id"], first["description"], strict=True))
