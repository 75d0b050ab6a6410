"""``shoplm reorder`` and ``shoplm bench reorder`` on a small generated shop, and their bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from shoplm.cli import app
from tests.forecast.synthetic import retail_csv

runner = CliRunner()


def test_reorder_writes_advice_per_sku(tmp_path: Path) -> None:
    data = retail_csv(tmp_path / "retail.csv", weeks=30)
    out = tmp_path / "advice.csv"
    result = runner.invoke(app, ["reorder", "--data", str(data), "--lead-time", "1", "--skus", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    advice = pd.read_csv(out, dtype={"item_id": str}).set_index("item_id")
    assert set(advice.index) == {"100", "101", "102", "103"}
    assert (advice["order_up_to"] >= advice["demand_mean"]).all()
    # the mug selling about 80 a week needs more stock than the one selling about 20
    assert advice.at["103", "order_up_to"] > advice.at["100", "order_up_to"]
    assert advice["newsvendor"].notna().all()


def test_reorder_bad_input_exits_2(tmp_path: Path) -> None:
    data = retail_csv(tmp_path / "retail.csv", weeks=12)
    result = runner.invoke(app, ["reorder", "--data", str(data), "--service-level", "1.5"])
    assert result.exit_code == 2 and "service_level" in result.output
    result = runner.invoke(app, ["reorder", "--data", str(data), "--lead-time", "20"])
    assert result.exit_code == 2 and "lead time" in result.output


def test_bench_reorder_compares_both_policies(tmp_path: Path) -> None:
    data = retail_csv(tmp_path / "retail.csv", weeks=36)
    out = tmp_path / "reorder.json"
    args = ["bench", "reorder", "--data", str(data), "--skus", "4", "--encoder", "tfidf", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["policies"]) == {"shoplm", "naive"}
    for policy in report["policies"].values():
        assert 0.5 < policy["fill_rate"] <= 1.0 and policy["average_on_hand"] > 0
    assert len(report["simulated_weeks"]) == 12
    # a higher service level buys more stock and a better fill, for both policies
    sweep = report["sweep"]
    for name in ("shoplm", "naive"):
        assert sweep["0.99"][name]["average_on_hand"] > sweep["0.8"][name]["average_on_hand"]
        assert sweep["0.99"][name]["fill_rate"] >= sweep["0.8"][name]["fill_rate"]
    assert out.with_suffix(".png").stat().st_size > 0
    short = retail_csv(tmp_path / "short.csv", weeks=20)
    result = runner.invoke(app, ["bench", "reorder", "--data", str(short), "--encoder", "tfidf"])
    assert result.exit_code == 2 and "needs at least 32" in result.output
