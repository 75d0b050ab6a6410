"""The forecast API and the bench command end to end on small generated shops.

One module on purpose: statsforecast's models are compiled by numba on their first use in a
process (some seconds), so every test that runs them lives here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from shoplm.cli import app
from shoplm.errors import InputError
from shoplm.forecast import forecast, weekly_demand
from tests.forecast.synthetic import retail_csv, transactions

runner = CliRunner()
MODELS = ("AutoETS", "CrostonOptimized", "TSB")


@pytest.fixture(scope="module")
def result():
    panel = weekly_demand(transactions(weeks=40))
    categories = {"100": "mugs", "101": "mugs", "102": "mugs", "103": "mugs", "300": "mugs"}
    return forecast(panel, horizon=4, categories=categories, models=MODELS)


def test_every_sku_and_category_gets_ordered_intervals(result) -> None:
    assert set(result["unique_id"]) == {
        "100",
        "101",
        "102",
        "103",
        "200",
        "201",
        "300",
        "400",
        "category:mugs",
        "category:all",
    }
    assert (result.groupby("unique_id").size() == 4).all()
    ordered = result[["lo-95", "lo-80", "mean", "hi-80", "hi-95"]].to_numpy()
    assert (np.diff(ordered, axis=1) >= -1e-9).all() and (ordered >= 0).all()
    assert (result["hi-95"] > result["lo-95"]).any()


def test_levels_follow_the_history(result) -> None:
    means = result.groupby("unique_id")["mean"].mean()
    # smooth mugs sell about 20, 40, 60, 80 a week times a yearly wave
    assert means["100"] < means["101"] < means["102"] < means["103"]
    assert 40 < means["103"] < 160
    # the new mug (5 weeks, ~31 a week) is forecast from similar mugs and its own weeks
    assert result.loc[result["unique_id"] == "300", "series_class"].iloc[0] == "new"
    assert 10 < means["300"] < 80
    # returns only: nothing ever sold, a forecast of 0
    assert means["400"] == 0.0
    # categories are reconciled with their SKUs
    mugs = sum(means[s] for s in ["100", "101", "102", "103", "300"])
    assert means["category:mugs"] == pytest.approx(mugs, rel=0.05)


@pytest.mark.parametrize("horizon", [0, 53])
def test_bad_horizon_is_refused(horizon: int) -> None:
    with pytest.raises(InputError, match="horizon must be 1 to 52"):
        forecast(weekly_demand(transactions(weeks=12)), horizon=horizon, models=MODELS)


def test_too_short_panel_and_bad_levels_are_refused() -> None:
    panel = weekly_demand(transactions(weeks=10))
    with pytest.raises(InputError, match="at least 12 are needed"):
        forecast(panel, horizon=4, models=MODELS, global_model=False)
    with pytest.raises(InputError, match="levels"):
        forecast(panel, horizon=2, levels=(80, 100), models=MODELS)


def test_bench_command_writes_every_model(tmp_path: Path) -> None:
    data = retail_csv(tmp_path / "retail.csv", weeks=40)
    out = tmp_path / "results.json"
    result = runner.invoke(
        app, ["bench", "forecast", "--data", str(data), "--out", str(out), "--encoder", "tfidf", "--skus", "6"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    expected = {"shoplm", "SeasonalNaive", "AutoETS", "AutoARIMA", "CrostonOptimized", "TSB", "IMAPA", "LightGBM"}
    assert expected <= set(report["models"])
    for scores in report["models"].values():
        assert {"MASE", "RMSSE", "bias", "coverage80", "coverage95"} <= set(scores)
        assert scores["MASE"] > 0 and 0 <= scores["coverage80"] <= scores["coverage95"] <= 1
    assert report["best"] in report["models"]
    assert report["protocol"]["reported_origins"][-1] == "2023-09-16"
    assert report["data"]["clipped_negative_weeks"] > 0
    assert out.with_suffix(".png").stat().st_size > 0


def test_bench_command_bad_input_exits_2(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("sku,qty\n1,2\n")
    result = runner.invoke(app, ["bench", "forecast", "--data", str(wrong), "--encoder", "tfidf"])
    assert result.exit_code == 2
    assert "missing" in result.output and "Traceback" not in result.output
    short = retail_csv(tmp_path / "short.csv", weeks=20)
    result = runner.invoke(app, ["bench", "forecast", "--data", str(short), "--encoder", "tfidf"])
    assert result.exit_code == 2
    assert "the protocol needs at least 36" in result.output


def test_pipeline_docstring_example_runs() -> None:
    import doctest

    import shoplm.forecast.pipeline as pipeline

    result = doctest.testmod(pipeline, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_a_shop_with_only_returns_forecasts_zero() -> None:
    frame = transactions(weeks=20)
    returns = frame[frame["item_id"] == "400"]
    edges = frame.iloc[[0, -1]].assign(item_id="400", quantity=-1)  # the file's first and last days
    panel = weekly_demand(pd.concat([returns, edges], ignore_index=True))
    assert panel.demand["y"].sum() == 0
    out = forecast(panel, horizon=3, models=("AutoETS",))
    assert set(out["unique_id"]) == {"400", "category:all"}
    assert (out[["mean", "lo-80", "hi-80", "lo-95", "hi-95"]].to_numpy() == 0).all()
