"""Tiny generated shops in the transactions layout and as Online Retail CSV files (no shared data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from shoplm.ingest.transactions import TRANSACTION_COLUMNS

START = pd.Timestamp("2024-01-01 09:00")
#: (items always bought together, their unit price)
PAIRS = [(("A", "B"), 3.0), (("C", "D"), 2.0)]
NAMES = {"A": "RED TEAPOT", "B": "RED TEACUP", "C": "GARDEN GLOVES", "D": "GARDEN SPADE"}


def line(invoice: str, customer: str, item: str, day: float, quantity: int = 1, price: float = 2.0) -> dict:
    """One row of the transactions frame (a return when the quantity is negative)."""
    return {
        "invoice_id": invoice,
        "customer_id": customer,
        "item_id": item,
        "description": NAMES.get(item, f"PLAIN THING {item}"),
        "country": "United Kingdom",
        "timestamp": START + pd.Timedelta(days=day),
        "quantity": quantity,
        "unit_price": price,
        "amount": quantity * price,
        "is_return": quantity < 0,
    }


def paired_shop(
    invoices: int = 120, customers: int = 30, days: int = 90, seed: int = 0, fillers: int = 8, pairs: int = 2
) -> pd.DataFrame:
    """Invoices each holding one of ``pairs`` pairs (both items, always) plus 0-2 of ``fillers`` random items.

    The first two pairs are :data:`PAIRS`; more are ``P{i}a`` + ``P{i}b``.
    """
    rng = np.random.default_rng(seed)
    filler_items = [f"F{i}" for i in range(fillers)]
    all_pairs = [*PAIRS, *(((f"P{i}a", f"P{i}b"), 1.0) for i in range(2, pairs))][:pairs]
    rows = []
    for n in range(invoices):
        pair, price = all_pairs[n % len(all_pairs)]
        customer = f"{int(rng.integers(customers)):05d}"
        day = float(rng.uniform(0, days))
        extra = rng.choice(filler_items, size=int(rng.integers(0, 3)), replace=False)
        for item in [*pair, *extra]:
            rows.append(line(str(500_000 + n), customer, str(item), day, int(rng.integers(1, 5)), price))
    return pd.DataFrame(rows, columns=TRANSACTION_COLUMNS).sort_values("timestamp", ignore_index=True)


def write_retail_csv(frame: pd.DataFrame, path: Path) -> Path:
    """The frame in Online Retail's columns (a return as a ``C`` invoice with a negative quantity)."""
    invoice = np.where(frame["is_return"], "C" + frame["invoice_id"], frame["invoice_id"])
    pd.DataFrame(
        {
            "InvoiceNo": invoice,
            "StockCode": frame["item_id"],
            "Description": frame["description"],
            "Quantity": frame["quantity"],
            "InvoiceDate": frame["timestamp"].dt.strftime("%m/%d/%Y %H:%M"),
            "UnitPrice": frame["unit_price"],
            "CustomerID": frame["customer_id"].where(frame["customer_id"] == "", frame["customer_id"] + ".0"),
            "Country": frame["country"],
        }
    ).to_csv(path, index=False)
    return path
