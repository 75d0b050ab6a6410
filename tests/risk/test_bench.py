"""`shoplm bench fraud` on a tiny demo store: the JSON keys, the chart, and clear errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from shoplm.cli import risk as risk_commands
from shoplm.demo.generator import DemoSizes, generate_demo_store
from shoplm.errors import InputError
from shoplm.risk.bench import load_demo_store, run_fraud_benchmark

TINY = DemoSizes(n_items=120, n_users=300, n_events=20_000, n_categories=6)


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo_store(tmp_path_factory.mktemp("demo"), seed=3, sizes=TINY).out_dir


def _app() -> typer.Typer:
    app, bench = typer.Typer(), typer.Typer()
    app.add_typer(bench, name="bench")

    @app.callback()
    def main() -> None:
        """shoplm (test harness for the risk commands)."""

    risk_commands.register(app, bench)
    return app


def test_bench_writes_the_figures(tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "fraud.json"
    result = CliRunner().invoke(_app(), ["bench", "fraud", "--data", str(tiny_store), "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert set(results["models"]) == {
        "shoplm",
        "shoplm_no_rules",
        "ecod_one_sided",
        "ecod",
        "iforest",
        "copod",
        "rules",
    }
    assert results["best"] in results["models"]
    for figures in results["models"].values():
        assert set(figures["precision_at_k"]) == {"10", "25", "50"}
        assert 0.0 <= figures["recall_at_1pct"] <= results["data"]["recall_ceiling_at_1pct"]
        assert all(0.0 <= v <= 1.0 for v in figures["recall_at_1pct_by_reason"].values())
    data = results["data"]
    assert data["history_orders"] + data["reported_orders"] == data["orders"]
    assert data["reported_fraud"] > 0 and data["bots_flagged"]
    # Settings are chosen on the history only, among the documented candidates.
    assert len(results["selection"]["candidates"]) == 20
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    # The demo's injected fraud is blatant: the ensemble's first alerts are fraud.
    assert results["models"]["shoplm"]["precision_at_k"]["10"] >= 0.3
    assert results["example_alerts"] and "rules" in results["example_alerts"][0]


def test_ground_truth_is_not_an_input(tiny_store: Path, tmp_path: Path) -> None:
    # The model never reads ground_truth.json: the same scores without it (only the figures need it).
    frames = load_demo_store(tiny_store)
    assert "fraud" not in " ".join(frames.orders.columns)
    copy = tmp_path / "no-truth"
    copy.mkdir()
    for name in ("orders.csv", "users.csv", "events.parquet", "items.csv"):
        (copy / name).write_bytes((tiny_store / name).read_bytes())
    with pytest.raises(InputError, match="ground truth"):
        run_fraud_benchmark(copy)


def test_bad_input_exits_2(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(_app(), ["bench", "fraud", "--data", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert "not a directory" in missing.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "orders.csv").write_text("order_id,user_id\nO1,U1\n")
    result = runner.invoke(_app(), ["bench", "fraud", "--data", str(broken)])
    assert result.exit_code == 2
    assert "orders.csv" in result.output and "lacks column(s)" in result.output
    assert "Traceback" not in result.output
