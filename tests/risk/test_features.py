"""build_order_features: history only from the past, each signal where it should be, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shoplm.errors import InputError
from shoplm.risk import FEATURE_NAMES, build_order_features
from tests.risk.shop import DAY_MS, FRAUD_ORDER, HOUR_MS, small_shop


def _features(shop: dict[str, pd.DataFrame], **drop: bool) -> pd.DataFrame:
    return build_order_features(
        shop["orders"],
        shop["lines"],
        users=None if drop.get("users") else shop["users"],
        events=None if drop.get("events") else shop["events"],
        items=shop["items"],
    )


def test_fraud_order_features() -> None:
    frame = _features(small_shop(20))
    assert list(frame.columns[-len(FEATURE_NAMES) :]) == list(FEATURE_NAMES)
    fraud = frame.loc[FRAUD_ORDER]
    assert fraud["account_age_hours"] == pytest.approx(2.0)
    assert fraud["country_mismatch"] == 1.0 and fraud["max_line_units"] == 8.0 and fraud["units"] == 8.0
    assert fraud["prior_orders"] == 0.0 and fraud["prior_events"] == 0.0
    assert fraud["session_seconds"] == pytest.approx(30.0) and fraud["session_events"] == 3.0
    assert fraud["price_percentile"] == 100.0
    assert fraud["total_amount"] == pytest.approx(8 * 500.0)
    normal = frame.drop(index=FRAUD_ORDER)
    assert (normal["country_mismatch"] == 0).all()
    assert (normal["session_seconds"] > 60).all()


def test_history_counts_only_the_past_and_settled_statuses() -> None:
    t0 = 100 * DAY_MS
    orders = pd.DataFrame(
        {
            "order_id": ["a", "b", "c", "d"],
            "user_id": ["u", "u", "u", "u"],
            "created_ms": [t0, t0 + HOUR_MS, t0 + 2 * HOUR_MS, t0 + 3 * DAY_MS],
            # "b" is refunded only after "c" was placed: "c" must not know it yet, "d" does.
            "updated_ms": [t0 + 10, t0 + 5 * HOUR_MS, t0 + 2 * HOUR_MS, t0 + 3 * DAY_MS],
            "status": ["refunded", "refunded", "delivered", "cancelled"],
            "shipping_address": ["x", "x", "y", "x"],
        }
    )
    lines = pd.DataFrame({"order_id": list("abcd"), "item_id": "i", "quantity": 1, "unit_price": 5.0})
    frame = build_order_features(orders, lines)
    assert frame["prior_orders"].tolist() == [0, 1, 2, 3]
    assert frame["orders_24h"].tolist() == [0, 1, 2, 0]
    assert frame["prior_refunds"].tolist() == [0, 1, 1, 2]  # the order's own status is never counted
    assert frame["new_address"].tolist() == [0, 0, 1, 0]
    assert frame.loc["d", "prior_refund_share"] == pytest.approx(2 / 3)
    # Without users, account age is the time since the user was first seen.
    assert frame.loc["d", "account_age_hours"] == pytest.approx(72.0)
    assert frame["session_seconds"].isna().all()  # no events: unknown, not zero


def test_bot_flags_counted_in_the_day_before() -> None:
    orders = pd.DataFrame({"order_id": ["o"], "user_id": ["u"], "created_ms": [10 * DAY_MS]})
    lines = pd.DataFrame({"order_id": ["o"], "item_id": ["i"], "quantity": [1], "unit_price": [1.0]})
    events = pd.DataFrame(
        {
            "user_id": ["u"] * 4,
            "ts_ms": [2 * DAY_MS, 10 * DAY_MS - HOUR_MS, 10 * DAY_MS - HOUR_MS + 1, 10 * DAY_MS - 5],
            "suspected_bot": [True, True, True, False],
        }
    )
    assert build_order_features(orders, lines, events=events).loc["o", "bot_events_24h"] == 2


def test_bad_input_names_the_problem() -> None:
    shop = small_shop(3)
    with pytest.raises(InputError, match="created_ms"):
        build_order_features(shop["orders"].drop(columns="created_ms"), shop["lines"])
    with pytest.raises(InputError, match="no orders"):
        build_order_features(shop["orders"].iloc[:0], shop["lines"])
    twice = pd.concat([shop["orders"], shop["orders"].iloc[:1]])
    with pytest.raises(InputError, match="appears twice"):
        build_order_features(twice, shop["lines"])
    bad_time = shop["orders"].astype({"created_ms": object})
    bad_time.loc[0, "created_ms"] = "yesterday"
    with pytest.raises(InputError, match="'yesterday' is not a time"):
        build_order_features(bad_time, shop["lines"])
    bad_qty = shop["lines"].astype({"quantity": object})
    bad_qty.loc[0, "quantity"] = "many"
    with pytest.raises(InputError, match="not a number"):
        build_order_features(shop["orders"], bad_qty)
    assert np.isfinite(_features(shop, users=True, events=True)["total_amount"]).all()


def test_own_status_never_changes_an_orders_features() -> None:
    shop = small_shop(20)
    before = _features(shop).loc[FRAUD_ORDER]
    orders = shop["orders"].copy()
    orders.loc[orders["order_id"] == FRAUD_ORDER, "status"] = "refunded"
    after = build_order_features(
        orders, shop["lines"], users=shop["users"], events=shop["events"], items=shop["items"]
    ).loc[FRAUD_ORDER]
    pd.testing.assert_series_equal(before, after)


def test_guest_orders_have_no_history() -> None:
    shop = small_shop(5)
    orders = shop["orders"].copy()
    orders.loc[orders.index[:2], "user_id"] = ["", None]
    frame = build_order_features(orders, shop["lines"], users=shop["users"], events=shop["events"])
    guests = frame.loc[orders["order_id"].iloc[:2]]
    assert (guests["prior_orders"] == 0).all() and (guests["country_mismatch"] == 0).all()
    assert guests["account_age_hours"].isna().all()  # unknown: the scorer fills it with the median
