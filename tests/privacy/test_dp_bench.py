"""``shoplm bench dp``'s figures on a tiny known dataset: error falls with ε, bounding loss is what was cut."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from shoplm.privacy import bench
from shoplm.privacy.bench import BenchCase, run_dp_benchmark, utility
from shoplm.privacy.reports import REPORTS

DAYS = [f"2026-06-{d:02d}" for d in range(1, 11)]
CATEGORIES = ["Books", "Games", "Toys"]


def _rows(units: float) -> pd.DataFrame:
    # 40 customers, each buying once in one cell: every cell holds 4 sales of ``units``.
    records = [(f"u{i}", CATEGORIES[i % 3], DAYS[i % 10], units) for i in range(40)]
    return pd.DataFrame(records, columns=["user_id", "category", "day", "value"])


def test_error_falls_with_epsilon_and_bounding_loss_is_what_clamping_cut() -> None:
    spec = replace(REPORTS["daily-sales"], upper=10)
    low, high = (utility(spec, _rows(2), CATEGORIES, DAYS, epsilon, draws=5) for epsilon in (0.2, 50.0))
    assert high["cell_rel_error"] < low["cell_rel_error"] and high["total_rel_error"] < low["total_rel_error"]
    assert low["bounding_loss"] == 0.0  # 2 units per line fit under the clamp of 10
    clamped = utility(replace(spec, upper=1), _rows(2), CATEGORIES, DAYS, 50.0, draws=3)
    assert clamped["bounding_loss"] == 0.5  # each 2-unit line counted as 1
    assert clamped["cell_rel_error"] > 0.4  # the bias shows even with little noise


def test_the_benchmark_writes_json_and_a_chart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A two-point grid keeps the test short; the grid's search is the same code.
    monkeypatch.setattr(bench, "UPPER_FACTORS", (1.0, 4.0))
    monkeypatch.setattr(bench, "CELLS_PER_USER", (1,))
    monkeypatch.setattr(bench, "ROWS_FACTORS", (1,))
    rows = _rows(2)
    case = BenchCase("tiny", REPORTS["daily-sales"], rows, rows, CATEGORIES, DAYS, DAYS)
    out = tmp_path / "dp.json"
    report = run_dp_benchmark([case], out, draws=2, validation_draws=1, progress=lambda _line: None)
    assert out.with_suffix(".png").stat().st_size > 0
    written = json.loads(out.read_text())
    assert [(r["variant"], r["epsilon"]) for r in written["results"]] == [
        (variant, e) for variant in ("default", "validated") for e in (0.1, 0.5, 1.0, 5.0)
    ]
    assert len(written["bounds_chosen_on_validation"]["tiny/daily-sales"]["grid"]) == 2 and report["results"]
