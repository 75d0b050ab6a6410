"""The demo store: deterministic, in the ingest formats, and carrying the signals its ground truth claims."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shoplm.demo import DEFAULT_END, DemoManifest, DemoSizes, generate_demo_store
from shoplm.demo import vocab as V
from shoplm.ingest.schemas import KINDS

SMALL = DemoSizes(n_items=200, n_users=300, n_events=5_000)
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> DemoManifest:
    return generate_demo_store(tmp_path_factory.mktemp("demo_a"), seed=7, sizes=SMALL)


@pytest.fixture(scope="module")
def gt(store: DemoManifest) -> dict:
    return json.loads(store.ground_truth.read_text(encoding="utf-8"))


def _read(m: DemoManifest, kind: str) -> pd.DataFrame:
    path = m.files[kind]
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    return pd.read_parquet(path)


@pytest.fixture(scope="module")
def frames(store: DemoManifest) -> dict[str, pd.DataFrame]:
    return {k: _read(store, k) for k in store.files}


def _ts_ms(s: pd.Series) -> np.ndarray:
    """ISO strings or epoch-ms ints -> epoch ms."""
    if pd.api.types.is_integer_dtype(s):
        return s.to_numpy(dtype=np.int64)
    return (pd.to_datetime(s, utc=True).astype("int64") // 1_000_000).to_numpy()


# -- determinism ---------------------------------------------------------------------------------


def _digest(m: DemoManifest) -> dict[str, bytes]:
    paths = [*m.files.values(), m.ground_truth, *sorted(m.policies_dir.iterdir())]
    return {p.name: p.read_bytes() for p in paths}


def test_same_seed_gives_identical_files(store: DemoManifest, tmp_path: Path) -> None:
    again = generate_demo_store(tmp_path / "b", seed=7, sizes=SMALL)
    assert _digest(again) == _digest(store)


def test_other_seed_gives_other_files(store: DemoManifest, tmp_path: Path) -> None:
    other = _digest(generate_demo_store(tmp_path / "c", seed=8, sizes=SMALL))
    mine = _digest(store)
    for name in ("events.parquet", "items.csv", "users.csv", "orders.csv", "reviews.jsonl", "conversations.jsonl"):
        assert other[name] != mine[name], name


# -- sizes and formats ---------------------------------------------------------------------------


def test_counts_roughly_as_asked(store: DemoManifest, frames: dict[str, pd.DataFrame], gt: dict) -> None:
    assert len(frames["items"]) == SMALL.n_items
    assert len(frames["users"]) == SMALL.n_users
    assert abs(len(frames["events"]) - SMALL.n_events) <= 0.05 * SMALL.n_events
    assert frames["items"]["category"].nunique() == SMALL.n_categories
    assert frames["conversations"]["conversation_id"].nunique() == round(0.3 * SMALL.n_users)
    assert frames["orders"]["order_id"].nunique() > 50
    assert len(frames["reviews"]) > 10
    for kind, df in frames.items():
        assert store.counts[kind] == len(df), kind
    assert len(gt["churners"]) == round(0.05 * SMALL.n_users)
    zh = (frames["items"]["language"] == "zh").mean()
    assert 0.35 < zh < 0.65


@pytest.mark.parametrize("kind", list(KINDS))
def test_columns_and_values_follow_ingest_schema(frames: dict[str, pd.DataFrame], kind: str) -> None:
    spec, df = KINDS[kind], frames[kind]
    cols = [c.lower() for c in df.columns]
    assert set(spec.required) <= set(cols)
    if not spec.extra_to_attributes:
        assert set(cols) <= set(spec.names), set(cols) - set(spec.names)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    end_ms = int(DEFAULT_END.timestamp() * 1000)
    for f in spec.fields:
        if f.name not in df.columns:
            continue
        col = df[f.name]
        present = col[col.notna() & (col.astype(str) != "")]
        if f.required and f.name != "item_id":
            assert len(present) == len(col), f"{kind}.{f.name} has empty values"
        if f.type == "enum":
            assert set(present) <= set(f.choices), set(present) - set(f.choices)
        elif f.type == "timestamp":
            ms = _ts_ms(present)
            assert ms.max() < min(now_ms, end_ms), f"{kind}.{f.name} in the future"
            assert ms.min() > int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)
        elif f.type in ("int", "float"):
            vals = pd.to_numeric(present).to_numpy()
            if f.type == "int":
                assert np.all(vals == np.round(vals))
            if f.min_value is not None:
                assert vals.min() >= f.min_value, f"{kind}.{f.name}"
            if f.max_value is not None:
                assert vals.max() <= f.max_value, f"{kind}.{f.name}"
    if spec.id_field and spec.id_field in df.columns:
        assert df[spec.id_field].is_unique, kind


def test_events_and_orders_fit_together(frames: dict[str, pd.DataFrame]) -> None:
    ev, items, users, orders = frames["events"], frames["items"], frames["users"], frames["orders"]
    assert ev["event_id"].str.fullmatch(r"E\d{7}").all()
    assert set(ev["event_type"]) == {"view", "click", "add_to_cart", "purchase", "search", "rate"}
    search = ev["event_type"] == "search"
    assert ev.loc[search, "item_id"].isna().all() and ev.loc[search, "query"].str.len().gt(0).all()
    assert ev.loc[~search, "item_id"].notna().all() and ev.loc[~search, "query"].isna().all()
    assert set(ev.loc[~search, "item_id"]) <= set(items["item_id"])
    assert set(ev["user_id"]) <= set(users["user_id"])
    assert set(ev["scene"]) == {"home", "item_detail", "cart", "search"}
    rate = ev.loc[ev["event_type"] == "rate", "value"]
    assert len(rate) > 0 and rate.between(1, 5).all()
    # Both languages show up in search queries.
    q = ev.loc[search, "query"]
    assert q.str.contains(r"[\u4e00-\u9fff]").any() and q.str.contains(r"^[a-z ]+$").any()
    # Order lines: real items at the catalog price, unique (order, line), one status per order.
    assert not orders.duplicated(["order_id", "line_no"]).any()
    assert orders.groupby("order_id")["status"].nunique().max() == 1
    price = dict(zip(items["item_id"], items["price"].astype(float), strict=True))
    assert np.allclose(orders["unit_price"].astype(float), orders["item_id"].map(price))
    assert set(orders["currency"]) == {"CNY"} == set(items["currency"])
    assert (orders["created_at"] <= orders["updated_at"]).all()
    assert orders["shipping_address"].str.len().gt(5).all()
    status = orders.drop_duplicates("order_id")["status"].value_counts(normalize=True)
    assert status.idxmax() == "delivered" and status["delivered"] > 0.5
    # Each purchase event is an order line of the same user.
    n_purchases = (ev["event_type"] == "purchase").sum()
    assert n_purchases == len(orders)
    assert set(zip(orders["user_id"], orders["item_id"], strict=True)) == set(
        zip(ev.loc[ev.event_type == "purchase", "user_id"], ev.loc[ev.event_type == "purchase", "item_id"], strict=True)
    )


def test_items_are_bilingual_and_attributed(frames: dict[str, pd.DataFrame]) -> None:
    items = frames["items"]
    zh = items[items["language"] == "zh"]
    en = items[items["language"] == "en"]
    assert zh["title"].str.contains(r"[\u4e00-\u9fff]").all()
    assert en["description"].str.contains(r"[A-Za-z]").all()
    assert {"color", "material", "size"} <= set(items.columns)
    assert (items["stock"].astype(int) == 0).any() and (items["stock"].astype(int) > 0).mean() > 0.8
    paths = {c.path for c in V.CATEGORIES}
    assert set(items["category"]) <= paths
    # prices stay inside each category's range
    rng = {c.path: c.price for c in V.CATEGORIES}
    p = items["price"].astype(float)
    lo = items["category"].map(lambda c: rng[c][0])
    hi = items["category"].map(lambda c: rng[c][1])
    assert (p >= lo - 1).all() and (p <= hi + 10).all()


# -- the signals behind the ground truth ---------------------------------------------------------


def test_purchases_follow_latent_tastes(frames: dict[str, pd.DataFrame], gt: dict) -> None:
    ev, items = frames["events"], frames["items"]
    cat = dict(zip(items["item_id"], items["category"], strict=True))
    users = gt["users"]
    buys = ev[(ev["event_type"] == "purchase")]
    buys = buys[buys["user_id"].map(lambda u: users[u]["role"] != "fraud_account")]
    in_pref = [cat[i] in users[u]["preferred_categories"] for u, i in zip(buys.user_id, buys.item_id, strict=True)]
    chance = np.mean([len(users[u]["preferred_categories"]) for u in buys.user_id]) / SMALL.n_categories
    assert np.mean(in_pref) > max(0.6, 4 * chance)
    band = [
        gt["items"][i]["price_band"] == users[u]["price_band"] for u, i in zip(buys.user_id, buys.item_id, strict=True)
    ]
    assert np.mean(band) > 0.6  # chance is about 1/3


def test_sessions_stay_in_a_category(frames: dict[str, pd.DataFrame]) -> None:
    ev, items = frames["events"], frames["items"]
    cat = dict(zip(items["item_id"], items["category"], strict=True))
    views = ev[ev["event_type"] == "view"].sort_values(["session_id", "timestamp"])
    c = views["item_id"].map(cat).to_numpy()
    s = views["session_id"].to_numpy()
    same_session = s[1:] == s[:-1]
    assert (c[1:] == c[:-1])[same_session].mean() > 0.5  # chance is about 1/20


def test_popularity_is_long_tailed_and_weekends_busier(frames: dict[str, pd.DataFrame]) -> None:
    ev = frames["events"]
    counts = ev.loc[ev["event_type"] == "view", "item_id"].value_counts()
    top10 = counts.iloc[: len(counts) // 10].sum() / counts.sum()
    assert top10 > 0.2  # the top 10% of items get at least twice their uniform share of views
    # Sessions (not events: one bot burst would swamp a small store's day) per weekend vs weekday day.
    starts = ev.dropna(subset=["session_id"]).groupby("session_id")["timestamp"].min()
    days = pd.to_datetime(starts, unit="ms", utc=True).dt.normalize()
    all_days = pd.date_range(days.min(), days.max(), freq="D")
    per_day = days.value_counts().reindex(all_days, fill_value=0)
    weekend = per_day[per_day.index.dayofweek >= 5].mean()
    weekday = per_day[per_day.index.dayofweek < 5].mean()
    assert weekend > 1.1 * weekday  # generated at 1.35x


def test_promotions_lift_their_categories(frames: dict[str, pd.DataFrame], gt: dict) -> None:
    ev, items = frames["events"], frames["items"]
    cat = dict(zip(items["item_id"], items["category"], strict=True))
    views = ev[ev["event_type"] == "view"]
    assert 2 <= len(gt["promotions"]) <= 3
    inside_share, outside_share = [], []
    for p in gt["promotions"]:
        assert set(p["categories"]) <= set(items["category"])
        t0 = pd.Timestamp(p["start"]).value // 1_000_000
        t1 = pd.Timestamp(p["end"]).value // 1_000_000
        inside = views["timestamp"].between(t0, t1 - 1)
        in_cat = views["item_id"].map(cat).isin(p["categories"])
        inside_share.append(in_cat[inside].mean())
        outside_share.append(in_cat[~inside].mean())
    assert np.mean(inside_share) > 1.5 * np.mean(outside_share)


def test_reviews_text_matches_rating(frames: dict[str, pd.DataFrame], gt: dict) -> None:
    rv = frames["reviews"]
    assert set(rv["language"]) == {"zh", "en"}
    for r in rv.itertuples():
        truth = gt["reviews"][r.review_id]
        assert truth["rating"] == r.rating
        want = "positive" if r.rating >= 4 else "negative" if r.rating <= 2 else "neutral"
        assert truth["sentiment"] == want
        overall = V.OVERALL[r.language]
        assert any(p in r.text for p in overall[want])
        for other in {"positive", "negative"} - {want}:
            assert not any(p in r.text for p in overall[other])
        for aspect, polarity in truth["aspects"].items():
            phrases = V.ASPECT_PHRASES[r.language][aspect]["pos" if polarity == "positive" else "neg"]
            assert any(p in r.text for p in phrases), (aspect, r.text)
        if r.language == "zh":
            assert re.search(r"[\u4e00-\u9fff]", r.text)
    # Ratings follow the hidden item quality.
    q = rv["item_id"].map(lambda i: gt["items"][i]["quality"])
    assert np.corrcoef(q, rv["rating"])[0, 1] > 0.2
    # Every review is about a delivered order line of that user.
    orders = frames["orders"]
    lines = set(zip(orders.order_id, orders.user_id, orders.item_id, orders.status, strict=True))
    for r in rv.itertuples():
        assert (gt["reviews"][r.review_id]["order_id"], r.user_id, r.item_id, "delivered") in lines


def test_churners_go_quiet(frames: dict[str, pd.DataFrame], gt: dict) -> None:
    ev = frames["events"]
    cutoff = pd.Timestamp(gt["window"]["churn_cutoff"]).value // 1_000_000
    last = ev.groupby("user_id")["timestamp"].max()
    first = ev.groupby("user_id")["timestamp"].min()
    n = ev.groupby("user_id").size()
    for u in gt["churners"]:
        assert gt["users"][u]["role"] == "churner"
        assert last[u] < cutoff and n[u] >= 4
    start = pd.Timestamp(gt["window"]["start"]).value // 1_000_000
    assert (first[gt["churners"]] < start + (cutoff - start) // 2).mean() > 0.7  # active early
    others = [u for u in last.index if gt["users"][u]["role"] == "normal"]
    assert (last[others] >= cutoff).mean() > 0.6


def test_bot_bursts_are_in_the_events(frames: dict[str, pd.DataFrame], gt: dict) -> None:
    ev = frames["events"]
    assert gt["bot_users"] and gt["bot_bursts"]
    for b in gt["bot_bursts"]:
        s = ev[ev["session_id"] == b["session_id"]]
        assert len(s) == b["n_events"] >= 50
        assert (s["user_id"] == b["user_id"]).all() and (s["event_type"] == "view").all()
        assert s["timestamp"].max() - s["timestamp"].min() < 60_000
    # No ordinary session comes close to that rate.
    normal = ev[~ev["user_id"].isin(gt["bot_users"])]
    per_min = normal.groupby([normal["user_id"], normal["timestamp"] // 60_000]).size()
    assert per_min.max() < 50


def test_fraud_orders_look_fraudulent(frames: dict[str, pd.DataFrame], gt: dict) -> None:
    orders, users = frames["orders"], frames["users"]
    fraud = {f["order_id"]: f for f in gt["fraud_orders"]}
    assert len(fraud) >= 2 and set(fraud) <= set(orders["order_id"])
    assert len(fraud) / orders["order_id"].nunique() < 0.05
    created = dict(zip(users["user_id"], _ts_ms(users["created_at"]), strict=True))
    country = dict(zip(users["user_id"], users["country"], strict=True))
    total = orders.assign(v=orders["quantity"].astype(int) * orders["unit_price"].astype(float)).groupby("order_id")
    value = total["v"].sum()
    normal_median = value.drop(list(fraud)).median()
    for oid, f in fraud.items():
        lines = orders[orders["order_id"] == oid]
        assert (lines["user_id"] == f["user_id"]).all()
        assert len(f["reasons"]) >= 2
        assert value[oid] > 3 * normal_median
        if "new_account" in f["reasons"]:
            age = _ts_ms(lines["created_at"]).min() - created[f["user_id"]]
            assert 0 < age < 7 * 3_600_000
        if "country_mismatch" in f["reasons"]:
            assert (lines["country"] != country[f["user_id"]]).all()
        if "many_units" in f["reasons"]:
            assert lines["quantity"].astype(int).max() >= 3


def test_conversations_carry_intents_and_real_orders(frames: dict[str, pd.DataFrame], gt: dict) -> None:
    conv, orders = frames["conversations"], frames["orders"]
    assert set(conv["role"]) == {"customer", "agent"}
    assert set(conv["intent"]) <= set(V.INTENTS) and conv["intent"].nunique() >= 8
    first = conv.groupby("conversation_id").first()
    assert (first["role"] == "customer").all()
    assert first["text"].str.contains(r"[\u4e00-\u9fff]").any() and first["text"].str.contains(r"[A-Za-z]{4}").any()
    owner = dict(zip(orders["order_id"], orders["user_id"], strict=True))
    n_with_order = 0
    for cid, row in first.iterrows():
        truth = gt["conversations"][cid]
        assert truth["intent"] == row["intent"]
        if truth["order_id"]:
            n_with_order += 1
            assert owner[truth["order_id"]] == row["user_id"]
            assert truth["order_id"] in row["text"]
    assert n_with_order > 10
    ts = conv.groupby("conversation_id")["timestamp"].apply(lambda s: list(s) == sorted(s))
    assert ts.all()


def test_raw_pii_present_for_ingest_to_mask(frames: dict[str, pd.DataFrame], gt: dict) -> None:
    users = frames["users"]
    assert users["user_id"].str.fullmatch(r"U\d{5}").all()
    assert users["email"].str.fullmatch(EMAIL_RE.pattern).all()
    phones = users.loc[users["phone"] != "", "phone"]
    assert phones.str.startswith("+86").any() and phones.str.fullmatch(r"1[3-9]\d{9}").any()
    assert phones.str.match(r"\+(1|44|49|81|65|61|33) ").any()
    assert gt["pii"]["reviews"] and gt["pii"]["messages"] and gt["pii"]["search_events"]
    # The listed texts hold the author's own raw email or phone, verbatim.
    contact = {u: (e, p) for u, e, p in zip(users["user_id"], users["email"], users["phone"], strict=True)}

    def has_own_contact(user: str, text: str) -> bool:
        return any(c and c in text for c in contact[user])

    rv = frames["reviews"].set_index("review_id")
    for rid in gt["pii"]["reviews"]:
        assert has_own_contact(rv.loc[rid, "user_id"], rv.loc[rid, "text"])
    conv = frames["conversations"].set_index("message_id")
    for mid in gt["pii"]["messages"]:
        assert conv.loc[mid, "role"] == "customer"
        assert has_own_contact(conv.loc[mid, "user_id"], conv.loc[mid, "text"])
    ev = frames["events"].set_index("event_id")
    for eid in gt["pii"]["search_events"]:
        assert EMAIL_RE.fullmatch(ev.loc[eid, "query"])
    # Texts not listed carry no email (so a masking test can count exactly).
    clean = frames["reviews"][~frames["reviews"]["review_id"].isin(gt["pii"]["reviews"])]
    assert not clean["text"].str.contains(EMAIL_RE.pattern).any()
    assert not any(has_own_contact(u, t) for u, t in zip(clean["user_id"], clean["text"], strict=True))


def test_ground_truth_is_complete(store: DemoManifest, frames: dict[str, pd.DataFrame], gt: dict) -> None:
    user_ids = set(frames["users"]["user_id"])
    assert set(gt["users"]) == user_ids
    assert set(gt["items"]) == set(frames["items"]["item_id"])
    assert set(gt["reviews"]) == set(frames["reviews"]["review_id"])
    assert set(gt["conversations"]) == set(frames["conversations"]["conversation_id"])
    assert set(gt["churners"]) | set(gt["bot_users"]) | set(gt["fraud_accounts"]) <= user_ids
    assert not set(gt["churners"]) & set(gt["bot_users"])
    for u in gt["users"].values():
        assert 1 <= len(u["preferred_categories"]) <= 3
        assert u["price_band"] in ("budget", "mid", "premium")
    for q in (i["quality"] for i in gt["items"].values()):
        assert 0 <= q <= 1
    assert gt["window"]["end"] == "2026-06-30T00:00:00Z"
    doc = (Path(__file__).parents[2] / "src/shoplm/demo/GROUND_TRUTH.md").read_text(encoding="utf-8")
    for key in gt:
        assert f"`{key}`" in doc, f"GROUND_TRUTH.md does not document {key}"


def test_policies_are_bilingual(store: DemoManifest) -> None:
    docs = sorted(store.policies_dir.glob("*.md"))
    assert 4 <= len(docs) <= 6
    for d in docs:
        text = d.read_text(encoding="utf-8")
        assert "## English" in text and "## 中文" in text
        assert re.search(r"[\u4e00-\u9fff]{10}", text)


# -- options -------------------------------------------------------------------------------------


def test_end_and_progress(tmp_path: Path) -> None:
    seen: list[tuple[str, float]] = []
    end = datetime(2025, 3, 1, tzinfo=UTC)
    m = generate_demo_store(tmp_path, seed=1, sizes=SMALL, end=end, progress=lambda s, f: seen.append((s, f)))
    ev = pd.read_parquet(m.files["events"])
    assert ev["timestamp"].max() < end.timestamp() * 1000
    assert m.end == end and (m.end - m.start).days >= 180
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) >= 5


def test_sizes_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_demo_store(tmp_path, sizes=DemoSizes(n_items=10, n_categories=20))
    with pytest.raises(ValueError):
        generate_demo_store(tmp_path, sizes=DemoSizes(n_categories=99))
