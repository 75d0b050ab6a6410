"""A small shop in frames: ordinary customers, plus (optionally) one obvious fraud order."""

from __future__ import annotations

import numpy as np
import pandas as pd

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
NOW_MS = 400 * DAY_MS
FRAUD_ORDER = "fraud-1"


def small_shop(n_users: int = 50, seed: int = 0, *, with_fraud: bool = True) -> dict[str, pd.DataFrame]:
    """Orders, lines, users, events and items of a quiet shop; the fraud order is ``FRAUD_ORDER``.

    Ordinary customers are months old, order 1-2 cheap-to-mid items 1-4 times in browsing
    sessions of minutes, and ship to their own country. The fraud: an account made 2 h before,
    8 units of the dearest item bought in a 3-event, 30-second session, shipped abroad.
    """
    rng = np.random.default_rng(seed)
    prices = np.round(np.linspace(10, 500, 40), 2)
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(40)], "price": prices})
    users, orders, lines, events = [], [], [], []
    for u in range(n_users):
        uid, country = f"u{u}", ("CN", "US", "DE")[u % 3]
        users.append({"user_id": uid, "country": country, "created_ms": NOW_MS - int(rng.integers(60, 300)) * DAY_MS})
        for o in range(int(rng.integers(1, 5))):
            start = NOW_MS - int(rng.integers(1, 50)) * DAY_MS - o * 3 * DAY_MS + int(rng.integers(0, DAY_MS))
            n_views = int(rng.integers(5, 15))
            for v in range(n_views):
                events.append(
                    {
                        "user_id": uid,
                        "ts_ms": start + v * 30_000,
                        "session_id": f"s{u}-{o}",
                        "event_type": "view",
                        "item_id": f"i{int(rng.integers(0, 30))}",
                    }
                )
            created = start + n_views * 30_000
            events.append(
                {"user_id": uid, "ts_ms": created, "session_id": f"s{u}-{o}", "event_type": "purchase", "item_id": "i0"}
            )
            oid = f"o{u}-{o}"
            orders.append(
                {
                    "order_id": oid,
                    "user_id": uid,
                    "created_ms": created,
                    "updated_ms": created + DAY_MS,
                    "country": country,
                    "shipping_address": f"{u} Main St",
                    "status": "delivered",
                }
            )
            for line in range(int(rng.integers(1, 3))):
                item = int(rng.integers(0, 30))
                lines.append(
                    {
                        "order_id": oid,
                        "line_no": line,
                        "item_id": f"i{item}",
                        "quantity": int(rng.integers(1, 3)),
                        "unit_price": float(prices[item]),
                    }
                )
    if with_fraud:
        created = NOW_MS - 5 * DAY_MS
        users.append({"user_id": "thief", "country": "CN", "created_ms": created - 2 * HOUR_MS})
        for step, kind in enumerate(("view", "add_to_cart", "purchase")):
            events.append(
                {
                    "user_id": "thief",
                    "ts_ms": created - (2 - step) * 15_000,
                    "session_id": "s-thief",
                    "event_type": kind,
                    "item_id": "i39",
                }
            )
        orders.append(
            {
                "order_id": FRAUD_ORDER,
                "user_id": "thief",
                "created_ms": created,
                "updated_ms": created,
                "country": "GB",
                "shipping_address": "1 Dock Rd, London",
                "status": "paid",
            }
        )
        lines.append(
            {"order_id": FRAUD_ORDER, "line_no": 0, "item_id": "i39", "quantity": 8, "unit_price": float(prices[39])}
        )
    return {
        "orders": pd.DataFrame(orders),
        "lines": pd.DataFrame(lines),
        "users": pd.DataFrame(users),
        "events": pd.DataFrame(events),
        "items": items,
    }
