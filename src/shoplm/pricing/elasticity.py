"""Own-price elasticity per category: log-log demand with item and week fixed effects.

For every category, on the item-week panel of units sold and the price paid,

    log q[i,w] = β · log p[i,w] + α[i] + γ[w] + ε[i,w]

β is the elasticity: the % change in units for a 1% change in price. Item effects α take out
that some items sell more; week effects γ take out the season, holidays and the shop's growth,
which move every item at once. So β is learnt only from an item's price moving against its
own usual level in a week like the others: the within variation. Both effects are absorbed by
alternating demeaning (no dummy columns, so memory grows with rows, not items × weeks), and
the standard error is clustered by item (an item's weeks are not independent draws).

Where the data cannot tell, no claim is made: a category whose prices barely move within
items, or with too few items whose prices move, gets the verdict ``"no_variation"``; one
whose interval straddles -1 is ``"undetermined"``; a *positive* slope (price rising with
demand) says more about how the shop sets prices than about customers, so it is
``"confounded"``. Only an interval wholly below -1 is ``"elastic"``, and one wholly above -1
(and not wholly above 0) is ``"inelastic"``: units move by a smaller share than the price,
possibly not at all.

Prices: the week's price of an item is the median unit price of its small lines that week
(see :func:`weekly_price_panel`: Online Retail gives bulk lines lower unit prices, which would
tie the price to the quantity). Returns are left out: they are not demand at a price.

Example:
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> items, weeks = np.repeat(np.arange(30), 20), np.tile(np.arange(20), 30)
    >>> price = 5 * (1 + items % 3) * np.exp(rng.normal(0, 0.15, 600))
    >>> units = np.exp(3 - 1.8 * np.log(price) + 0.2 * np.sin(weeks) + rng.normal(0, 0.2, 600))
    >>> panel = pd.DataFrame({"item_id": items.astype(str), "week": weeks, "category": "mugs",
    ...                       "quantity": units, "price": price})
    >>> model = ElasticityModel().fit(panel)
    >>> row = model.table().iloc[0]
    >>> round(float(row["elasticity"]), 1), row["verdict"]
    (-1.8, 'elastic')
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.estimator import Estimator

PANEL_COLUMNS = ["item_id", "week", "category", "quantity", "price"]
VERDICTS = ("elastic", "inelastic", "undetermined", "confounded", "no_variation")


PRICE_MEASURES = ("small_orders", "all_lines")


def weekly_price_panel(
    transactions: pd.DataFrame, item_category: dict[str, str] | pd.Series, *, price_from: str = "small_orders"
) -> pd.DataFrame:
    """Units sold and the price asked per item and week, with the item's category.

    Args:
        transactions: the shared transactions frame (:mod:`shoplm.ingest.transactions`).
        item_category: item id -> category; items without one are left out.
        price_from: ``"small_orders"`` (default): the median unit price of the item's lines at
            or below its median line quantity, i.e. the price a small buyer was asked;
            ``"all_lines"``: the median over every line. Online Retail gives bulk lines lower
            unit prices, so over all lines a week with a big order shows a low price *because*
            of the quantity: the measure then mixes the shop's tiers into the customers'
            response (on Online Retail it moves every category's estimate from about -0.7 to
            about -1.4; see ``benchmarks/elasticity/README.md``).

    Returns:
        Columns item_id, week (the Monday starting it), category, quantity, price; item-weeks
        without a small-order line have no small-order price and are left out.
    """
    if price_from not in PRICE_MEASURES:
        raise InputError(f"price_from must be one of {', '.join(PRICE_MEASURES)}, not {price_from!r}")
    sales = transactions[~transactions["is_return"] & (transactions["quantity"] > 0)]
    if sales.empty:
        raise InputError("no sales lines: every line is a return or has no quantity")
    sales = sales.assign(week=sales["timestamp"].dt.to_period("W-SUN").dt.start_time)
    units = sales.groupby(["item_id", "week"], sort=True)["quantity"].sum()
    priced = sales
    if price_from == "small_orders":
        priced = sales[sales["quantity"] <= sales.groupby("item_id")["quantity"].transform("median")]
    price = priced.groupby(["item_id", "week"], sort=True)["unit_price"].median()
    panel = pd.DataFrame({"quantity": units, "price": price}).dropna().reset_index()
    mapping = pd.Series(item_category) if not isinstance(item_category, pd.Series) else item_category
    panel["category"] = panel["item_id"].map(mapping)
    return panel.dropna(subset=["category"])[PANEL_COLUMNS].reset_index(drop=True)


def demean_two_way(
    values: np.ndarray, first: np.ndarray, second: np.ndarray, *, tol: float = 1e-10, max_iter: int = 500
) -> np.ndarray:
    """Columns of ``values`` with the means of both groupings removed (alternating projections).

    Args:
        values: (n, k) array.
        first, second: integer group codes (0..G-1) of each row, e.g. item and week.

    Returns:
        The residual of ``values`` on both sets of group dummies (what OLS with them would leave).
    """
    out = np.array(values, dtype=np.float64, copy=True)
    sizes = [np.bincount(codes).astype(np.float64) for codes in (first, second)]
    for _ in range(max_iter):
        change = 0.0
        for codes, size in zip((first, second), sizes, strict=True):
            for column in range(out.shape[1]):
                means = np.bincount(codes, weights=out[:, column], minlength=len(size)) / np.maximum(size, 1)
                out[:, column] -= means[codes]
                change = max(change, float(np.abs(means).max(initial=0.0)))
        if change < tol:
            break
    return out


def fit_fixed_effects(panel: pd.DataFrame) -> dict[str, float]:
    """β and its item-clustered standard error for one panel (see the module docstring)."""
    items, item_codes = np.unique(panel["item_id"].to_numpy(), return_inverse=True)
    _weeks, week_codes = np.unique(panel["week"].to_numpy(), return_inverse=True)
    logs = np.column_stack([np.log(panel["quantity"].to_numpy(float)), np.log(panel["price"].to_numpy(float))])
    within = demean_two_way(logs, item_codes, week_codes)
    y, x = within[:, 0], within[:, 1]
    sxx = float(x @ x)
    n = len(panel)
    if sxx <= 1e-12 or n < 3:
        return {"elasticity": float("nan"), "se": float("nan"), "n": n}
    beta = float(x @ y) / sxx
    residual = y - beta * x
    # Cluster-robust (by item) sandwich with the usual small-sample factor G/(G-1).
    scores = np.bincount(item_codes, weights=x * residual, minlength=len(items))
    clusters = len(items)
    variance = clusters / max(clusters - 1, 1) * float(scores @ scores) / sxx**2
    return {"elasticity": beta, "se": float(np.sqrt(variance)), "n": n}


def price_variation(panel: pd.DataFrame, *, moved: float = 0.02) -> dict[str, float]:
    """How much prices move within items: the within-item SD of log price, and who moved.

    Args:
        moved: a log-price deviation above this from the item's mean counts as a price change.
    """
    log_price = np.log(panel["price"].to_numpy(float))
    deviation = log_price - panel.assign(lp=log_price).groupby("item_id")["lp"].transform("mean").to_numpy()
    moving_items = panel.loc[np.abs(deviation) > moved, "item_id"].nunique()
    return {
        "within_sd": float(np.std(deviation)),
        "share_moved": float(np.mean(np.abs(deviation) > moved)),
        "items_with_price_changes": int(moving_items),
    }


class ElasticityModel(Estimator):
    """Own-price elasticity per category, with a verdict and what-if answers.

    Args:
        level: confidence level of the intervals (percent).
        min_items_moved: fewer items with a price change than this: no claim.
        min_within_sd: a within-item SD of log price below this: no claim.
        min_weeks_per_item: items seen in fewer weeks are left out (their item effect eats them).

    Example:
        >>> ElasticityModel().get_params()["level"]
        95.0
    """

    def __init__(
        self,
        level: float = 95.0,
        min_items_moved: int = 5,
        min_within_sd: float = 0.02,
        min_weeks_per_item: int = 3,
    ) -> None:
        self.level = level
        self.min_items_moved = min_items_moved
        self.min_within_sd = min_within_sd
        self.min_weeks_per_item = min_weeks_per_item

    def fit(self, panel: pd.DataFrame) -> Self:
        """Fit one elasticity per category of ``panel`` (see :func:`weekly_price_panel`)."""
        missing = [c for c in PANEL_COLUMNS if c not in panel.columns]
        if missing:
            raise InputError("price panel lacks columns: " + ", ".join(missing))
        usable = panel[(panel["quantity"] > 0) & (panel["price"] > 0)]
        weeks_seen = usable.groupby("item_id")["week"].transform("nunique")
        usable = usable[weeks_seen >= self.min_weeks_per_item]
        if usable.empty:
            raise InputError(f"no item sold in {self.min_weeks_per_item} or more weeks: nothing to learn from")
        from scipy import stats  # here: serving answers what-ifs from stored rows without SciPy

        z = float(stats.norm.ppf(0.5 + self.level / 200))
        rows = []
        for category, part in usable.groupby("category", sort=True):
            fitted = fit_fixed_effects(part)
            variation = price_variation(part)
            beta, se = fitted["elasticity"], fitted["se"]
            low, high = beta - z * se, beta + z * se
            recent = part[part["week"].isin(np.sort(part["week"].unique())[-8:])]  # the baseline: last 8 weeks
            weekly_revenue = (recent["quantity"] * recent["price"]).groupby(recent["week"]).sum().mean()
            rows.append(
                {
                    "category": str(category),
                    "elasticity": beta,
                    "se": se,
                    "ci_low": low,
                    "ci_high": high,
                    "n": fitted["n"],
                    "items": int(part["item_id"].nunique()),
                    **variation,
                    "weekly_units": float(recent.groupby("week")["quantity"].sum().mean()),
                    "weekly_revenue": float(weekly_revenue),
                    "verdict": self._verdict(beta, low, high, variation),
                }
            )
        self.table_ = pd.DataFrame(rows)
        return self

    def _verdict(self, beta: float, low: float, high: float, variation: dict[str, float]) -> str:
        if (
            not np.isfinite(beta)
            or variation["items_with_price_changes"] < self.min_items_moved
            or variation["within_sd"] < self.min_within_sd
        ):
            return "no_variation"
        if low > 0:
            return "confounded"
        if high < -1:
            return "elastic"
        if low > -1:
            return "inelastic"
        return "undetermined"

    def table(self) -> pd.DataFrame:
        """One row per category: elasticity, interval, evidence and verdict."""
        self.check_fitted()
        return self.table_.copy()

    def what_if(self, category: str, change: float) -> dict[str, Any]:
        """Units and revenue per week at a price changed by ``change`` (0.1 is +10%), with intervals.

        Raises:
            InputError: an unknown category, or a change at or below -100%.
        """
        self.check_fitted()
        found = self.table_[self.table_["category"] == category]
        if found.empty:
            raise InputError(f"no elasticity for category {category!r}", field="category")
        return what_if(found.iloc[0].to_dict(), change, level=self.level)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        numeric = [c for c in self.table_.columns if c not in ("category", "verdict")]
        arrays = {c: self.table_[c].to_numpy(np.float64) for c in numeric}
        arrays["category"] = self.table_["category"].to_numpy(str)
        arrays["verdict"] = self.table_["verdict"].to_numpy(str)
        return arrays, {"columns": list(self.table_.columns)}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.table_ = pd.DataFrame({c: np.asarray(arrays[c]) for c in state["columns"]})
        for column in ("category", "verdict"):
            self.table_[column] = self.table_[column].astype(str)


def _num(value: float | None) -> float | None:
    # A stored row comes back from JSON with None where the fit had NaN.
    return float(value) if value is not None and np.isfinite(value) else None


def what_if(row: dict[str, Any], change: float, *, level: float = 95.0) -> dict[str, Any]:
    """The what-if answer from one row of :meth:`ElasticityModel.table` (what serving stores).

    Units scale by ``(1 + change) ** elasticity`` and revenue by ``(1 + change) ** (1 + elasticity)``;
    the intervals come from the elasticity's interval. A category without price variation gets
    no numbers, only a note.

    Example:
        >>> row = {"category": "mugs", "elasticity": -2.0, "ci_low": -2.5, "ci_high": -1.5,
        ...        "verdict": "elastic", "weekly_units": 100.0, "weekly_revenue": 500.0}
        >>> answer = what_if(row, 0.1)
        >>> round(answer["units"]["change"], 3), round(answer["revenue"]["weekly"], 1)
        (-0.174, 454.5)
    """
    if not -1 < change <= 10:
        raise InputError(f"a price change must be above -100% and at most +1000%, not {change:+.0%}", field="change")
    factor = 1.0 + change
    answer: dict[str, Any] = {
        "category": row["category"],
        "price_change": change,
        "elasticity": _num(row["elasticity"]),
        "interval": [_num(row["ci_low"]), _num(row["ci_high"])],
        "level": level,
        "verdict": row["verdict"],
        "baseline": {"weekly_units": _num(row["weekly_units"]), "weekly_revenue": _num(row["weekly_revenue"])},
    }
    if row["verdict"] == "no_variation":
        answer["note"] = "prices of this category barely moved: the data cannot tell how demand responds"
        return answer
    units = [factor ** float(row[key]) for key in ("elasticity", "ci_low", "ci_high")]
    low, high = sorted(units[1:])
    answer["units"] = {
        "change": units[0] - 1,
        "interval": [low - 1, high - 1],
        "weekly": row["weekly_units"] * units[0],
    }
    answer["revenue"] = {
        "change": factor * units[0] - 1,
        "interval": [factor * low - 1, factor * high - 1],
        "weekly": row["weekly_revenue"] * factor * units[0],
    }
    return answer
