"""Small generated transactions for the forecast tests: smooth seasonal, intermittent, new and returns-only SKUs."""

from __future__ import annotations

import numpy as np
import pandas as pd

START = pd.Timestamp("2023-01-07")  # a Saturday: weeks run Saturday..Friday


def transactions(weeks: int = 40, seed: int = 0) -> pd.DataFrame:
    """Invoice lines of a small shop, one line per SKU-week with sales, plus return lines.

    SKUs: ``100``-``103`` smooth with a yearly wave and noise (mugs), ``200``-``201`` intermittent
    (candles), ``300`` new in the last 5 weeks (a mug), ``400`` returns only, ``POST`` postage.
    """
    rng = np.random.default_rng(seed)
    rows = []

    def sell(item: str, description: str, week: int, quantity: int, price: float) -> None:
        day = START + pd.Timedelta(weeks=week, days=int(rng.integers(0, 7)))
        rows.append((f"I{len(rows)}", item, description, day, quantity, price))

    for week in range(weeks):
        wave = 1 + 0.3 * np.sin(2 * np.pi * week / 52)
        for k, item in enumerate(["100", "101", "102", "103"]):
            sell(item, f"WHITE CERAMIC MUG {k}", week, int(rng.poisson(20 * wave * (k + 1))) + 1, 2.5)
        for item in ["200", "201"]:
            if rng.random() < 0.3:
                sell(item, "SCENTED CANDLE JAR", week, int(rng.integers(1, 30)), 4.0)
        if week >= weeks - 5:
            sell("300", "BLUE CERAMIC MUG", week, int(rng.poisson(30)) + 1, 2.5)
        if week % 7 == 3:
            sell("400", "BROKEN LAMP", week, -2, 10.0)
        sell("POST", "POSTAGE", week, 1, 18.0)
    # the last day is a Friday, so that every week (Saturday..Friday) is complete
    last = START + pd.Timedelta(weeks=weeks) - pd.Timedelta(days=1)
    rows.append((f"I{len(rows)}", "100", "WHITE CERAMIC MUG 0", last, 1, 2.5))
    frame = pd.DataFrame(rows, columns=["invoice_id", "item_id", "description", "timestamp", "quantity", "unit_price"])
    frame["is_return"] = frame["quantity"] < 0
    frame["amount"] = frame["quantity"] * frame["unit_price"]
    return frame


def retail_csv(path, weeks: int = 40, seed: int = 0):
    """The same lines in the UCI Online Retail layout (returns as C-invoices)."""
    frame = transactions(weeks, seed)
    raw = pd.DataFrame(
        {
            "InvoiceNo": np.where(frame["is_return"], "C" + frame["invoice_id"], frame["invoice_id"]),
            "StockCode": frame["item_id"],
            "Description": frame["description"],
            "Quantity": frame["quantity"],
            "InvoiceDate": frame["timestamp"].dt.strftime("%m/%d/%Y %H:%M"),
            "UnitPrice": frame["unit_price"],
            "CustomerID": "12345.0",
            "Country": "United Kingdom",
        }
    )
    raw.to_csv(path, index=False)
    return path
