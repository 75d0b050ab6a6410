"""Weekly demand: returns, service lines, week boundaries, demand classes, horizon checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shoplm.errors import InputError
from shoplm.forecast.panel import check_horizon, demand_class, naive_scale, weekly_demand
from tests.forecast.synthetic import START, transactions


def test_net_demand_clips_negative_weeks_and_counts_returns() -> None:
    frame = transactions(weeks=20)
    panel = weekly_demand(frame)
    assert panel.freq == "W-SAT"
    assert len(panel.weeks) == 20 and panel.weeks[0] == START
    by_item = panel.demand.groupby("unique_id")["y"]
    assert (panel.demand["y"] >= 0).all()
    # returns only: an all-zero series, one clipped week per return week
    returns_weeks = sum(1 for week in range(20) if week % 7 == 3)
    assert by_item.sum()["400"] == 0.0
    assert panel.clipped_weeks == returns_weeks
    assert panel.returned_units == 2 * returns_weeks
    # service lines are not products
    assert "POST" not in set(panel.demand["unique_id"]) and panel.service_lines == 20
    # weekly sums equal the sales of the synthetic frame
    sold = frame[(frame["item_id"] == "101")]["quantity"].sum()
    assert by_item.sum()["101"] == sold


def test_series_start_at_first_sale_and_zero_weeks_are_filled() -> None:
    panel = weekly_demand(transactions(weeks=20))
    lengths = panel.demand.groupby("unique_id").size()
    assert lengths["300"] == 5  # new in the last 5 weeks
    assert lengths["100"] == 20
    intermittent = panel.demand[panel.demand["unique_id"] == "200"]["y"].to_numpy()
    assert (intermittent == 0).any() and (intermittent > 0).any()
    first = panel.items.set_index("item_id").at["300", "first_week"]
    assert first == panel.weeks[-5]


def test_partial_first_week_is_dropped() -> None:
    frame = transactions(weeks=10)
    early = frame.iloc[:1].assign(timestamp=START - pd.Timedelta(days=2), quantity=500)
    panel = weekly_demand(pd.concat([early, frame], ignore_index=True))
    assert panel.weeks[0] == START
    assert panel.notes and "partial first week" in panel.notes[0]
    assert panel.demand["y"].max() < 500


def test_bad_frames_are_clear_errors() -> None:
    with pytest.raises(InputError, match="lacks columns: unit_price"):
        weekly_demand(transactions(weeks=3).drop(columns=["unit_price"]))
    postage = transactions(weeks=3)
    postage = postage[postage["item_id"] == "POST"]
    with pytest.raises(InputError, match="no product line"):
        weekly_demand(postage)


@pytest.mark.parametrize("horizon", [0, -1, 53, 2.5, True])
def test_horizon_out_of_range(horizon: object) -> None:
    with pytest.raises(InputError, match="horizon must be 1 to 52"):
        check_horizon(horizon)  # type: ignore[arg-type]


def test_demand_classes_follow_syntetos_boylan() -> None:
    rng = np.random.default_rng(1)
    assert demand_class(rng.poisson(50, 40) + 1.0) == "smooth"
    assert demand_class(np.where(rng.random(40) < 0.9, rng.choice([1.0, 200.0], 40), 0)) == "erratic"
    sparse = np.zeros(40)
    sparse[::4] = 10.0
    assert demand_class(sparse) == "intermittent"
    sparse[::8] = 300.0
    assert demand_class(sparse) == "lumpy"
    assert demand_class(np.zeros(10)) == "lumpy"
    assert naive_scale(np.array([5.0])) == 0.0


def test_online_retail_ii_layout_gives_the_same_panel(tmp_path) -> None:
    from shoplm.ingest.transactions import read_retail_transactions
    from tests.forecast.synthetic import retail_csv

    first = retail_csv(tmp_path / "retail.csv", weeks=12)
    second = tmp_path / "retail_ii.csv"
    raw = pd.read_csv(first, dtype=str)
    raw.rename(columns={"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}).to_csv(
        second, index=False
    )
    one = weekly_demand(read_retail_transactions(first).frame)
    two = weekly_demand(read_retail_transactions(second).frame)
    pd.testing.assert_frame_equal(one.demand, two.demand)
    assert one.clipped_weeks == two.clipped_weeks > 0
