from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shoplm.config import Settings
from shoplm.errors import InputError
from shoplm.ingest.pipeline import flag_bursts, ingest
from shoplm.store import Store

NOW = int(time.time())


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


EVENTS_CSV = (
    "event_id,user_id,item_id,event_type,timestamp,session_id,query\n"
    "e1,U1,i1,view,2024-03-01T10:00:00Z,s1,\n"
    "e2,U1,i2,purchase,1709287200,s1,\n"
    "e3,U2,,search,2024-03-01T11:00:00+08:00,s2,red dress\n"
)


def test_good_file_lands_and_report_balances(tmp_path: Path, store: Store, settings: Settings) -> None:
    report = ingest("events", write(tmp_path / "events.csv", EVENTS_CSV), store=store, settings=settings)
    assert (report.read, report.accepted, report.rejected, report.duplicates) == (3, 3, 0, 0)
    assert report.rejects_path is None
    events = store.events.frame(["event_id", "item_id", "event_type", "ts_ms"])
    assert sorted(events["event_id"]) == ["e1", "e2", "e3"]
    stamps = dict(zip(events["event_id"], events["ts_ms"], strict=True))
    assert stamps["e1"] == 1709287200000 and stamps["e2"] == 1709287200000  # ISO and epoch agree
    assert stamps["e3"] == 1709262000000  # +08:00 converted to UTC


def test_same_file_twice_adds_nothing(tmp_path: Path, store: Store, settings: Settings) -> None:
    path = write(tmp_path / "events.csv", EVENTS_CSV)
    ingest("events", path, store=store, settings=settings)
    again = ingest("events", path, store=store, settings=settings)
    assert (again.read, again.accepted, again.duplicates) == (3, 0, 3)
    assert store.count("events") == 3


def test_events_without_ids_are_deduplicated_by_content(tmp_path: Path, store: Store, settings: Settings) -> None:
    text = "user_id,item_id,event_type,timestamp\nU1,i1,view,1709287200\nU1,i1,view,1709287200\nU1,i1,view,1709287201\n"
    report = ingest("events", write(tmp_path / "e.csv", text), store=store, settings=settings)
    assert (report.accepted, report.duplicates) == (2, 1)
    assert ingest("events", tmp_path / "e.csv", store=store, settings=settings).accepted == 0


def test_bad_rows_go_to_rejects_file_with_line_field_reason(tmp_path: Path, store: Store, settings: Settings) -> None:
    future = NOW + 10 * 86400
    text = (
        "item_id,title,price,stock\n"
        "1,Mug,3.5,2\n"
        "2,Cup,-4,1\n"  # line 3: negative price
        "3,,1,1\n"  # line 4: no title
        "4,Plate,abc,1\n"  # line 5: not a number
        "5,Bowl,1,2,extra\n"  # line 6: too many fields
    )
    report = ingest("items", write(tmp_path / "items.csv", text), store=store, settings=settings)
    assert (report.read, report.accepted, report.rejected) == (5, 1, 4)
    rejects = pd.read_csv(report.rejects_path)
    assert report.rejects_path == tmp_path / "items.csv.rejects.csv"
    by_line = {row.line: (row.field, row.reason) for row in rejects.itertuples()}
    assert by_line[3] == ("price", "price: negative: -4")
    assert by_line[4][0] == "title" and "required" in by_line[4][1]
    assert "not a number: 'abc'" in by_line[5][1]
    assert "has 5 fields, the header has 4" in by_line[6][1]
    assert store.items.catalog()["item_id"].tolist() == ["1"]
    events = f"user_id,item_id,event_type,timestamp\nU1,i1,view,{future}\n"
    report = ingest("events", write(tmp_path / "ev.csv", events), store=store, settings=settings)
    assert report.rejected == 1 and "in the future" in report.rejects.iloc[0]["reason"]


