"""One row of risk features per order, built from plain pandas frames (no SQL, no labels).

Every feature of an order uses only what was known when the order was placed: the user's
earlier orders and events, the account's sign-up time, the catalog. The order's own status is
never a feature: a cancelled or refunded status is partly a *consequence* of fraud, so using it
would leak the answer. Earlier orders' statuses are used only once they were settled
(``updated_ms`` before this order).

Column expectations (extra columns are ignored; the store's tables fit as they are):

- ``orders``: ``order_id``, ``user_id`` (empty or null for guests), ``created_ms`` (epoch ms);
  optional ``country`` (shipping), ``shipping_address``, ``status``, ``updated_ms``,
  ``total_amount`` (otherwise the sum of the lines).
- ``lines``: ``order_id``, ``item_id``, ``quantity``, ``unit_price``.
- ``users`` (optional): ``user_id``; optional ``country``, ``created_ms``. Without
  ``created_ms`` (the store keeps it only when the shop sent it) the account age is the time
  since the user was first seen (first event or order), which still marks brand-new accounts.
- ``events`` (optional): ``user_id``, ``ts_ms``; optional ``session_id``, ``event_type``,
  ``suspected_bot`` (the ingest's burst flag; all false when absent). Without events the
  session and activity features are unknown and the scorer fills them with training medians.
- ``items`` (optional): ``item_id``, ``price``: the price percentile is taken in the catalog;
  without it, among the unit prices of all order lines.

Example:
    >>> import pandas as pd
    >>> orders = pd.DataFrame({"order_id": ["o1", "o2"], "user_id": ["u1", "u1"],
    ...                        "created_ms": [0, 3_600_000], "country": ["CN", "US"]})
    >>> lines = pd.DataFrame({"order_id": ["o1", "o2"], "item_id": ["a", "b"],
    ...                       "quantity": [1, 4], "unit_price": [10.0, 90.0]})
    >>> users = pd.DataFrame({"user_id": ["u1"], "country": ["CN"], "created_ms": [-86_400_000]})
    >>> frame = build_order_features(orders, lines, users=users)
    >>> frame.loc["o2", ["prior_orders", "orders_24h", "country_mismatch", "max_line_units"]].astype(float).tolist()
    [1.0, 1.0, 1.0, 4.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from shoplm.errors import InputError

__all__ = [
    "FEATURES",
    "FEATURE_NAMES",
    "SETTLED_BAD_STATUSES",
    "FeatureSpec",
    "build_order_features",
]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: statuses of an earlier order that count toward refund abuse
SETTLED_BAD_STATUSES = frozenset({"refunded", "returned", "cancelled", "canceled", "chargeback", "reversal"})
#: how far from the order's time its purchase event may be to name the order's session
_SESSION_MATCH_MS = 10 * 60_000


@dataclass(frozen=True)
class FeatureSpec:
    """A risk feature: its name, which direction is risky (+1 high, -1 low) and what it means."""

    name: str
    direction: int
    meaning: str


FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("total_amount", +1, "order total in the shop's currency"),
    FeatureSpec("units", +1, "units in the order"),
    FeatureSpec("max_line_units", +1, "units on the order's largest line"),
    FeatureSpec("price_percentile", +1, "the dearest item's price percentile in the catalog (0-100)"),
    FeatureSpec("account_age_hours", -1, "hours from sign-up (or first sight) to the order"),
    FeatureSpec("prior_orders", -1, "the user's earlier orders"),
    FeatureSpec("prior_events", -1, "the user's events before the order's session"),
    FeatureSpec("session_seconds", -1, "seconds from the session's first event to the purchase"),
    FeatureSpec("session_events", -1, "events in the order's session up to the purchase"),
    FeatureSpec("country_mismatch", +1, "1 when the shipping country differs from the account's"),
    FeatureSpec("new_address", +1, "1 when a returning user ships to an address never used before"),
    FeatureSpec("prior_refund_share", +1, "share of earlier orders refunded, returned or cancelled"),
    FeatureSpec("prior_refunds", +1, "earlier orders refunded, returned or cancelled"),
    FeatureSpec("orders_24h", +1, "the user's other orders in the 24 h before"),
    FeatureSpec("bot_events_24h", +1, "the user's events flagged as bot-like bursts in the 24 h before"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(spec.name for spec in FEATURES)


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what} frame lacks column(s) {missing}; it has {list(frame.columns)}", field=missing[0])


def _ms(series: pd.Series, what: str) -> np.ndarray:
    """Epoch milliseconds as int64; refuses text that is not a number."""
    values = pd.to_numeric(series, errors="coerce")
    if values.isna().any():
        bad = series[values.isna()].iloc[0]
        raise InputError(f"{what}: {bad!r} is not a time in epoch milliseconds", field=what)
    return values.to_numpy(dtype=np.int64)


def _user_key(series: pd.Series) -> pd.Series:
    return series.fillna("").astype(str).str.strip()


def _count_before(
    keys: pd.Series, times: np.ndarray, ref_keys: pd.Series, ref_times: np.ndarray, *, inclusive: bool = False
) -> np.ndarray:
    """For each (key, time), how many reference rows of the same key are strictly before ``time``."""
    out = np.zeros(len(keys), dtype=np.float64)
    if len(ref_keys) == 0 or len(keys) == 0:
        return out
    ref = pd.DataFrame({"key": ref_keys.to_numpy(), "t": ref_times.astype(np.int64)}).sort_values("t", kind="stable")
    ref["n"] = ref.groupby("key").cumcount() + 1
    left = pd.DataFrame({"key": keys.to_numpy(), "t": times.astype(np.int64), "pos": np.arange(len(keys))})
    left = left.sort_values("t", kind="stable")
    merged = pd.merge_asof(left, ref, on="t", by="key", allow_exact_matches=inclusive, direction="backward")
    out[merged["pos"].to_numpy()] = merged["n"].fillna(0).to_numpy(dtype=np.float64)
    return out


def _order_table(orders: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    _require(orders, ["order_id", "user_id", "created_ms"], "orders")
    _require(lines, ["order_id", "item_id", "quantity", "unit_price"], "lines")
    if orders["order_id"].duplicated().any():
        dup = orders.loc[orders["order_id"].duplicated(), "order_id"].iloc[0]
        raise InputError(f"order {dup!r} appears twice in the orders frame (one row per order)", field="order_id")
    table = pd.DataFrame(
        {
            "order_id": orders["order_id"].astype(str).to_numpy(),
            "user_id": _user_key(orders["user_id"]).to_numpy(),
            "created_ms": _ms(orders["created_ms"], "created_ms"),
        }
    )
    table["updated_ms"] = _ms(orders["updated_ms"], "updated_ms") if "updated_ms" in orders else table["created_ms"]
    for column in ("country", "shipping_address", "status"):
        values = orders[column] if column in orders else pd.Series([""] * len(orders))
        table[column] = values.fillna("").astype(str).str.strip().to_numpy()
    table["country"] = table["country"].str.upper()
    table["status"] = table["status"].str.lower()
    quantity = pd.to_numeric(lines["quantity"], errors="coerce")
    price = pd.to_numeric(lines["unit_price"], errors="coerce")
    if quantity.isna().any() or price.isna().any():
        row = int(np.flatnonzero((quantity.isna() | price.isna()).to_numpy())[0])
        raise InputError(f"order line {row} has a quantity or unit_price that is not a number", field="quantity")
    per_line = pd.DataFrame({"order_id": lines["order_id"].astype(str), "q": quantity, "amount": quantity * price})
    grouped = per_line.groupby("order_id")
    table["units"] = table["order_id"].map(grouped["q"].sum()).fillna(0.0).to_numpy()
    table["max_line_units"] = table["order_id"].map(grouped["q"].max()).fillna(0.0).to_numpy()
    line_total = table["order_id"].map(grouped["amount"].sum()).fillna(0.0)
    if "total_amount" in orders:
        given = pd.to_numeric(orders["total_amount"], errors="coerce").to_numpy()
        table["total_amount"] = np.where(np.isfinite(given), given, line_total.to_numpy())
    else:
        table["total_amount"] = line_total.to_numpy()
    return table


def _price_percentile(table: pd.DataFrame, lines: pd.DataFrame, items: pd.DataFrame | None) -> np.ndarray:
    if items is not None and len(items) and {"item_id", "price"} <= set(items.columns):
        reference = pd.to_numeric(items["price"], errors="coerce").dropna().to_numpy()
    else:
        reference = pd.to_numeric(lines["unit_price"], errors="coerce").dropna().to_numpy()
    if len(reference) == 0:
        return np.full(len(table), np.nan)
    reference = np.sort(reference)
    price = pd.to_numeric(lines["unit_price"], errors="coerce").to_numpy()
    pct = 100.0 * np.searchsorted(reference, price, side="right") / len(reference)
    top = pd.Series(pct).groupby(lines["order_id"].astype(str).to_numpy()).max()
    return table["order_id"].map(top).to_numpy(dtype=np.float64)


def _sessions(table: pd.DataFrame, events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Session start and event count up to the purchase, NaN where no session is found."""
    start = np.full(len(table), np.nan)
    count = np.full(len(table), np.nan)
    if "session_id" not in events or len(events) == 0:
        return start, count
    ev = events[events["session_id"] != ""]
    candidates = ev[ev["event_type"] == "purchase"] if "event_type" in ev else ev
    if candidates.empty:
        candidates = ev
    right = candidates[["user_id", "ts_ms", "session_id"]].sort_values("ts_ms", kind="stable")
    left = pd.DataFrame({"user_id": table["user_id"], "ts_ms": table["created_ms"], "pos": np.arange(len(table))})
    left = left.sort_values("ts_ms", kind="stable")
    merged = pd.merge_asof(
        left, right, on="ts_ms", by="user_id", direction="nearest", tolerance=_SESSION_MATCH_MS
    ).dropna(subset=["session_id"])
    if merged.empty:
        return start, count
    first = ev.groupby("session_id")["ts_ms"].min()
    pos = merged["pos"].to_numpy()
    start[pos] = merged["session_id"].map(first).to_numpy(dtype=np.float64)
    count[pos] = _count_before(
        merged["session_id"].reset_index(drop=True),
        table["created_ms"].to_numpy()[pos],
        ev["session_id"].reset_index(drop=True),
        ev["ts_ms"].to_numpy(),
        inclusive=True,
    )
    return start, count


