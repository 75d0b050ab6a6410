"""Small generated purchase histories for the customers tests (never ../shared)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_bgnbd(
    n: int, r: float, alpha: float, a: float, b: float, T: float | np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw (x, t_x, T) from BG/NBD itself: Poisson purchases at rate λ, dropout p after each."""
    rng = np.random.default_rng(seed)
    ages = np.broadcast_to(np.asarray(T, dtype=float), (n,))
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        rate, dropout = rng.gamma(r, 1 / alpha), rng.beta(a, b)
        clock = 0.0
        while True:
            clock += rng.exponential(1 / rate)
            if clock > ages[i]:
                break
            x[i] += 1
            t_x[i] = clock
            if rng.random() < dropout:
                break
    return x, t_x, ages.copy()


def retail_frame(n_customers: int = 120, days: int = 240, seed: int = 0) -> pd.DataFrame:
    """A transactions frame: loyal customers buy every ~12 days, churners stop early.

    Churners favour items ``z*``; loyal customers ``a*``; every customer spends 20-60 a visit.
    """
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2011-01-01")
    rows = []
    invoice = 0
    for c in range(n_customers):
        churner = c % 2 == 1
        first = rng.integers(0, days // 3)
        stop = first + rng.integers(20, days) if churner else days
        gap = rng.uniform(6, 18)
        day = float(first)
        items = [f"z{k}" for k in range(5)] if churner else [f"a{k}" for k in range(5)]
        while day < min(stop, days):
            invoice += 1
            for item in rng.choice(items, size=2, replace=False):
                rows.append((str(invoice), f"C{c:03d}", item, start + pd.Timedelta(days=day), 20 + 40 * rng.random()))
            day += rng.exponential(gap)
    frame = pd.DataFrame(rows, columns=["invoice_id", "customer_id", "item_id", "timestamp", "amount"])
    frame["quantity"] = 1
    frame["unit_price"] = frame["amount"]
    frame["is_return"] = False
    frame["description"] = "ITEM " + frame["item_id"]
    frame["country"] = "United Kingdom"
    return frame.sort_values("timestamp").reset_index(drop=True)


def write_online_retail_csv(frame: pd.DataFrame, path) -> None:
    """``frame`` in the UCI Online Retail layout."""
    pd.DataFrame(
        {
            "InvoiceNo": frame["invoice_id"],
            "StockCode": frame["item_id"],
            "Description": frame["description"],
            "Quantity": frame["quantity"],
            "InvoiceDate": frame["timestamp"].dt.strftime("%m/%d/%Y %H:%M"),
            "UnitPrice": frame["unit_price"].round(2),
            "CustomerID": frame["customer_id"].str[1:] + ".0",
            "Country": frame["country"],
        }
    ).to_csv(path, index=False)


def write_cdnow(path, n: int = 600, seed: int = 0) -> None:
    """A CDNOW-format file: customers join in the first 12 weeks of 1997 and buy BG/NBD-like."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("1997-01-01")
    lines = ["customer_id date number_of_cds dollar_value"]
    for c in range(n):
        first = int(rng.integers(0, 84))
        rate, dropout = rng.gamma(0.5, 1 / 5.0), rng.beta(1.0, 3.0)
        day = float(first)
        while day < 546:
            lines.append(f"{c:05d} {(start + pd.Timedelta(days=int(day))):%Y%m%d} 1 {10 + 30 * rng.random():.2f}")
            day += 7 * rng.exponential(1 / rate)
            if rng.random() < dropout:
                break
    path.write_text("\n".join(lines) + "\n")
