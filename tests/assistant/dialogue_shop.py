"""A small shop for the dialogue tests, made in code: users, items, orders in every status, policies.

Users (the shop's ids): ``U1`` (English), ``U2`` (Chinese), ``U3`` (someone else).

========  =====  =========  ============================================
order     user   status     lines
========  =====  =========  ============================================
O0000101  U1     paid       2 × Wireless Noise-Cancelling Headphones
O0000102  U1     shipped    1 × Trail Running Shoes
O0000103  U1     delivered  1 × Ceramic Coffee Mug, 2 × Green Tea
O0000104  U1     pending    1 × Yoga Mat
O0000105  U1     cancelled  1 × Bluetooth Speaker
O0000201  U2     paid       1 × 真丝连衣裙
O0000202  U2     shipped    1 × 不锈钢保温杯
O0000203  U2     delivered  1 × 双肩背包
O0000301  U3     paid       1 × Bluetooth Speaker
O0000401  U4     delivered  1 × Ceramic Coffee Mug (2 days ago: returnable)
O0000402  U4     delivered  1 × Green Tea (2 days ago: food, not returnable)
O0000403  U4     shipped    1 × Wireless Noise-Cancelling Headphones (U4's only open order)
O0000404  U4     delivered  1 × Trail Running Shoes (in March: the return window has passed)
O0000501  U5     shipped    1 × 不锈钢保温杯
O0000502  U5     paid       1 × 真丝连衣裙 (U5's newest order)
========  =====  =========  ============================================

``U4`` (English) viewed the speaker, then the kettle (its last view); ``U5`` (Chinese) has two
open orders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from shoplm.config import Settings
from shoplm.demo.policies import POLICIES
from shoplm.ingest.pipeline import ingest
from shoplm.store import Store

ITEMS = [
    (
        "I001",
        "Wireless Noise-Cancelling Headphones",
        "Over-ear headphones with 40-hour battery",
        "Sonora",
        299.0,
        12,
        "Electronics > Headphones",
        "en",
    ),
    (
        "I002",
        "Trail Running Shoes",
        "Lightweight trail shoes with grippy soles",
        "Stride",
        459.0,
        5,
        "Sports > Shoes",
        "en",
    ),
    ("I003", "Ceramic Coffee Mug", "350 ml mug, dishwasher safe", "Hearth", 39.0, 80, "Kitchen > Mugs", "en"),
    ("I004", "Organic Green Tea 250g", "Spring harvest green tea from Zhejiang", "Leafy", 68.0, 30, "Food > Tea", "en"),
    ("I005", "Extra Thick Yoga Mat", "10 mm non-slip yoga mat", "Flexa", 129.0, 0, "Sports > Yoga", "en"),
    (
        "I006",
        "Portable Bluetooth Speaker",
        "Waterproof speaker, 12-hour battery",
        "Sonora",
        199.0,
        20,
        "Electronics > Speakers",
        "en",
    ),
    ("I007", "真丝连衣裙", "100%桑蚕丝，夏季薄款", "素锦", 899.0, 7, "Fashion > Dresses", "zh"),
    ("I008", "不锈钢保温杯", "500毫升，保温12小时", "暖心", 89.0, 50, "Kitchen > Bottles", "zh"),
    ("I009", "双肩背包", "防泼水，15英寸电脑仓", "行者", 239.0, 15, "Bags > Backpacks", "zh"),
    (
        "I010",
        "Electric Kettle 1.7L",
        "1.7 L electric kettle. Stainless steel inside, automatic shut-off, boils in 4 minutes.",
        "Hearth",
        159.0,
        25,
        "Home > Kitchen",
        "en",
    ),
    (
        "I011",
        "27-inch 4K Monitor",
        "27-inch 4K IPS monitor with 60 Hz refresh. HDMI cable and height-adjustable stand included.",
        "Vista",
        1899.0,
        8,
        "Computers > Monitors",
        "en",
    ),
    ("I012", "Scented Candle Gift Set", "Three soy wax candles in a gift box", "Glow", 45.0, 40, "Home > Decor", "en"),
]
#: Item attributes (stored in the items' ``attributes`` JSON).
ATTRIBUTES = {"I010": {"material": "Stainless steel", "color": "Black"}, "I001": {"color": "Black"}}

ORDERS = [
    ("O0000101", "U1", "paid", [("I001", 2, 299.0)], "12 Harbour Road, Shanghai 200000"),
    ("O0000102", "U1", "shipped", [("I002", 1, 459.0)], "12 Harbour Road, Shanghai 200000"),
    ("O0000103", "U1", "delivered", [("I003", 1, 39.0), ("I004", 2, 68.0)], "12 Harbour Road, Shanghai 200000"),
    ("O0000104", "U1", "pending", [("I005", 1, 129.0)], "12 Harbour Road, Shanghai 200000"),
    ("O0000105", "U1", "cancelled", [("I006", 1, 199.0)], "12 Harbour Road, Shanghai 200000"),
    ("O0000201", "U2", "paid", [("I007", 1, 899.0)], "北京市朝阳区建国路88号"),
    ("O0000202", "U2", "shipped", [("I008", 1, 89.0)], "北京市朝阳区建国路88号"),
    ("O0000203", "U2", "delivered", [("I009", 1, 239.0)], "北京市朝阳区建国路88号"),
    ("O0000301", "U3", "paid", [("I006", 1, 199.0)], "1 Main Street, Springfield 12345"),
    ("O0000401", "U4", "delivered", [("I003", 1, 39.0)], "8 Lake Road, Hangzhou 310000"),
    ("O0000402", "U4", "delivered", [("I004", 1, 68.0)], "8 Lake Road, Hangzhou 310000"),
    ("O0000403", "U4", "shipped", [("I001", 1, 299.0)], "8 Lake Road, Hangzhou 310000"),
    ("O0000404", "U4", "delivered", [("I002", 1, 459.0)], "8 Lake Road, Hangzhou 310000"),
    ("O0000501", "U5", "shipped", [("I008", 1, 89.0)], "上海市徐汇区漕溪路1号"),
    ("O0000502", "U5", "paid", [("I007", 1, 899.0)], "上海市徐汇区漕溪路1号"),
]
#: Orders delivered two days before the shop is built (inside the 7-day return window).
RECENT = {"O0000401", "O0000402"}
#: U4's views, oldest first: the kettle is the item U4 looked at last.
VIEWS = [("U4", "I006"), ("U4", "I010")]


@dataclass
class Shop:
    store: Store
    settings: Settings
    policies_dir: Path


def make_settings(data_dir: Path, cache_dir: Path | None = None) -> Settings:
    """Test settings; ``cache_dir`` is unused by Settings (the cache lives under data_dir)."""
    return Settings(data_dir=data_dir, pseudonymization_key="test-key", encoder={"threads": 1})


def write_policies(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in POLICIES.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def build_shop(data_dir: Path) -> Shop:
    """A fresh store with the users, items and orders above, and the demo policies on disk."""
    settings = make_settings(data_dir)
    store = Store.open(settings.database_url)
    items = pd.DataFrame(
        ITEMS, columns=["item_id", "title", "description", "brand", "price", "stock", "category", "language"]
    ).assign(currency="CNY")
    items["attributes"] = [json.dumps(ATTRIBUTES.get(i, {})) for i in items["item_id"]]
    ingest("items", items, store=store, settings=settings)
    now = datetime.now(UTC)
    two_days_ago = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = []
    for n, (order_id, user, status, lines, address) in enumerate(ORDERS):
        created = f"2026-03-{n + 1:02d}T10:00:00Z"  # later orders are newer
        updated = two_days_ago if order_id in RECENT else f"2026-03-{n + 2:02d}T10:00:00Z"
        for line_no, (item, quantity, price) in enumerate(lines):
            rows.append(
                {
                    "order_id": order_id,
                    "user_id": user,
                    "status": status,
                    "item_id": item,
                    "quantity": quantity,
                    "unit_price": price,
                    "created_at": created,
                    "updated_at": updated,
                    "line_no": line_no,
                    "currency": "CNY",
                    "country": "CN",
                    "shipping_address": address,
                }
            )
    ingest("orders", pd.DataFrame(rows), store=store, settings=settings)
    views = [
        {"user_id": user, "item_id": item, "event_type": "view", "ts": (now - timedelta(minutes=10 - i)).isoformat()}
        for i, (user, item) in enumerate(VIEWS)
    ]
    ingest("events", pd.DataFrame(views), store=store, settings=settings)
    policies = write_policies(data_dir / "policies")
    return Shop(store, settings, policies)


def link_cache(data_dir: Path, cache_dir: Path) -> None:
    """Share one embedding cache between test shops (each text is encoded once per session)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    link = data_dir / "cache"
    if not link.exists():
        link.symlink_to(cache_dir, target_is_directory=True)
