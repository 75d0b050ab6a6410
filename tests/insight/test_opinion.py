"""Opinion monitoring: daily counts, spike tests with FDR control, complaint topics, the job, its CLI."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from shoplm.app.alerts import SIGNATURE_HEADER, TIMESTAMP_HEADER, AlertCenter, verify_signature
from shoplm.app.opinion import daily_series, opinion_alerts, read_review_signal, run_opinion
from shoplm.cli.main import app
from shoplm.config import AlertSettings, Settings
from shoplm.errors import InputError, NotFoundError
from shoplm.ingest.pipeline import ingest
from shoplm.insight.opinion import DAY_MS, OpinionConfig, daily_sentiment, detect_spikes, parse_day
from shoplm.insight.opinion_bench import score_alerts, summarise
from shoplm.insight.topics import complaint_topics, top_topics
from shoplm.store import Store

START = parse_day("2026-01-01")
SPIKE_DAY = START + 60
ITEMS = {f"I{i}": (f"Cat{i % 3}", f"Brand{i % 4}") for i in range(24)}


def synthetic_reviews(seed: int, *, days: int = 90, spike: int = 6, rate: float = 0.3) -> pd.DataFrame:
    """Poisson(rate) reviews per item and day, 15% negative; ``spike`` extra negatives for I0 on SPIKE_DAY."""
    rng = np.random.default_rng(seed)
    rows = []
    for item, (category, brand) in ITEMS.items():
        for day in range(START, START + days):
            for _ in range(rng.poisson(rate)):
                rows.append(
                    (f"{item}-{day}-{len(rows)}", day * DAY_MS + 3_600_000, rng.random() < 0.15, item, category, brand)
                )
    for k in range(spike):
        rows.append((f"spike-{k}", SPIKE_DAY * DAY_MS + k * 60_000, True, "I0", ITEMS["I0"][0], ITEMS["I0"][1]))
    return pd.DataFrame(rows, columns=["review_id", "ts_ms", "negative", "item", "category", "brand"])


def test_daily_sentiment_counts_reviews_and_negatives_per_key_and_day() -> None:
    frame = synthetic_reviews(0)
    daily = daily_sentiment(frame, "category")
    assert daily["reviews"].sum() == len(frame) and daily["negative"].sum() == frame["negative"].sum()
    row = daily[(daily["key"] == "Cat0") & (daily["day"] == "2026-03-02")].iloc[0]
    on_day = frame[(frame["category"] == "Cat0") & (frame["ts_ms"] // DAY_MS == SPIKE_DAY)]
    assert (row["reviews"], row["negative"]) == (len(on_day), on_day["negative"].sum())
    assert row["negative_share"] == round(on_day["negative"].mean(), 4)
    only = daily_sentiment(frame, "item", key="I0")
    assert set(only["key"]) == {"I0"} and only["reviews"].sum() == (frame["item"] == "I0").sum()


def test_an_injected_spike_is_one_alert_carrying_its_reviews() -> None:
    alerts = detect_spikes(synthetic_reviews(1))
    item = [a for a in alerts if a.level == "item" and a.key == "I0"]
    assert len(item) == 1
    found = item[0]
    assert found.start == "2026-03-02" and found.alert_id == "opinion:item:I0:2026-03-02"
    assert found.q_value is not None and found.q_value <= 0.05 and found.p_value <= found.q_value
    assert {f"spike-{k}" for k in range(6)} <= set(found.review_ids) and found.negative >= 6
    # The spike also shows in I0's category and brand; nothing else is flagged.
    assert {(a.level, a.key) for a in alerts} <= {("item", "I0"), ("category", "Cat0"), ("brand", "Brand0")}


def test_without_spikes_the_fdr_detector_stays_quiet_where_the_baselines_do_not() -> None:
    quiet = [synthetic_reviews(seed, spike=0, rate=0.6) for seed in range(3)]
    fdr = sum(len(detect_spikes(frame)) for frame in quiet)
    zscore = sum(len(detect_spikes(frame, method="zscore")) for frame in quiet)
    rule = sum(len(detect_spikes(frame, method="rule", config=OpinionConfig(rule_negatives=2))) for frame in quiet)
    assert fdr == 0  # noise alone: nothing passes Benjamini-Hochberg over the run
    assert zscore > 5 and rule > 5  # 3-sigma per cell and a fixed count fire on noise across many cells


def test_only_days_from_since_are_tested() -> None:
    frame = synthetic_reviews(1)
    assert detect_spikes(frame, since_day=SPIKE_DAY + 1) == []
    assert detect_spikes(frame, since_day=SPIKE_DAY)


def test_bad_input_is_a_clear_input_error() -> None:
    frame = synthetic_reviews(0, days=40)
    with pytest.raises(InputError, match="column"):
        detect_spikes(frame.drop(columns="negative"))
    with pytest.raises(InputError, match="unknown level"):
        detect_spikes(frame, levels=("planet",))
    with pytest.raises(InputError, match="fdr"):
        detect_spikes(frame, config=OpinionConfig(fdr=0))
    with pytest.raises(InputError, match="method"):
        detect_spikes(frame, method="magic")
    with pytest.raises(InputError, match="not a date"):
        parse_day("next tuesday")
    assert detect_spikes(frame.iloc[:0]) == []


def test_complaint_topics_cluster_and_name_in_both_languages() -> None:
    rng = np.random.default_rng(0)
    battery = ["电池不耐用", "电池很快没电", "电池续航差"] * 2
    texts = battery + ["the package arrived crushed", "package box crushed"] * 3 + ["size runs small, wrong size"] * 6
    centres = np.eye(3, 8)
    vectors = np.repeat(centres, 6, axis=0) + rng.normal(0, 0.02, (18, 8))
    found = complaint_topics(texts, vectors, min_cluster_size=5, n_keywords=2)
    assert len(found.names) == 3 and sorted(found.sizes) == [6, 6, 6]
    by_text = {texts[i]: found.names[found.labels[i]] for i in (0, 6, 12)}
    assert "电池" in by_text[texts[0]] and "package" in by_text[texts[6]] and "size" in by_text[texts[12]]
    assert top_topics(found, [0, 1, 6])[0] == {"topic": by_text[texts[0]], "reviews": 2}
    assert complaint_topics(texts[:3], vectors[:3]).names == []  # too few for a topic
    with pytest.raises(InputError, match="shape"):
        complaint_topics(texts, vectors[:5])


def test_bench_scoring_counts_an_alert_true_only_when_most_of_its_reviews_are_injected() -> None:
    spike = {"level": "item", "key": "I0", "start": "2026-03-02", "end": "2026-03-03", "review_ids": ["a", "b"]}
    alerts = detect_spikes(synthetic_reviews(1))
    mostly_noise = [a for a in alerts if a.level == "category"]
    for alert in mostly_noise:
        alert.review_ids = [*alert.review_ids, "x", "y", "z", "w", "v", "u", "t", "s", "r", "q", "p", "o"]
    scored = score_alerts(alerts, [{**spike, "review_ids": [f"spike-{k}" for k in range(6)]}])
    assert scored["found"] == 1 and scored["delays"] == [0]
    assert scored["true_alerts"] == scored["alerts"] - len(mostly_noise)
    summary = summarise([scored, {"alerts": 0, "true_alerts": 0, "spikes": 1, "found": 0, "delays": []}])
    assert summary["recall"] == 0.5 and summary["spikes"] == 2 and summary["mean_delay_days"] == 0.0


# -- the job, its reading side and its CLI ---------------------------------------------------------------
def _store_with_reviews(settings: Settings, tmp_path: Path) -> Store:
    items = tmp_path / "items.csv"
    rows = [f"{item},Item {item},{category},{brand},10" for item, (category, brand) in ITEMS.items()]
    items.write_text("item_id,title,category,brand,price\n" + "\n".join(rows) + "\n", encoding="utf-8")
    store = Store.open(settings.database_url)
    ingest("items", items, store=store, settings=settings)
    frame = synthetic_reviews(2)
    store.upsert(
        "reviews",
        pd.DataFrame(
            {
                "review_id": frame["review_id"],
                "item_id": frame["item"],
                "user_id": None,
                "rating": np.where(frame["negative"], 1, 5),
                "text": np.where(frame["negative"], "the battery dies fast", "great, works well"),
                "language": "en",
                "ts_ms": frame["ts_ms"],
            }
        ),
    )
    return store


def test_the_job_stores_series_raises_each_alert_once_and_signs_the_webhook(settings: Settings, tmp_path: Path) -> None:
    received: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: received.append(request) or httpx.Response(200))
    alerts = AlertSettings(webhook_url="https://hooks.test/opinion", webhook_secret=SecretStr("s3"), backoff_seconds=0)
    hooked = settings.model_copy(update={"alerts": alerts})
    store = _store_with_reviews(hooked, tmp_path)
    with pytest.raises(NotFoundError, match="insight alerts --run"):
        daily_series(store, "item", "I0")
    center = AlertCenter(store, hooked.alerts, client=httpx.Client(transport=transport), sleep=lambda _s: None)
    first = run_opinion(store, hooked, alert_center=center, topics=False)
    assert first["signal"] == {"sentiment_model": 0, "rating": first["reviews"], "unscored": 0}
    assert first["alerts"] >= 1 and first["new_alerts"] == first["alerts"] == first["delivered"]
    body = received[0].content
    assert verify_signature(b"s3", received[0].headers[TIMESTAMP_HEADER], body, received[0].headers[SIGNATURE_HEADER])
    assert json.loads(body)["kind"] == "opinion"
    again = run_opinion(store, hooked, alert_center=center, topics=False)
    assert again["new_alerts"] == 0 and len(received) == first["alerts"]  # found again: stored and sent once
    listed = opinion_alerts(store)
    item = next(a for a in listed["alerts"] if a["key"] == "I0")
    assert item["start"] == "2026-03-02" and item["delivered"] and "spike-0" in item["review_ids"]
    later = opinion_alerts(store, since="2026-03-03")["alerts"]
    assert all(a["end"] >= "2026-03-03" for a in later) and item["alert_id"] not in {a["alert_id"] for a in later}
    series = daily_series(store, "item", "I0")
    spike_day = next(d for d in series["days"] if d["day"] == "2026-03-02")
    assert spike_day["negative"] >= 6 and series["alerts"][0]["start"] == "2026-03-02"
    with pytest.raises(NotFoundError):
        daily_series(store, "item", "no-such-item")
    with pytest.raises(InputError):
        daily_series(store, "planet")
    store.close()


def test_stored_sentiment_wins_over_the_rating(settings: Settings, tmp_path: Path) -> None:
    store = _store_with_reviews(settings, tmp_path)
    positive = store.frame("reviews", ["review_id", "rating"]).query("rating == 5")["review_id"].iloc[0]
    store.review_sentiment.upsert(
        [
            {
                "review_id": positive,
                "text_hash": "h",
                "polarity": "negative",
                "p_positive": 0.1,
                "rating_estimate": 1.5,
                "skipped": "",
                "model_version": "m",
            }
        ]
    )
    frame, signal = read_review_signal(store)
    assert signal["sentiment_model"] == 1 and signal["rating"] == len(frame) - 1
    assert bool(frame.set_index("review_id").at[positive, "negative"]) is True
    store.close()


def test_cli_runs_the_job_lists_alerts_and_rejects_bad_input(settings: Settings, tmp_path: Path) -> None:
    _store_with_reviews(settings, tmp_path).close()
    runner, data = CliRunner(), str(settings.data_dir)
    # The CLI reads the same data directory (its own settings: same SQLite file).
    ran = runner.invoke(app, ["insight", "alerts", "--run", "--no-topics", "--data-dir", data])
    assert ran.exit_code == 0, ran.output
    assert "I0" in ran.output and "rating" in ran.output
    daily = runner.invoke(app, ["insight", "daily", "--level", "item", "--key", "I0", "--json", "--data-dir", data])
    assert daily.exit_code == 0 and '"2026-03-02"' in daily.output
    bad_since = runner.invoke(app, ["insight", "alerts", "--since", "soon", "--data-dir", data])
    assert bad_since.exit_code == 2 and "not a date" in bad_since.output
    bad_level = runner.invoke(app, ["insight", "daily", "--level", "planet", "--data-dir", data])
    assert bad_level.exit_code == 2 and "level must be one of" in bad_level.output
    same_seed = runner.invoke(app, ["bench", "opinion", "--seeds", "1", "--validation-seeds", "1", "--data-dir", data])
    assert same_seed.exit_code == 2 and "both reported and used" in same_seed.output