def test_event_rules_across_fields(tmp_path: Path, store: Store, settings: Settings) -> None:
    text = (
        "user_id,item_id,event_type,timestamp,value\n"
        "U1,,view,1709287200,\n"  # a view needs an item
        "U1,i1,rate,1709287200,9\n"  # rating out of range
        "U1,i1,like,1709287200,\n"  # unknown type
        "U1,i1,rate,1709287200,4\n"
    )
    report = ingest("events", write(tmp_path / "e.csv", text), store=store, settings=settings)
    reasons = report.rejects["reason"].tolist()
    assert report.accepted == 1
    assert any("item_id: required for this event type" in r for r in reasons)
    assert any("value from 1 to 5" in r for r in reasons)
    assert any("unknown value 'like'" in r for r in reasons)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"user_id,item_id,event_type,timestamp\n", "header but no rows"),
        (b"who,what\nU1,i1\n", "missing required column(s) 'user_id'"),
        ("user_id,item_id,event_type,timestamp\nU1,\xe6\xaf\x9b\xe8,view,1\n".encode("latin-1"), None),
    ],
)
def test_file_level_problems_are_clear_errors_and_store_nothing(
    tmp_path: Path, store: Store, settings: Settings, content: bytes, message: str | None
) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        ingest("events", path, store=store, settings=settings)
    assert str(path) in str(caught.value)
    if message:
        assert message in str(caught.value)
    assert store.count("events") == 0


def test_wrong_encoding_names_the_line(tmp_path: Path, store: Store, settings: Settings) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes("item_id,title\n1,Mug\n2,红色杯子\n".encode("gbk"))
    with pytest.raises(InputError, match=r"items.csv:3: not valid utf-8.*GBK"):
        ingest("items", path, store=store, settings=settings)
    report = ingest("items", path, store=store, settings=settings, encoding="gbk")
    assert report.accepted == 2
    assert "红色杯子" in store.items.catalog()["title"].tolist()


def test_truncated_parquet_is_a_clear_error(tmp_path: Path, store: Store, settings: Settings) -> None:
    path = tmp_path / "events.parquet"
    frame = pd.DataFrame({"user_id": ["U1"] * 100, "item_id": "i", "event_type": "view", "timestamp": 1709287200})
    pq.write_table(pa.Table.from_pandas(frame), path)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(InputError, match="not a readable Parquet file"):
        ingest("events", path, store=store, settings=settings)
    assert store.count("events") == 0


def test_parquet_jsonl_and_dataframe_agree(tmp_path: Path, store: Store, settings: Settings) -> None:
    frame = pd.DataFrame(
        {
            "event_id": ["a", "b"],
            "user_id": ["U1", "U2"],
            "item_id": ["i1", "i2"],
            "event_type": ["view", "click"],
            "timestamp": pd.to_datetime(["2024-03-01T10:00:00Z", "2024-03-02T10:00:00Z"]),
        }
    )
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "e.parquet")
    rows = frame.assign(timestamp=frame["timestamp"].astype(str), event_id=["c", "d"])
    (tmp_path / "e.jsonl").write_text("\n".join(json.dumps(r) for r in rows.to_dict("records")) + "\n{broken\n")
    assert ingest("events", tmp_path / "e.parquet", store=store, settings=settings).accepted == 2
    jsonl = ingest("events", tmp_path / "e.jsonl", store=store, settings=settings)
    assert (jsonl.accepted, jsonl.rejected) == (2, 1)
    assert jsonl.rejects.iloc[0]["line"] == 3 and "not valid JSON" in jsonl.rejects.iloc[0]["reason"]
    assert ingest("events", frame.assign(event_id=["e", "f"]), store=store, settings=settings).accepted == 2
    stamps = store.frame("events", ["event_id", "ts_ms"]).set_index("event_id")["ts_ms"]
    assert stamps["a"] == stamps["c"] == stamps["e"] == 1709287200000


def test_duplicated_ids_in_one_file_keep_the_last(tmp_path: Path, store: Store, settings: Settings) -> None:
    text = "item_id,title,price\n1,Mug,3\n1,Mug v2,4\n2,Cup,1\n"
    report = ingest("items", write(tmp_path / "i.csv", text), store=store, settings=settings)
    assert (report.read, report.accepted, report.duplicates) == (3, 2, 1)
    assert store.items.catalog().set_index("item_id").loc["1", "title"] == "Mug v2"


