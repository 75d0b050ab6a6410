from __future__ import annotations

from pathlib import Path

import pytest

from shoplm.config import Settings
from shoplm.ingest.pipeline import ingest
from shoplm.ingest.pseudonymize import Pseudonymizer, mask_pii
from shoplm.store import Store

RAW_EMAILS = ["ann.lee@example.com", "wang.fang@qq.com"]
RAW_PHONES = ["+86 138 0013 8000", "13912345678", "(555) 123-4567"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail ann@example.com now", "mail [email] now"),
        ("我的手机是138-0013-8000，邮箱 a.b@qq.com", "我的手机是[phone]，邮箱 [email]"),
        ("call +44 20 7946 0958.", "call [phone]."),
        ("call (555) 123-4567", "call [phone]"),
        ("order 2024-05-01 cost 12.50, ticket #1234567, order ORD20240501123", None),
    ],
)
def test_mask_pii(text: str, expected: str | None) -> None:
    assert mask_pii(text) == (text if expected is None else expected)


def test_pseudonyms_are_keyed_stable_and_format_insensitive() -> None:
    a, b = Pseudonymizer(b"key-a"), Pseudonymizer(b"key-b")
    assert a.user("U1") == a.user(" U1 ") != b.user("U1")
    assert a.email("Ann@Example.com") == a.email("ann@example.com")
    assert a.phone("+86 138-0013-8000") == a.phone("+8613800138000")
    with pytest.raises(ValueError, match="empty"):
        Pseudonymizer(b"")


def test_no_raw_pii_anywhere_in_the_database_file(tmp_path: Path, store: Store, settings: Settings) -> None:
    users = "user_id,email,phone,country,nickname\n"
    users += f"CUST-0001,{RAW_EMAILS[0]},{RAW_PHONES[0]},CN,call me at {RAW_PHONES[1]}\n"
    users += f"CUST-0002,{RAW_EMAILS[1]},{RAW_PHONES[2]},US,x\n"
    (tmp_path / "users.csv").write_text(users)
    reviews = "item_id,user_id,rating,text,timestamp\n"
    reviews += f'i1,CUST-0001,5,"很好! 有问题联系 {RAW_EMAILS[1]} 或 {RAW_PHONES[1]}",1709287200\n'
    (tmp_path / "reviews.csv").write_text(reviews)
    events = f"user_id,item_id,event_type,timestamp,query\nCUST-0002,,search,1709287200,my email {RAW_EMAILS[0]}\n"
    (tmp_path / "events.csv").write_text(events)
    for kind in ("users", "reviews", "events"):
        assert ingest(kind, tmp_path / f"{kind}.csv", store=store, settings=settings).accepted > 0
    store.close()  # checkpoint the WAL so every byte is in the files we read
    raw = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("shoplm.sqlite*"))
    for secret in [*RAW_EMAILS, *RAW_PHONES, "CUST-0001", "CUST-0002", "13800138000", "13912345678"]:
        assert secret.encode() not in raw, f"{secret!r} reached the database file"
    reopened = Store.open(settings.database_url)
    user_ids = set(reopened.frame("users", ["user_id"])["user_id"])
    assert user_ids == {Pseudonymizer(b"test-key").user("CUST-0001"), Pseudonymizer(b"test-key").user("CUST-0002")}
    review = reopened.frame("reviews", ["text", "user_id", "language"]).iloc[0]
    assert review["text"] == "很好! 有问题联系 [email] 或 [phone]"
    assert review["user_id"] in user_ids and review["language"] == "zh"
    assert "[phone]" in reopened.frame("users", ["attributes"])["attributes"].str.cat()


def test_same_key_same_pseudonym_across_stores(tmp_path: Path) -> None:
    pseudonyms = []
    for name in ("a", "b"):
        settings = Settings(data_dir=tmp_path / name, pseudonymization_key="shared")
        store = Store.open(settings.database_url)
        (tmp_path / "u.csv").write_text("user_id\nCUST-1\n")
        ingest("users", tmp_path / "u.csv", store=store, settings=settings)
        pseudonyms.append(store.frame("users", ["user_id"])["user_id"].iloc[0])
    assert pseudonyms[0] == pseudonyms[1]
