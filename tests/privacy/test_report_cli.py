"""``shoplm report``: a release with its terms, the budget, and exit 2 for every refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shoplm.cli import app
from tests.privacy.shop import WINDOW, dp_shop_copy

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHOPLM_PSEUDONYMIZATION_KEY", "dp-tests")
    monkeypatch.setenv("SHOPLM_PRIVACY__EPSILON_BUDGET", "1.5")
    return dp_shop_copy(tmp_path_factory, tmp_path)


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_the_default_report_is_daily_sales_with_its_terms(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "release.json"
    window = ("--start", WINDOW[0], "--end", WINDOW[1])
    result = invoke("report", "--dp", "--epsilon", "1.0", *window, "--data-dir", str(data_dir), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "ε = 1, δ = 0" in result.output and "at most 2 rows per cell" in result.output
    assert "1 of 1.5 spent, 0.5 left" in " ".join(result.output.split())
    assert f"days {WINDOW[0]} .. {WINDOW[1]}" in result.output
    released = json.loads(out.read_text())
    assert released["report"] == "daily-sales" and released["epsilon"] == 1.0
    ledger = invoke("report", "--budget", "--data-dir", str(data_dir))
    assert ledger.exit_code == 0 and json.loads(ledger.output)["spent"] == 1.0


def test_list_names_every_report(data_dir: Path) -> None:
    result = invoke("report", "--list")
    assert result.exit_code == 0
    for name in ("daily-sales", "daily-revenue", "daily-views", "daily-ratings"):
        assert name in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dp", "--epsilon", "0"], "epsilon must be a finite number above 0"),
        (["--dp", "--epsilon", "-2"], "epsilon must be a finite number above 0"),
        (["--dp", "--epsilon", "nan"], "not nan"),
        (["--dp", "--epsilon", "inf"], "not inf"),
        (["weekly-gossip", "--dp", "--epsilon", "1"], "no report 'weekly-gossip'"),
        (["--epsilon", "1"], "differential privacy only: add --dp"),
        (["--dp"], "--dp needs --epsilon"),
        (["--dp", "--epsilon", "1", "--start", "yesterday"], "start must be a day as YYYY-MM-DD"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(data_dir: Path, args: list[str], message: str) -> None:
    result = invoke("report", *args, "--data-dir", str(data_dir))
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_a_spent_budget_exits_2_and_a_repeat_is_free(data_dir: Path) -> None:
    window = ("--start", WINDOW[0], "--end", WINDOW[1], "--data-dir", str(data_dir))
    first = invoke("report", "daily-views", "--dp", "--epsilon", "1.5", "--json", *window)
    assert first.exit_code == 0, first.output
    refused = invoke("report", "daily-ratings", "--dp", "--epsilon", "0.1", *window)
    assert refused.exit_code == 2 and "would be exceeded" in " ".join(refused.output.split())
    repeated = invoke("report", "daily-views", "--dp", "--epsilon", "1.5", "--json", *window)
    assert repeated.exit_code == 0
    assert json.loads(repeated.output)["cells"] == json.loads(first.output)["cells"]
    assert json.loads(repeated.output)["repeated"] is True


def test_a_store_from_before_the_ledger_is_told_to_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    monkeypatch.setenv("SHOPLM_PSEUDONYMIZATION_KEY", "dp-tests")
    data_dir = tmp_path / "old"
    data_dir.mkdir()
    # A store with tables but no schema revision, as before migrations (and before the ledger).
    with sqlite3.connect(data_dir / "shoplm.sqlite") as connection:
        connection.execute("CREATE TABLE items (item_id TEXT PRIMARY KEY)")
    result = invoke("report", "--dp", "--epsilon", "1", "--data-dir", str(data_dir))
    assert result.exit_code == 2 and "shoplm db upgrade" in " ".join(result.output.split())