def test_changed_item_is_updated_and_extra_columns_become_attributes(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    ingest("items", write(tmp_path / "i.csv", "item_id,title,color\n1,Mug,red\n"), store=store, settings=settings)
    report = ingest(
        "items", write(tmp_path / "i.csv", "item_id,title,color\n1,Mug,blue\n"), store=store, settings=settings
    )
    assert (report.inserted, report.updated) == (0, 1)
    item = store.items.catalog().iloc[0]
    assert json.loads(item["attributes"]) == {"color": "blue"}
    assert item["language"] == "en"
    assert report.warnings == ["unknown column(s) color: kept as attributes"]


def test_bot_bursts_are_flagged_not_dropped(tmp_path: Path, store: Store, settings: Settings) -> None:
    rows = [f"BOT,i{n},view,{1709287200 + n}" for n in range(40)] + ["HUMAN,i1,view,1709287200"]
    report = ingest(
        "events",
        write(tmp_path / "e.csv", "user_id,item_id,event_type,timestamp\n" + "\n".join(rows)),
        store=store,
        settings=settings,
    )
    assert report.accepted == 41 and report.flagged_bots == 40
    flagged = store.frame("events", ["suspected_bot"])["suspected_bot"]
    assert int(flagged.sum()) == 40


def test_flag_bursts_needs_enough_events_inside_the_window() -> None:
    import numpy as np

    users = np.array(["a"] * 5)
    assert not flag_bursts(users, np.array([0, 100, 200, 300, 400]), min_events=3, window_ms=150).any()
    assert flag_bursts(users, np.array([0, 10, 20, 300, 400]), min_events=3, window_ms=150).tolist() == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_orders_group_lines_and_follow_status_changes(tmp_path: Path, store: Store, settings: Settings) -> None:
    header = "order_id,user_id,status,item_id,quantity,unit_price,created_at,country\n"
    body = "o1,U1,paid,i1,2,10.0,2024-03-01T10:00:00Z,CN\no1,U1,paid,i2,1,5.5,2024-03-01T10:00:00Z,CN\n"
    body += "o2,,delivered,i3,1,3,2024-03-02T10:00:00Z,GB\n"
    report = ingest("orders", write(tmp_path / "o.csv", header + body), store=store, settings=settings)
    assert (report.read, report.accepted) == (3, 3)
    orders = store.frame("orders").set_index("order_id")
    assert orders.loc["o1", "total_amount"] == 25.5
    assert orders.loc["o2", "user_id"] is None  # a guest checkout
    assert store.count("order_lines") == 3
    again = ingest("orders", tmp_path / "o.csv", store=store, settings=settings)
    assert again.duplicates == 3
    shipped = body.replace("paid", "shipped")
    changed = ingest("orders", write(tmp_path / "o.csv", header + shipped), store=store, settings=settings)
    assert (changed.updated, changed.duplicates) == (2, 1)
    assert store.frame("orders").set_index("order_id").loc["o1", "status"] == "shipped"
    assert store.count("order_lines") == 3


def test_order_lines_straddling_chunks_stay_one_order(tmp_path: Path, store: Store) -> None:
    settings = Settings(data_dir=tmp_path / "d", pseudonymization_key="k", ingest={"chunk_rows": 2})
    header = "order_id,user_id,status,item_id,quantity,unit_price,created_at\n"
    lines = [f"o{n // 3},U1,paid,i{n},1,1.0,2024-03-01T10:00:00Z" for n in range(9)]
    report = ingest("orders", write(tmp_path / "o.csv", header + "\n".join(lines)), store=store, settings=settings)
    assert report.accepted == 9
    totals = store.frame("orders").set_index("order_id")["total_amount"].to_dict()
    assert totals == {"o0": 3.0, "o1": 3.0, "o2": 3.0}


def test_conversations_make_conversations_and_messages(tmp_path: Path, store: Store, settings: Settings) -> None:
    rows = [
        {
            "conversation_id": "c1",
            "role": "customer",
            "text": "where is order A1? mail me at x@y.com",
            "timestamp": 1709287200,
            "user_id": "U1",
        },
        {"conversation_id": "c1", "role": "agent", "text": "It shipped.", "timestamp": 1709287260},
    ]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    report = ingest("conversations", tmp_path / "c.jsonl", store=store, settings=settings)
    assert report.accepted == 2
    conversation = store.frame("conversations").iloc[0]
    assert conversation["started_ms"] == 1709287200000 and conversation["user_id"].startswith("u_")
    texts = store.frame("messages", ["text"], order_by=["ts_ms"])["text"].tolist()
    assert texts == ["where is order A1? mail me at [email]", "It shipped."]


def test_unknown_kind_and_missing_file(tmp_path: Path, store: Store, settings: Settings) -> None:
    with pytest.raises(InputError, match="unknown kind 'clicks'"):
        ingest("clicks", tmp_path / "x.csv", store=store, settings=settings)
    with pytest.raises(InputError, match="no such file"):
        ingest("items", tmp_path / "missing.csv", store=store, settings=settings)


def test_a_big_checkout_is_not_a_bot_burst(tmp_path: Path, store: Store, settings: Settings) -> None:
    rows = [f"SHOPPER,i{n},purchase,1709287200" for n in range(60)]
    report = ingest(
        "events",
        write(tmp_path / "e.csv", "user_id,item_id,event_type,timestamp\n" + "\n".join(rows)),
        store=store,
        settings=settings,
    )
    assert report.accepted == 60 and report.flagged_bots == 0


def test_an_older_orders_file_does_not_undo_a_newer_state(tmp_path: Path, store: Store, settings: Settings) -> None:
    header = "order_id,user_id,status,item_id,quantity,unit_price,created_at,updated_at\n"
    old = "o1,U1,paid,i1,1,5.0,2024-03-01T10:00:00Z,2024-03-01T10:00:00Z\n"
    ingest("orders", write(tmp_path / "o.csv", header + old), store=store, settings=settings)
    newer = old.replace("paid", "cancelled").replace("10:00:00Z\n", "12:00:00Z\n")
    assert ingest("orders", write(tmp_path / "n.csv", header + newer), store=store, settings=settings).updated == 1
    again = ingest("orders", tmp_path / "o.csv", store=store, settings=settings)
    assert (again.updated, again.duplicates) == (0, 1)
    assert "older than the stored state" in again.warnings[0]
    assert store.frame("orders").iloc[0]["status"] == "cancelled"


def test_absurd_numbers_are_rejected_not_crashing(tmp_path: Path, store: Store, settings: Settings) -> None:
    events = "user_id,item_id,event_type,timestamp\nU1,i1,view,32503680000000\nU1,i1,view,1e300\nU1,i1,view,inf\n"
    report = ingest("events", write(tmp_path / "e.csv", events), store=store, settings=settings)
    assert report.rejected == 3
    reasons = report.rejects["reason"].tolist()
    assert "in the future: 3000-01-01" in reasons[0]
    assert all("timestamp" in r for r in reasons)
    items = "item_id,title,price,stock\n1,Mug,inf,1\n2,Cup,1,1e30\n3,Bowl,2,3\n"
    report = ingest("items", write(tmp_path / "i.csv", items), store=store, settings=settings)
    assert (report.accepted, report.rejected) == (1, 2)
    assert "stock: too large" in report.rejects["reason"].tolist()[1]


def test_reviews_without_ratings_land_with_a_null_rating(tmp_path: Path, store: Store, settings: Settings) -> None:
    rows = [
        {"item_id": "I1", "user_id": "U1", "text": "good kettle", "timestamp": "2026-01-01T00:00:00Z"},
        {"item_id": "I1", "user_id": "U2", "text": "很好", "timestamp": "2026-01-02T00:00:00Z"},
    ]
    path = write(tmp_path / "reviews.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    report = ingest("reviews", path, store=store, settings=settings)
    assert report.accepted == 2
    stored = store.frame("reviews", ["review_id", "rating"])
    assert stored["rating"].isna().all() and stored["review_id"].str.startswith("r_").all()
