"""Frequent itemsets and association rules over baskets (FP-growth, mlxtend).

One implementation for the two places that mine rules: the segments' basket rules (analytics)
and the recommenders' "bought together" source. The domains may not import each other, so
the mining lives on this floor below both.

Example:
    >>> import pandas as pd
    >>> pairs = pd.DataFrame({"invoice_id": ["1", "1", "2", "2", "3"], "item_id": ["a", "b", "a", "b", "c"]})
    >>> rules, n_baskets, _ = mine_rules(pairs, min_support=0.5, min_confidence=0.5, min_lift=1.0, max_len=2)
    >>> n_baskets, sorted(tuple(r) for r in rules["antecedents"])
    (3, [('a',), ('b',)])
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Below this many basket × item cells the one-hot table is dense (fpgrowth is faster on it).
_DENSE_CELLS = 200_000_000


def mine_rules(
    baskets: pd.DataFrame, *, min_support: float, min_confidence: float, min_lift: float, max_len: int | None
) -> tuple[pd.DataFrame, int, int]:
    """FP-growth and association rules over ``invoice_id, item_id`` pairs.

    Returns:
        ``(rules, n_baskets, n_frequent_itemsets)``; ``rules`` has mlxtend's columns
        (``antecedents``, ``consequents`` as frozensets, ``support``, ``confidence``, ``lift``...).
    """
    from mlxtend.frequent_patterns import association_rules, fpgrowth
    from scipy import sparse

    invoices, rows = np.unique(baskets["invoice_id"].to_numpy(), return_inverse=True)
    items, cols = np.unique(baskets["item_id"].to_numpy(), return_inverse=True)
    n_baskets = len(invoices)
    # Only items frequent on their own can be in a frequent itemset: mine on those columns.
    item_support = np.bincount(cols, minlength=len(items)) / n_baskets
    frequent = np.flatnonzero(item_support >= min_support)
    empty = pd.DataFrame(columns=["antecedents", "consequents", "support", "confidence", "lift"])
    if len(frequent) == 0:
        return empty, n_baskets, 0
    remap = np.full(len(items), -1)
    remap[frequent] = np.arange(len(frequent))
    keep = remap[cols] >= 0
    table = sparse.csr_matrix(
        (np.ones(int(keep.sum()), dtype=bool), (rows[keep], remap[cols[keep]])), shape=(n_baskets, len(frequent))
    )
    names = items[frequent].tolist()
    if n_baskets * len(frequent) <= _DENSE_CELLS:
        onehot = pd.DataFrame(table.toarray(), columns=names)
    else:
        onehot = pd.DataFrame.sparse.from_spmatrix(table, columns=names)
    itemsets = fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=max_len)
    if not (itemsets["itemsets"].map(len) > 1).any():
        return empty, n_baskets, len(itemsets)
    # Only the measures used are computed (mlxtend's others divide by zero on certain rules).
    rules = association_rules(
        itemsets,
        num_itemsets=n_baskets,
        metric="confidence",
        min_threshold=min_confidence,
        return_metrics=["support", "confidence", "lift"],
    )
    rules = rules[rules["lift"] >= min_lift]
    return rules.reset_index(drop=True), n_baskets, len(itemsets)
