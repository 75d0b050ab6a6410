from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from shoplm.config import Settings
from shoplm.errors import InputError
from shoplm.ingest.importers import available_importers, load_importer
from shoplm.store import Store


def make_amazon_dir(root: Path) -> Path:
    root.mkdir()
    (root / "sequences.txt").write_text("1 1 2 3\n2 2 3 4 2\n3 4 1\n")
    (root / "items.tsv").write_text(
        "item_id\tasin\ttitle_prefix\n1\tA1\tlego star ship\n2\tA2\tdoll house\n3\tA3\tpuzzle 1000\n4\tA4\t\n"
    )
    (root / "item2attributes.json").write_text(json.dumps({"1": [5, 6], "2": [7]}))
    return root


def test_importers_are_entry_points() -> None:
    assert {"amazon-seq", "uci-retail"} <= set(available_importers())
    with pytest.raises(InputError, match="no importer named 'nope'"):
        load_importer("nope")


def test_amazon_sequences_keep_order_and_titles(tmp_path: Path, store: Store, settings: Settings) -> None:
    reports = load_importer("amazon-seq").run(make_amazon_dir(tmp_path / "toys"), store=store, settings=settings)
    assert [r.kind for r in reports] == ["items", "events"]
    assert reports[1].accepted == 9  # the repeated item 2 of user 2 is a second event, not a duplicate
    catalog = store.items.catalog().set_index("item_id")
    assert catalog.loc["1", "title"] == "lego star ship"
    assert catalog.loc["4", "title"] == "item 4"  # empty text gets a placeholder title
    assert json.loads(catalog.loc["1", "attributes"]) == {"attribute_ids": [5, 6]}
    events = store.events.frame(["user_id", "item_id", "ts_ms"])
    sequences = events.groupby("user_id", sort=False)["item_id"].apply(list).tolist()
    assert sorted(sequences) == sorted([["1", "2", "3"], ["2", "3", "4", "2"], ["4", "1"]])
    again = load_importer("amazon-seq").run(tmp_path / "toys", store=store, settings=settings)
    assert sum(r.accepted for r in again) == 0


def test_malformed_sequences_file_names_the_line(tmp_path: Path, store: Store, settings: Settings) -> None:
    root = make_amazon_dir(tmp_path / "toys")
    (root / "sequences.txt").write_text("1 1 2\n2\n")
    with pytest.raises(InputError, match=r"sequences.txt:2: a user with no items"):
        load_importer("amazon-seq").run(root, store=store, settings=settings)
    assert store.count("events") == 0


UCI = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom
C536379,71053,WHITE METAL LANTERN,-1,2010-12-01 09:41:00,3.39,14527.0,United Kingdom
536400,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,2010-12-01 10:00:00,2.55,,France
A563185,B,Adjust bad debt,1,2011-08-12 14:50:00,-11062.06,,United Kingdom
"""


def test_uci_retail_maps_invoices_and_rejects_bad_debt(tmp_path: Path, store: Store, settings: Settings) -> None:
    path = tmp_path / "online_retail.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(UCI)
    items, orders, events = load_importer("uci-retail").run(path, store=store, settings=settings)
    assert (orders.read, orders.accepted, orders.rejected) == (5, 4, 1)
    assert "unit_price: negative" in orders.rejects.iloc[0]["reason"]
    assert orders.rejects_path == settings.data_dir / "rejects" / "retail-orders.csv"
    table = store.frame("orders").set_index("order_id")
    assert table.loc["C536379", "status"] == "reversal"  # a separate order taking goods back
    assert table.loc["536365", "total_amount"] == pytest.approx(6 * 2.55 + 6 * 3.39)
    assert table.loc["536400", "user_id"] is None  # guest
    assert events.accepted == 2  # purchases of known customers, not cancelled
    assert items.rejected == 1  # the bad-debt pseudo item has a negative price


def test_uci_wrong_layout(tmp_path: Path, store: Store, settings: Settings) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not the UCI Online Retail layout"):
        load_importer("uci-retail").run(tmp_path / "x.csv", store=store, settings=settings)


def test_online_retail_ii_headers_and_derived_categories(tmp_path: Path, store: Store, settings: Settings) -> None:
    rows = [
        ("489434", "M1", "WHITE CERAMIC COFFEE MUG"),
        ("489434", "M2", "BLUE CERAMIC TEA MUG"),
        ("489435", "M3", "LARGE CERAMIC MUG"),
        ("489435", "N1", "PAPER PARTY NAPKINS"),
        ("489436", "N2", "FLORAL PAPER NAPKINS"),
        ("489436", "N3", "CHRISTMAS PAPER NAPKINS"),
    ]
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
    body = "".join(
        f"{inv},{code},{text},2,2010-12-01 08:26:00,1.25,13085.0,United Kingdom\n" for inv, code, text in rows
    )
    (tmp_path / "retail_ii.csv").write_text(header + body)
    items, orders, _events = load_importer("uci-retail").run(tmp_path / "retail_ii.csv", store=store, settings=settings)
    assert (items.accepted, orders.accepted) == (6, 6)
    categories = store.items.catalog(["item_id", "category"]).set_index("item_id")["category"]
    assert categories.notna().all() and (categories != "").all()
    assert 2 <= categories.nunique() <= 5  # clustered, and named by the titles' keywords
    named = " ".join(categories.unique()).lower()
    assert any(word in named for word in ("mug", "ceramic", "napkins", "paper"))
