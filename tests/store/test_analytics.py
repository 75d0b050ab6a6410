"""Analytics results in the store, and the store's orders read back as the transactions frame."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shoplm.config import Settings
from shoplm.ingest.pipeline import ingest
from shoplm.ingest.transactions import TRANSACTION_COLUMNS, transactions_from_order_lines
from shoplm.store import Store


def test_a_report_is_replaced_whole(any_store: Store) -> None:
    assert any_store.analytics.report("segments") is None
    any_store.analytics.save_report("segments", {"segments": [1, 2, 3]})
    any_store.analytics.save_report("segments", {"segments": [4]})
    assert any_store.analytics.report("segments")["body"] == {"segments": [4]}
    assert any_store.analytics.report_names() == ["segments"]


def test_user_scores_are_replaced_per_kind_and_ranked(any_store: Store) -> None:
    first = pd.DataFrame({"user_id": ["a", "b", "c"], "score": [0.2, 0.9, 0.5], "reasons": [["x"], ["y"], []]})
    any_store.analytics.replace_user_scores("churn", first)
    any_store.analytics.replace_user_scores("other", pd.DataFrame({"user_id": ["a"], "score": [1.0]}))
    top = any_store.analytics.top_user_scores("churn", limit=2)
    assert [(row["user_id"], row["reasons"]) for row in top] == [("b", ["y"]), ("c", [])]
    assert any_store.analytics.count_user_scores("churn", min_score=0.4) == 2
    any_store.analytics.replace_user_scores("churn", pd.DataFrame({"user_id": ["d"], "score": [0.1]}))
    assert any_store.analytics.user_score("churn", "b") is None  # the old run is gone whole
    assert any_store.analytics.user_score("churn", "d")["score"] == 0.1
    assert any_store.analytics.user_score("other", "a")["score"] == 1.0  # other kinds untouched


def test_store_orders_become_kept_goods_in_one_currency(tmp_path: Path, store: Store, settings: Settings) -> None:
    rows = [
        "o1,U1,delivered,i1,2,10.0,2024-03-01T10:00:00Z,GBP",
        "o1,U1,delivered,i2,1,5.5,2024-03-01T10:00:00Z,GBP",
        "o2,,paid,i1,1,10.0,2024-03-02T10:00:00Z,GBP",  # a guest
        "o3,U2,cancelled,i1,4,10.0,2024-03-03T10:00:00Z,GBP",  # goods never kept
        "o4,U2,paid,i2,1,7.0,2024-03-04T10:00:00Z,USD",  # another currency
        "C5,U1,reversal,i2,1,5.5,2024-03-05T10:00:00Z,GBP",  # takes back one i2 of o1
    ]
    path = tmp_path / "orders.csv"
    path.write_text("order_id,user_id,status,item_id,quantity,unit_price,created_at,currency\n" + "\n".join(rows))
    ingest("orders", path, store=store, settings=settings)
    before = store.counts()
    result = transactions_from_order_lines(store.orders.all_lines())
    frame = result.frame
    assert list(frame.columns) == TRANSACTION_COLUMNS
    assert frame["invoice_id"].tolist() == ["o1", "o1", "o2", "C5"]
    assert frame["amount"].tolist() == [20.0, 5.5, 10.0, -5.5]
    assert frame["is_return"].tolist() == [False, False, False, True]
    assert frame.groupby("item_id")["quantity"].sum().to_dict() == {"i1": 3, "i2": 0}  # net demand
    assert frame.loc[2, "customer_id"] == ""
    assert frame["customer_id"].iloc[0] not in ("", "U1")  # the stored id is pseudonymous
    assert result.currency == "GBP"
    assert result.dropped == {"reversed_orders": 1, "other_currency": 1, "no_sale": 0}
    assert store.counts() == before  # reading changes nothing
