"""UCI Online Retail: every invoice line of a UK online shop, 2010-12-01 to 2011-12-09.

Columns ``InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID,
Country`` (CSV, optionally gzipped). Mapped to shoplm kinds:

- items: one per StockCode, title = the most frequent description, price = median unit price,
  category = the cluster of its title's text vector, named by keywords (the file has none);
- orders: one per invoice; an invoice number starting with ``C`` takes back goods of an earlier
  invoice (status ``reversal``, quantities made positive: analytics read its lines as returns),
  others are ``delivered``; lines without a customer are guest checkouts;
- events: one ``purchase`` per line of a non-cancelled invoice with a customer.

Rows the core rejects (for example the "Adjust bad debt" lines with a negative price) land
in the rejects files under ``data_dir/rejects`` with their reasons.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shoplm.config import Settings
from shoplm.errors import InputError
from shoplm.ingest.pipeline import IngestReport, ProgressCallback, ingest
from shoplm.ingest.transactions import normalize_retail_columns
from shoplm.store import Store


def read_retail(path: Path) -> pd.DataFrame:
    """The raw file as strings, checked for the expected columns (Online Retail II's are renamed)."""
    if not path.is_file():
        raise InputError("no such file", path=path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="latin-1")
    return normalize_retail_columns(frame, source=path)


def derived_categories(titles: list[str], settings: Settings) -> list[str]:
    """A category per title: the titles' text vectors clustered and each cluster named by its keywords.

    Online Retail has no category column, and the rest of shoplm (pricing, segments, forecasts,
    the recommenders' diversity) reads categories. The vectors come from the configured encoder
    (cached, so a re-import encodes nothing new); without an installed encoder, TF-IDF vectors
    stand in (see :mod:`shoplm.lm.categories`, which also says how k is chosen).
    """
    from shoplm.errors import ModelNotFoundError
    from shoplm.lm import load_encoder
    from shoplm.lm.categories import derive_categories

    if len(titles) < 2:
        return ["all"] * len(titles)
    try:
        vectors = load_encoder(settings).encode(titles, mode="passage")
    except ModelNotFoundError:
        vectors = None
    return derive_categories(titles, vectors, seed=settings.seed).category_of()


class UciRetailImporter:
    help = "the UCI Online Retail invoice-line file (CSV or .csv.gz)"

    def run(
        self, path: Path, *, store: Store, settings: Settings, progress: ProgressCallback | None = None
    ) -> list[IngestReport]:
        raw = read_retail(Path(path))
        rejects_dir = settings.data_dir / "rejects"
        customer = raw["CustomerID"].str.replace(r"\.0$", "", regex=True)
        cancelled = raw["InvoiceNo"].str.startswith("C")
        quantity = pd.to_numeric(raw["Quantity"], errors="coerce")
        timestamp = pd.to_datetime(raw["InvoiceDate"], errors="coerce").dt.strftime("%Y-%m-%dT%H:%M:%SZ")

        price = pd.to_numeric(raw["UnitPrice"], errors="coerce")
        items = (
            raw.assign(price=price)
            .groupby("StockCode")
            .agg(
                title=("Description", lambda d: d[d != ""].mode().iat[0] if (d != "").any() else ""),
                price=("price", "median"),
            )
            .reset_index()
            .rename(columns={"StockCode": "item_id"})
        )
        items["title"] = items["title"].where(items["title"] != "", "item " + items["item_id"])
        items["category"] = derived_categories(items["title"].tolist(), settings)
        items["currency"] = "GBP"
        reports = [
            ingest("items", items, store=store, settings=settings, rejects_path=rejects_dir / "retail-items.csv")
        ]

        orders = pd.DataFrame(
            {
                "order_id": raw["InvoiceNo"],
                "user_id": customer,
                "status": cancelled.map({True: "reversal", False: "delivered"}),
                "item_id": raw["StockCode"],
                "quantity": quantity.abs().astype("Int64").astype(str),
                "unit_price": raw["UnitPrice"],
                "created_at": timestamp,
                "currency": "GBP",
                "country": raw["Country"],
            }
        )
        reports.append(
            ingest(
                "orders",
                orders,
                store=store,
                settings=settings,
                rejects_path=rejects_dir / "retail-orders.csv",
                progress=progress,
            )
        )
        bought = ~cancelled & (customer != "") & (quantity > 0)
        events = pd.DataFrame(
            {
                "event_id": "inv-" + raw["InvoiceNo"] + "-" + raw.index.astype(str),
                "user_id": customer,
                "item_id": raw["StockCode"],
                "event_type": "purchase",
                "timestamp": timestamp,
                "value": (quantity * price).round(2).astype(str),
                "session_id": raw["InvoiceNo"],
            }
        )[bought]
        reports.append(
            ingest("events", events, store=store, settings=settings, rejects_path=rejects_dir / "retail-events.csv")
        )
        return reports
