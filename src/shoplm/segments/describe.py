"""What a segment is, in words and figures: size, top categories, tags and value.

:func:`describe_segments` turns a per-customer assignment (any segmenter's ``assign``) and the
transactions into one JSON-ready dict per segment:

- ``customers`` and ``share`` of customers;
- ``top_categories``: the item categories that set the segment apart (when a category map is
  given), otherwise the words of the descriptions of the items bought (Online Retail has
  descriptions but no categories): among the labels bought by at least 5 % of the segment's
  customers and by at least 1.2 times more of them than of all customers (``lift``), those with the highest ``share`` of
  the segment's customers times log lift. Customers are counted, not money, so one huge
  order does not make a segment's profile;
- ``tags``: short labels from the segment's medians against all customers' (``recent`` /
  ``lapsed``, ``frequent`` / ``one-off``, ``high spend`` / ``low spend``) and its main country
  when that is not the main country of all customers;
- ``value``: total and mean net revenue, and the segment's share of all revenue;
- the medians of recency (days), orders and revenue, and the mean R/F/M scores when present.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({
    ...     "invoice_id": ["1", "2", "3"], "customer_id": ["a", "a", "b"], "item_id": ["x", "y", "x"],
    ...     "description": ["RED MUG", "BLUE MUG", "RED MUG"], "country": ["UK"] * 3,
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2023-01-01"]),
    ...     "amount": [10.0, 30.0, 20.0], "is_return": [False] * 3})
    >>> assignment = pd.DataFrame({"customer_id": ["a", "b"], "segment": ["big", "small"],
    ...     "recency_days": [1.0, 367.0], "frequency": [2, 1], "monetary": [40.0, 20.0]})
    >>> found = describe_segments(frame, assignment)
    >>> [(s["segment"], s["customers"], s["value"]["total_revenue"]) for s in found]
    [('big', 1, 40.0), ('small', 1, 20.0)]
    >>> found[0]["top_categories"][0]["name"], found[0]["tags"]
    ('blue', ['recent', 'frequent', 'high spend'])
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Words that name no kind of product (sizes, colours are kept: they are what people buy).
_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "of",
        "the",
        "in",
        "on",
        "with",
        "for",
        "to",
        "set",
        "pack",
        "box",
        "x",
        "s",
        "m",
        "l",
        "xl",
        "small",
        "large",
        "mini",
        "big",
        "new",
        "vintage",
        "design",
    ]
)
_MIN_LIFT = 1.2
#: a label bought by fewer of the segment's customers is too rare to describe it
_MIN_SHARE = 0.05


def _description_words(frame: pd.DataFrame) -> pd.DataFrame:
    """Distinct (customer_id, word) rows: the words of the descriptions of the items each customer bought."""
    pairs = frame[["customer_id", "item_id", "description"]].drop_duplicates(["customer_id", "item_id"])
    items = pairs.drop_duplicates("item_id").set_index("item_id")["description"].astype(str)
    words = items.str.lower().map(
        lambda text: sorted({w for w in re.findall(r"[a-z][a-z'&-]+", text) if w not in _STOP_WORDS})
    )
    per_item = words.explode().dropna().rename("word").reset_index()
    found = pairs[["customer_id", "item_id"]].merge(per_item, on="item_id")
    return found[["customer_id", "word"]].drop_duplicates()


def _top_labels(bought: pd.DataFrame, label: str, members: set[str], n_all: int, n: int) -> list[dict[str, Any]]:
    """The ``n`` labels (words or categories) that set the segment apart.

    ``share`` is the fraction of the segment's customers who bought the label, ``lift`` that
    over the fraction of all customers; labels with lift >= 1.2 and share >= 5 % are ranked by share x log lift
    (common in the segment and typical of it), or, when none has, by share alone.
    """
    overall = bought.groupby(label)["customer_id"].nunique() / max(n_all, 1)
    mine = bought[bought["customer_id"].isin(members)].groupby(label)["customer_id"].nunique()
    if mine.empty:
        return []
    share = mine / max(len(members), 1)
    lift = share / overall.reindex(share.index).clip(lower=1e-12)
    typical = (lift >= _MIN_LIFT) & (share >= _MIN_SHARE)
    if typical.any():
        chosen = (share[typical] * np.log(lift[typical])).sort_values(ascending=False)
    else:
        chosen = share.sort_values(ascending=False)
    return [
        {"name": str(name), "share": round(float(share[name]), 4), "lift": round(float(lift[name]), 3)}
        for name in chosen.head(n).index
    ]


def describe_segments(
    transactions: pd.DataFrame,
    assignment: pd.DataFrame,
    *,
    item_category: Mapping[str, str] | None = None,
    top: int = 5,
    order: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """One JSON-ready description per segment (see the module docstring).

    Args:
        transactions: the transactions the assignment was made from.
        assignment: per customer ``customer_id, segment, recency_days, frequency, monetary``
            (and ``R, F, M`` scores when the segmenter gives them).
        item_category: item id -> category; when None or empty, description words stand in.
        top: how many categories (or words) per segment.
        order: segment names in the order wanted; others follow by revenue.

    Returns:
        A list of dicts with ``segment, customers, share, top_categories, tags, value`` and
        the medians (``recency_days, orders, revenue``).
    """
    sales = transactions[~transactions["is_return"].to_numpy(bool) & (transactions["customer_id"].astype(str) != "")]
    sales = sales.assign(customer_id=sales["customer_id"].astype(str))
    if item_category:
        bought = sales.assign(category=sales["item_id"].astype(str).map(dict(item_category)).fillna(""))
        bought = bought[bought["category"] != ""][["customer_id", "category"]].drop_duplicates()
        label = "category"
    elif "description" in sales.columns:
        bought, label = _description_words(sales), "word"
    else:
        bought, label = pd.DataFrame({"customer_id": [], "word": []}), "word"
    countries = sales.groupby("customer_id")["country"].agg(lambda c: c.mode().iat[0]) if "country" in sales else None
    main_country = countries.mode().iat[0] if countries is not None and len(countries) else None
    medians = {c: float(assignment[c].median()) for c in ("recency_days", "frequency", "monetary")}
    total_revenue = float(assignment["monetary"].sum())
    found = []
    for name, group in assignment.groupby("segment", sort=False):
        members = set(group["customer_id"].astype(str))
        recency, orders, revenue = (float(group[c].median()) for c in ("recency_days", "frequency", "monetary"))
        tags = [
            "recent" if recency <= medians["recency_days"] else "lapsed",
            "frequent" if orders > medians["frequency"] else "one-off" if orders <= 1 else "occasional",
            "high spend" if revenue > medians["monetary"] else "low spend",
        ]
        if countries is not None:
            mine = countries.reindex(list(members)).dropna()
            if len(mine) and (mine == mine.mode().iat[0]).mean() >= 0.5 and mine.mode().iat[0] != main_country:
                tags.append(f"mostly {mine.mode().iat[0]}")
        entry: dict[str, Any] = {
            "segment": str(name),
            "customers": len(group),
            "share": round(len(group) / max(len(assignment), 1), 4),
            "top_categories": _top_labels(bought, label, members, len(assignment), top),
            "categories_from": "item categories" if label == "category" else "description words",
            "tags": tags,
            "value": {
                "total_revenue": round(float(group["monetary"].sum()), 2),
                "mean_revenue": round(float(group["monetary"].mean()), 2),
                "revenue_share": round(float(group["monetary"].sum()) / total_revenue, 4) if total_revenue else 0.0,
            },
            "median": {"recency_days": recency, "orders": orders, "revenue": round(revenue, 2)},
        }
        scores = [c for c in ("R", "F", "M") if c in group.columns]
        if scores:
            entry["mean_scores"] = {c: round(float(group[c].mean()), 2) for c in scores}
        found.append(entry)
    rank = {name: i for i, name in enumerate(order or [])}
    found.sort(key=lambda s: (rank.get(s["segment"], len(rank)), -s["value"]["total_revenue"]))
    return found


def segment_sizes(assignment: pd.DataFrame) -> dict[str, int]:
    """Segment -> customers, largest first (for a quick look).

    Example:
        >>> segment_sizes(pd.DataFrame({"segment": ["a", "b", "b"]}))
        {'b': 2, 'a': 1}
    """
    counts = assignment["segment"].value_counts()
    return {str(k): int(v) for k, v in counts.items()}
