"""``shoplm bench clv`` and ``shoplm bench churn`` on small generated files, and their bad-input exits."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shoplm.cli import app
from tests.customers.synthetic import retail_frame, write_cdnow, write_online_retail_csv

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_bench_clv_matches_the_reference_and_writes_json_and_chart(tmp_path: Path) -> None:
    data, out = tmp_path / "cdnow.txt", tmp_path / "clv.json"
    write_cdnow(data, n=600)
    result = invoke("bench", "clv", "--data", str(data), "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["params"]) == {"r", "alpha", "a", "b"}
    assert set(report["holdout"]) >= {"actual", "predicted", "rmse"}
    assert report["holdout"]["actual"] > 0 and report["holdout"]["predicted"] > 0
    assert report["fader_sample"]["n_customers"] == 60
    # the reference extra (lifetimes) is installed by `make venv`: the bench compares with it in the same run
    assert report["reference"]["name"] == "lifetimes"
    for name, value in report["params"].items():
        assert value == pytest.approx(report["reference"]["params"][name], rel=0.02)
    assert out.with_suffix(".png").stat().st_size > 1000


def test_bench_clv_names_the_bad_line(tmp_path: Path) -> None:
    data = tmp_path / "cdnow.txt"
    data.write_text("00001 19970101 1 11.77\n00001 1997-01-08 1 11.77\n")
    result = invoke("bench", "clv", "--data", str(data))
    assert result.exit_code == 2
    assert "cdnow.txt:2" in result.output and "YYYYMMDD" in result.output


def test_bench_churn_reports_every_model(tmp_path: Path) -> None:
    data, out = tmp_path / "retail.csv", tmp_path / "churn.json"
    write_online_retail_csv(retail_frame(n_customers=80, days=300, seed=2), data)
    result = invoke("bench", "churn", "--data", str(data), "--out", str(out), "--evaluate", "1")
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["models"]) >= {"shoplm", "bgnbd", "rfm_logreg"}
    for scores in report["models"].values():
        assert 0 <= scores["AUC"] <= 1 and 0 <= scores["PR_AUC"] <= 1
    assert report["models"]["shoplm"]["AUC"] > 0.7  # churners are easy to tell apart in this file
    evaluated = report["protocol"]["evaluated_cutoffs"]
    assert evaluated[0] not in [c for row in report["per_cutoff"] for c in row["training_cutoffs"]]
    assert report["protocol"]["validation_cutoff"] < evaluated[0]


def test_bench_churn_refuses_a_file_too_short_or_of_another_layout(tmp_path: Path) -> None:
    short = tmp_path / "short.csv"
    frame = retail_frame(n_customers=20, days=100, seed=3)
    write_online_retail_csv(frame, short)
    result = invoke("bench", "churn", "--data", str(short))
    assert result.exit_code == 2
    assert "monthly cutoff(s)" in result.output
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    result = invoke("bench", "churn", "--data", str(wrong))
    assert result.exit_code == 2
    assert "missing" in result.output


def test_bench_clv_runs_without_the_reference_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lifetimes", None)  # import lifetimes now raises ImportError
    data, out = tmp_path / "cdnow.txt", tmp_path / "clv.json"
    write_cdnow(data, n=200)
    result = invoke("bench", "clv", "--data", str(data), "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["reference"] is None and report["max_relative_difference"] is None
    assert "pip install -e '.[reference]'" in report["reference_note"]
    assert "pip install" in result.output
