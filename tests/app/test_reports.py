"""The privacy-budget ledger: releases are paid for, refused past the budget, atomic, persisted, not bypassed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from shoplm.app import reports
from shoplm.config import Settings
from shoplm.errors import ConflictError, InputError, NotFoundError
from shoplm.store import Store
from tests.privacy.shop import WINDOW, dp_settings, dp_shop_copy
from tests.store.conftest import postgres_url  # noqa: F401 (a fixture: a fresh PostgreSQL database)

START, END = WINDOW


@pytest.fixture
def dp_data_dir(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return dp_shop_copy(tmp_path_factory, tmp_path)


def test_a_release_is_paid_for_and_recorded(dp_data_dir: Path) -> None:
    settings = dp_settings(dp_data_dir, budget=3.0)
    with Store.open(settings.database_url) as store:
        released = reports.release(store, settings, "daily-ratings", epsilon=1.0, start=START, end=END, key_id="k1")
        ledger = reports.budget(store, settings)
    assert released["repeated"] is False and released["budget"] == {
        "epsilon_budget": 3.0,
        "spent": 1.0,
        "remaining": 2.0,
    }
    assert len(released["cells"]) == len(released["categories"]) * 29  # every category x every day of the window
    assert released["window"] == {"start": START, "end": END}
    [entry] = ledger["releases"]
    assert (entry["report"], entry["epsilon"], entry["key_id"]) == ("daily-ratings", 1.0, "k1")
    assert entry["parameters"]["window"] == {"start": START, "end": END} and "body" not in entry
    assert ledger["spent"] == 1.0 and ledger["remaining"] == 2.0


def test_a_release_past_the_budget_is_refused_and_spends_nothing(dp_data_dir: Path) -> None:
    settings = dp_settings(dp_data_dir, budget=1.0)
    with Store.open(settings.database_url) as store:
        reports.release(store, settings, "daily-views", epsilon=0.6, start=START, end=END)
        with pytest.raises(ConflictError, match=r"would be exceeded: this release costs ε=0.6, 0.6 of 1 is spent"):
            reports.release(store, settings, "daily-sales", epsilon=0.6, start=START, end=END)
        reports.release(store, settings, "daily-sales", epsilon=0.4, start=START, end=END)  # exactly the rest
        with pytest.raises(ConflictError):
            reports.release(store, settings, "daily-revenue", epsilon=0.01, start=START, end=END)
        assert store.privacy.spent("store") == pytest.approx(1.0)
        assert store.privacy.count_releases("store") == 2


def test_repeating_a_query_never_gives_fresh_noise_for_free(dp_data_dir: Path) -> None:
    settings = dp_settings(dp_data_dir, budget=1.0)
    with Store.open(settings.database_url) as store:
        first = reports.release(store, settings, "daily-sales", epsilon=1.0, start=START, end=END)
        again = [reports.release(store, settings, "daily-sales", epsilon=1.0, start=START, end=END) for _ in range(3)]
        # The budget is spent, and the same question still gets the same recorded answer: no new noise to average.
        assert all(a["cells"] == first["cells"] and a["repeated"] for a in again)
        assert all(a["release_id"] == first["release_id"] for a in again)
        assert store.privacy.spent("store") == pytest.approx(1.0) and store.privacy.count_releases("store") == 1
        # Another ε or window is another question: it is charged (and refused here, the budget being spent).
        with pytest.raises(ConflictError):
            reports.release(store, settings, "daily-sales", epsilon=0.5, start=START, end=END)
        with pytest.raises(ConflictError):
            reports.release(store, settings, "daily-sales", epsilon=1.0, start="2026-06-02", end=END)


def test_the_same_query_over_changed_data_is_a_new_release_and_charged(dp_data_dir: Path) -> None:
    settings = dp_settings(dp_data_dir, budget=5.0)
    with Store.open(settings.database_url) as store:
        first = reports.release(store, settings, "daily-sales", epsilon=1.0, start=START, end=END)
        item = store.items.catalog(["item_id"])["item_id"].iloc[0]
        ts = int(pd.Timestamp("2026-06-10T12:00:00Z").timestamp() * 1000)
        order = pd.DataFrame(
            [
                {
                    "order_id": "DP-NEW",
                    "user_id": "dp-new-buyer",
                    "status": "paid",
                    "currency": "CNY",
                    "total_amount": 10.0,
                    "country": "CN",
                    "shipping_address": "",
                    "created_ms": ts,
                    "updated_ms": ts,
                    "content_hash": "dp-new",
                }
            ]
        )
        line = pd.DataFrame([{"order_id": "DP-NEW", "line_no": 0, "item_id": item, "quantity": 1, "unit_price": 10.0}])
        with store.transaction() as connection:
            store.upsert("orders", order, connection=connection)
            store.upsert("order_lines", line, connection=connection)
        second = reports.release(store, settings, "daily-sales", epsilon=1.0, start=START, end=END)
        assert second["repeated"] is False and second["release_id"] != first["release_id"]
        assert store.privacy.spent("store") == pytest.approx(2.0)


def test_the_ledger_survives_reopening_the_store(dp_data_dir: Path) -> None:
    settings = dp_settings(dp_data_dir, budget=1.5)
    with Store.open(settings.database_url) as store:
        first = reports.release(store, settings, "daily-views", epsilon=1.0, start=START, end=END)
    with Store.open(settings.database_url) as reopened:
        assert reopened.privacy.spent("store") == pytest.approx(1.0)
        again = reports.release(reopened, settings, "daily-views", epsilon=1.0, start=START, end=END)
        assert again["cells"] == first["cells"] and again["repeated"]
        with pytest.raises(ConflictError):
            reports.release(reopened, settings, "daily-ratings", epsilon=1.0, start=START, end=END)


@pytest.mark.parametrize("shared_store", [True, False], ids=["one-store", "store-per-thread"])
def test_concurrent_releases_cannot_both_take_the_last_of_the_budget(dp_data_dir: Path, shared_store: bool) -> None:
    settings = dp_settings(dp_data_dir, budget=1.0)
    threads_count = 8
    opened = [Store.open(settings.database_url) for _ in range(1 if shared_store else threads_count)]
    barrier = threading.Barrier(threads_count)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def ask(index: int) -> None:
        store = opened[0 if shared_store else index]
        barrier.wait()
        spend = store.privacy.spend(
            "store",
            budget=1.0,
            report="daily-sales",
            query_key=f"q{index}",  # eight different questions, each worth 0.3
            epsilon=0.3,
            parameters={},
            body={"i": index},
        )
        with lock:
            outcomes.append(spend.granted)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert outcomes.count(True) == 3 and len(outcomes) == threads_count  # 3 x 0.3 fits in 1.0; a 4th does not
        assert opened[0].privacy.spent("store") == pytest.approx(0.9)
        assert opened[0].privacy.count_releases("store") == 3
    finally:
        for store in opened:
            store.close()


def test_concurrent_identical_queries_are_charged_once(dp_data_dir: Path) -> None:
    settings = dp_settings(dp_data_dir, budget=10.0)
    stores = [Store.open(settings.database_url) for _ in range(4)]
    barrier = threading.Barrier(4)
    answers: list[dict] = []

    def ask(store: Store) -> None:
        barrier.wait()
        answers.append(reports.release(store, settings, "daily-views", epsilon=1.0, start=START, end=END))

    threads = [threading.Thread(target=ask, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert len(answers) == 4 and len({a["release_id"] for a in answers}) == 1
        assert stores[0].privacy.spent("store") == pytest.approx(1.0)
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize(
    ("name", "epsilon", "window", "error", "message"),
    [
        ("daily-sales", 0.0, (START, END), InputError, "epsilon must be a finite number above 0"),
        ("daily-sales", float("nan"), (START, END), InputError, "not nan"),
        ("daily-sales", float("inf"), (START, END), InputError, "not inf"),
        ("daily-sales", -1.0, (START, END), InputError, "not -1.0"),
        ("weekly-gossip", 1.0, (START, END), NotFoundError, "no report 'weekly-gossip'"),
        ("daily-sales", 1.0, ("2026-06-30", "2026-06-01"), InputError, "starts (2026-06-30) after it ends"),
        ("daily-sales", 1.0, ("June", END), InputError, "start must be a day as YYYY-MM-DD"),
        ("daily-sales", 1.0, ("2024-01-01", END), InputError, "at most 366 days"),
    ],
)
def test_bad_requests_are_refused_without_spending(
    dp_data_dir: Path, name: str, epsilon: float, window: tuple[str, str], error: type, message: str
) -> None:
    settings = dp_settings(dp_data_dir)
    with Store.open(settings.database_url) as store:
        with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
            reports.release(store, settings, name, epsilon=epsilon, start=window[0], end=window[1])
        assert store.privacy.spent("store") == 0.0


def test_the_default_window_ends_today(dp_data_dir: Path) -> None:
    settings = dp_settings(dp_data_dir)
    days = reports.window_days(None, None, default_days=7, today=pd.Timestamp("2026-06-29").date())
    assert days[0] == "2026-06-23" and days[-1] == "2026-06-29" and len(days) == 7
    with Store.open(settings.database_url) as store:
        started = time.perf_counter()
        released = reports.release(store, settings, "daily-sales", epsilon=0.5, today=pd.Timestamp("2026-06-29").date())
        assert time.perf_counter() - started < 10
    assert released["window"] == {"start": "2026-05-31", "end": "2026-06-29"}  # window_days = 30 by default


def test_a_shop_sets_its_own_bounds_and_they_change_the_noise(dp_data_dir: Path) -> None:
    base = dp_settings(dp_data_dir)
    bounds = {"daily-sales": {"upper": 50, "max_cells_per_user": 1}}
    settings = Settings(data_dir=dp_data_dir, pseudonymization_key="dp-tests", privacy={"bounds": bounds})
    spec = reports.report_spec(settings, "daily-sales")
    assert (spec.upper, spec.max_cells_per_user, spec.max_rows_per_cell) == (50.0, 1, 2)
    with Store.open(settings.database_url) as store:
        released = reports.release(store, settings, "daily-sales", epsilon=1.0, start=START, end=END)
        default = reports.release(store, base, "daily-sales", epsilon=1.0, start=START, end=END)
    assert released["bounds"]["clamp"] == [0, 50.0] and released["noise_scale"]["sum"] == pytest.approx(100.0)
    assert (
        default["noise_scale"]["sum"] == pytest.approx(20.0) and not default["repeated"]
    )  # other bounds: another query
    listed = {r["name"]: r for r in reports.list_reports(settings)}
    assert listed["daily-sales"]["clamp"] == [0, 50.0]


def test_bounds_for_an_unknown_report_are_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, privacy={"bounds": {"daily-sale": {"upper": 20}}})
    with pytest.raises(InputError, match=r"privacy.bounds names no report \['daily-sale'\]"):
        reports.report_spec(settings, "daily-sales")


def _race(stores: list[Store], query_keys: list[str], epsilon: float, budget: float) -> list[tuple[bool, bool]]:
    """Every store asks the ledger at once; returns (granted, repeated) per asker."""
    barrier = threading.Barrier(len(stores))
    outcomes: list[tuple[bool, bool]] = []
    lock = threading.Lock()

    def ask(store: Store, query_key: str) -> None:
        barrier.wait()
        spend = store.privacy.spend(
            "store", budget=budget, report="daily-sales", query_key=query_key, epsilon=epsilon, parameters={}, body={}
        )
        with lock:
            outcomes.append((spend.granted, spend.repeated))

    threads = [threading.Thread(target=ask, args=pair) for pair in zip(stores, query_keys, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.mark.postgres
def test_on_postgresql_the_ledger_cannot_be_overspent_or_charged_twice(postgres_url: str) -> None:  # noqa: F811
    stores = [Store.open(postgres_url) for _ in range(8)]
    try:
        # Eight different questions worth 0.3 each against a budget of 1: three fit, whatever the interleaving.
        outcomes = _race(stores, [f"q{i}" for i in range(8)], 0.3, 1.0)
        assert [granted for granted, _ in outcomes].count(True) == 3 and len(outcomes) == 8
        # The same new question from four connections at once: one pays, the others get its release.
        outcomes = _race(stores[:4], ["same"] * 4, 0.05, 1.0)
        assert sorted(outcomes) == [(False, True)] * 3 + [(True, False)]
        assert stores[0].privacy.spent("store") == pytest.approx(0.95)
        assert stores[0].privacy.count_releases("store") == 4
    finally:
        for store in stores:
            store.close()