def build_order_features(
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    *,
    users: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The risk features of every order, indexed by ``order_id`` (see the module docstring).

    Args:
        orders: one row per order (``order_id``, ``user_id``, ``created_ms``, ...).
        lines: order lines (``order_id``, ``item_id``, ``quantity``, ``unit_price``).
        users: accounts (``user_id``, ``country``, ``created_ms``), optional.
        events: behaviour (``user_id``, ``ts_ms``, ``session_id``, ``event_type``, ``suspected_bot``), optional.
        items: catalog (``item_id``, ``price``), optional.

    Returns:
        A frame indexed by ``order_id`` with ``user_id``, ``created_ms``, ``country`` and the
        float columns of :data:`FEATURE_NAMES` (NaN where a feature is unknown).

    Raises:
        InputError: a required column is missing, an order appears twice, a time or an amount
            is not a number, or there are no orders.
    """
    if len(orders) == 0:
        raise InputError("no orders to score", field="orders")
    table = _order_table(orders, lines)
    user_key = table["user_id"]
    known_user = (user_key != "").to_numpy()
    created = table["created_ms"].to_numpy()

    if events is not None and len(events):
        _require(events, ["user_id", "ts_ms"], "events")
        ev = pd.DataFrame({"user_id": _user_key(events["user_id"]), "ts_ms": _ms(events["ts_ms"], "ts_ms")})
        for column in ("session_id", "event_type"):
            if column in events:
                ev[column] = events[column].fillna("").astype(str).to_numpy()
        bots = events["suspected_bot"] if "suspected_bot" in events else pd.Series(False, index=events.index)
        ev["suspected_bot"] = bots.fillna(False).astype(bool).to_numpy()
        ev = ev[ev["user_id"] != ""]
    else:
        ev = None

    # Account: country and sign-up time, or first sight when the shop did not send one.
    account_country = pd.Series("", index=table.index)
    signup = pd.Series(np.nan, index=table.index)
    if users is not None and len(users):
        _require(users, ["user_id"], "users")
        keyed = users.assign(user_id=_user_key(users["user_id"])).drop_duplicates("user_id").set_index("user_id")
        if "country" in keyed:
            countries = keyed["country"].fillna("").astype(str).str.strip().str.upper()
            # Guests and users the table lacks have no account country: no mismatch either.
            account_country = user_key.map(countries).fillna("")
        if "created_ms" in keyed:
            signup = user_key.map(pd.to_numeric(keyed["created_ms"], errors="coerce"))
    first_seen = table.groupby("user_id")["created_ms"].min()
    if ev is not None:
        first_seen = pd.concat([first_seen, ev.groupby("user_id")["ts_ms"].min()]).groupby(level=0).min()
    signup = signup.fillna(user_key.map(first_seen).astype(float))
    age_hours = np.where(known_user, np.maximum(created - signup.to_numpy(dtype=np.float64), 0.0) / HOUR_MS, np.nan)

    history = table[known_user]
    prior_orders = _count_before(user_key, created, history["user_id"], history["created_ms"].to_numpy())
    orders_24h = prior_orders - _count_before(
        user_key, created - DAY_MS, history["user_id"], history["created_ms"].to_numpy(), inclusive=True
    )
    bad = history[history["status"].isin(SETTLED_BAD_STATUSES)]
    prior_refunds = _count_before(user_key, created, bad["user_id"], bad["updated_ms"].to_numpy())
    # A returning user shipping somewhere new: the (user, address) pair's first order.
    first_at_address = ~table.sort_values("created_ms", kind="stable").duplicated(["user_id", "shipping_address"])
    new_address = (
        first_at_address.reindex(table.index) & (prior_orders > 0) & (table["shipping_address"] != "")
    ).to_numpy()
    mismatch = ((account_country != "") & (table["country"] != "") & (account_country != table["country"])).to_numpy()

    session_start, session_events = np.full(len(table), np.nan), np.full(len(table), np.nan)
    prior_events = np.full(len(table), np.nan)
    bot_24h = np.full(len(table), np.nan)
    if ev is not None:
        session_start, session_events = _sessions(table, ev)
        before = np.where(np.isfinite(session_start), session_start, created).astype(np.int64)
        prior_events = _count_before(user_key, before, ev["user_id"], ev["ts_ms"].to_numpy())
        flagged = ev[ev["suspected_bot"]]
        bot_24h = _count_before(user_key, created, flagged["user_id"], flagged["ts_ms"].to_numpy()) - _count_before(
            user_key, created - DAY_MS, flagged["user_id"], flagged["ts_ms"].to_numpy(), inclusive=True
        )

    frame = pd.DataFrame(
        {
            "user_id": user_key.to_numpy(),
            "created_ms": created,
            "country": table["country"].to_numpy(),
            "account_country": account_country.to_numpy(),
            "total_amount": table["total_amount"].to_numpy(dtype=np.float64),
            "units": table["units"].to_numpy(dtype=np.float64),
            "max_line_units": table["max_line_units"].to_numpy(dtype=np.float64),
            "price_percentile": _price_percentile(table, lines, items),
            "account_age_hours": age_hours,
            "prior_orders": prior_orders,
            "prior_events": prior_events,
            "session_seconds": (created - session_start) / 1000.0,
            "session_events": session_events,
            "country_mismatch": mismatch.astype(np.float64),
            "new_address": new_address.astype(np.float64),
            "prior_refund_share": prior_refunds / np.maximum(prior_orders, 1.0),
            "prior_refunds": prior_refunds,
            "orders_24h": orders_24h,
            "bot_events_24h": bot_24h,
        },
        index=pd.Index(table["order_id"].to_numpy(), name="order_id"),
    )
    frame["session_seconds"] = frame["session_seconds"].clip(lower=0.0)
    return frame
