"""Invoice lines as one tidy frame: what every analytics part (forecasts, lifetime value, churn,
basket rules, price sensitivity) reads, whether from a file or from the store.

The frame, :data:`TRANSACTION_COLUMNS`, one row per invoice line:

- ``invoice_id`` (str), ``customer_id`` (str, ``""`` for a guest), ``item_id`` (str),
  ``description`` (str), ``country`` (str);
- ``timestamp`` (datetime64[ns], naive, shop time);
- ``quantity`` (int64, > 0 for a sale), ``unit_price`` (float64), ``amount`` (quantity × price);
- ``is_return`` (bool): the line takes goods back.

Returns, explicitly: Online Retail marks a cancellation by an invoice number starting with ``C``
and a negative quantity. Such a line is kept with ``is_return=True`` and its quantity and amount
made negative, whichever of the two signals it carries, so that summing ``quantity`` per week
gives *net* demand, and a reader wanting gross sales filters ``~is_return``. Lines with a
price ≤ 0 (bad-debt adjustments, free samples, damaged-stock write-offs with quantity < 0 and
no cancellation prefix) are neither sales nor returns of a product: they are dropped and
counted in :attr:`RetailFile.dropped`.

Both header sets are accepted: Online Retail (``InvoiceNo, UnitPrice, CustomerID``) and
Online Retail II (``Invoice, Price, Customer ID``).

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = path.write_text(
    ...     "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\\n"
    ...     "1,A,MUG,2,2010-12-01 08:00,1.5,17850.0,UK\\n"
    ...     "C2,A,MUG,-1,2010-12-02 08:00,1.5,17850.0,UK\\n")
    >>> file = read_retail_transactions(path)
    >>> file.frame[["customer_id", "quantity", "amount", "is_return"]].values.tolist()
    [['17850', 2, 3.0, False], ['17850', -1, -1.5, True]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shoplm.errors import InputError

TRANSACTION_COLUMNS = [
    "invoice_id",
    "customer_id",
    "item_id",
    "description",
    "country",
    "timestamp",
    "quantity",
    "unit_price",
    "amount",
    "is_return",
]

#: Online Retail's header -> the same column in Online Retail II.
_RETAIL_II_NAMES = {"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}
_RETAIL_COLUMNS = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]


@dataclass
class RetailFile:
    """A retail file read as transactions, with what was left out and why."""

    frame: pd.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)
    currency: str = "GBP"


def normalize_retail_columns(raw: pd.DataFrame, *, source: Path | str = "") -> pd.DataFrame:
    """Rename Online Retail II's headers to Online Retail's; raise naming what is missing."""
    renamed = raw.rename(columns={new: old for old, new in _RETAIL_II_NAMES.items() if new in raw.columns})
    missing = [c for c in _RETAIL_COLUMNS if c not in renamed.columns]
    if missing:
        raise InputError(
            "not the UCI Online Retail layout (or Online Retail II's): missing " + ", ".join(missing),
            path=source or None,
        )
    return renamed


def read_retail_transactions(path: str | Path) -> RetailFile:
    """Read an Online Retail (or Online Retail II) CSV, optionally gzipped, as transactions.

    Args:
        path: the CSV(.gz) file.

    Returns:
        The frame (see the module docstring) and the count of each kind of dropped line.

    Raises:
        InputError: the file is missing, has other columns, or holds no usable line.
    """
    source = Path(path)
    if not source.is_file():
        raise InputError("no such file", path=source)
    try:
        raw = pd.read_csv(source, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        raw = pd.read_csv(source, dtype=str, keep_default_na=False, encoding="latin-1")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"unreadable CSV ({exc})", path=source) from exc
    return transactions_from_retail(normalize_retail_columns(raw, source=source), source=source)


def transactions_from_retail(raw: pd.DataFrame, *, source: Path | str = "") -> RetailFile:
    """Online Retail's columns (strings) -> the transactions frame. See :func:`read_retail_transactions`."""
    quantity = pd.to_numeric(raw["Quantity"], errors="coerce")
    price = pd.to_numeric(raw["UnitPrice"], errors="coerce")
    timestamp = pd.to_datetime(raw["InvoiceDate"], errors="coerce", format="mixed")
    invoice = raw["InvoiceNo"].astype(str).str.strip()
    cancelled = invoice.str.upper().str.startswith("C")
    unreadable = quantity.isna() | price.isna() | timestamp.isna() | (raw["StockCode"].str.strip() == "")
    zero = ~unreadable & (quantity == 0)
    no_price = ~unreadable & ~zero & (price <= 0)
    keep = ~(unreadable | zero | no_price)
    dropped = {
        "unreadable": int(unreadable.sum()),
        "zero_quantity": int(zero.sum()),
        "price_not_positive": int(no_price.sum()),
    }
    is_return = (cancelled | (quantity < 0))[keep].to_numpy()
    magnitude = quantity[keep].abs().astype(np.int64).to_numpy()
    signed = np.where(is_return, -magnitude, magnitude)
    unit_price = price[keep].astype(np.float64).to_numpy()
    frame = pd.DataFrame(
        {
            "invoice_id": invoice[keep].to_numpy(),
            "customer_id": raw["CustomerID"][keep].str.strip().str.replace(r"\.0$", "", regex=True).to_numpy(),
            "item_id": raw["StockCode"][keep].str.strip().to_numpy(),
            "description": raw["Description"][keep].str.strip().to_numpy(),
            "country": raw["Country"][keep].str.strip().to_numpy(),
            "timestamp": timestamp[keep].to_numpy(),
            "quantity": signed,
            "unit_price": unit_price,
            "amount": np.round(signed * unit_price, 4),
            "is_return": is_return,
        }
    )
    if frame.empty:
        raise InputError("no usable invoice line (every line lacks a quantity, a price or a date)", path=source or None)
    frame = frame.sort_values(["timestamp", "invoice_id"], kind="stable").reset_index(drop=True)
    return RetailFile(frame=frame[TRANSACTION_COLUMNS], dropped=dropped)


#: Order statuses whose goods did not stay with the customer.
REVERSED_STATUSES = frozenset({"cancelled", "refunded", "returned"})


def transactions_from_order_lines(lines: pd.DataFrame) -> RetailFile:
    """The store's order lines (``store.orders.all_lines()``) as the transactions frame.

    Returns, explicitly. A cancelled, refunded or returned order was changed in place (the shop
    set the status on the order itself): its goods did not stay with the customer, so its lines
    are left out and counted in ``dropped["reversed_orders"]``. An order of status ``reversal``
    is a separate record taking back goods of an earlier order (Online Retail's cancellation
    invoices, which the importer stores so): its lines are kept as returns, with negative
    quantity and amount and ``is_return`` set, so sums give net demand as from the file.

    A currency other than the most common one is left out too (``"other_currency"``): sums over
    mixed currencies mean nothing, and converting needs rates the store does not have.

    Args:
        lines: columns order_id, user_id, status, currency, country, created_ms, item_id,
            quantity, unit_price, title.

    Returns:
        The frame, the dropped counts and the currency kept.
    """
    if lines.empty:
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in TRANSACTION_COLUMNS})
        return RetailFile(frame=empty, dropped={}, currency="")
    currency_counts = lines["currency"].fillna("").value_counts()
    currency = str(currency_counts.index[0])
    reversed_order = lines["status"].isin(REVERSED_STATUSES)
    reversal = (lines["status"] == "reversal").to_numpy()
    other_currency = ~reversed_order & (lines["currency"].fillna("") != currency)
    no_sale = ~reversed_order & ~other_currency & ((lines["quantity"] <= 0) | (lines["unit_price"] <= 0))
    keep = ~(reversed_order | other_currency | no_sale)
    kept = lines[keep]
    sign = np.where(reversal[keep.to_numpy()], -1, 1)
    frame = pd.DataFrame(
        {
            "invoice_id": kept["order_id"].astype(str),
            "customer_id": kept["user_id"].fillna("").astype(str),
            "item_id": kept["item_id"].astype(str),
            "description": kept["title"].fillna("").astype(str),
            "country": kept["country"].fillna("").astype(str),
            "timestamp": pd.to_datetime(kept["created_ms"], unit="ms"),
            "quantity": sign * kept["quantity"].astype(np.int64),
            "unit_price": kept["unit_price"].astype(np.float64),
            "amount": (sign * kept["quantity"] * kept["unit_price"]).round(4),
            "is_return": sign < 0,
        }
    ).reset_index(drop=True)
    dropped = {
        "reversed_orders": int(reversed_order.sum()),
        "other_currency": int(other_currency.sum()),
        "no_sale": int(no_sale.sum()),
    }
    return RetailFile(frame=frame, dropped=dropped, currency=currency)


def check_transactions(frame: pd.DataFrame) -> pd.DataFrame:
    """Raise :class:`InputError` unless ``frame`` has the transactions columns; return it."""
    missing = [c for c in TRANSACTION_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError("transactions frame lacks columns: " + ", ".join(missing))
    return frame
