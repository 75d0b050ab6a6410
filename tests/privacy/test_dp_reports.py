"""The DP domain: ε checks, noise calibrated to ε (opendp), contribution bounding, and the released grid."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shoplm.errors import InputError, NotFoundError
from shoplm.privacy.mechanisms import check_epsilon, laplace_vector
from shoplm.privacy.reports import REPORTS, ReportSpec, bound_contributions, exact_cells, get_report, release_report

SPEC = ReportSpec("t", "sales", "units", ("count", "sum", "mean"), 0, 10, 2, 3, "test")


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), -float("inf"), "x", None])
def test_epsilon_must_be_finite_and_positive(bad: object) -> None:
    with pytest.raises(InputError, match="epsilon must be a finite number above 0"):
        check_epsilon(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize(("sensitivity", "epsilon"), [(2.0, 0.5), (6.0, 2.0)])
def test_noise_scale_matches_epsilon(integer: bool, sensitivity: float, epsilon: float) -> None:
    n = 4000
    noisy, scale = laplace_vector(np.zeros(n), sensitivity=sensitivity, epsilon=epsilon, integer=integer)
    assert scale == pytest.approx(sensitivity / epsilon, rel=1e-6)
    # A Laplace(b) draw has standard deviation b * sqrt(2) and mean 0; 4,000 draws pin the spread to ~2%.
    assert np.std(noisy) / math.sqrt(2) == pytest.approx(scale, rel=0.08)
    assert abs(np.mean(noisy)) < 4 * scale * math.sqrt(2) / math.sqrt(n)
    assert noisy.dtype == (np.int64 if integer else np.float64)


def test_noise_is_fresh_on_every_call() -> None:
    first, _ = laplace_vector(np.zeros(50), sensitivity=1, epsilon=1, integer=False)
    second, _ = laplace_vector(np.zeros(50), sensitivity=1, epsilon=1, integer=False)
    assert not np.array_equal(first, second)


def _rows(records: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(records, columns=["user_id", "category", "day", "value"])


def test_each_customer_is_bounded_in_cells_rows_and_values() -> None:
    days = [f"2026-06-{d:02d}" for d in range(1, 11)]
    heavy = [("heavy", "Toys", day, 100.0) for day in days for _ in range(5)]  # 10 cells, 5 rows each
    light = [("light", "Books", "2026-06-01", -3.0)]
    outside = [("light", "Garden", "2026-06-01", 1.0), ("light", "Books", "2026-07-01", 1.0)]
    kept = bound_contributions(_rows(heavy + light + outside), SPEC, ["Toys", "Books"], days)
    per_user_cells = kept.groupby("user_id")[["category", "day"]].apply(lambda f: len(f.drop_duplicates()))
    assert per_user_cells["heavy"] == SPEC.max_cells_per_user and per_user_cells["light"] == 1
    assert kept.groupby(["user_id", "category", "day"]).size().max() == SPEC.max_rows_per_cell
    assert kept["value"].max() == SPEC.upper and kept["value"].min() == SPEC.lower  # clamped both ways
    assert set(kept["category"]) == {"Toys", "Books"} and set(kept["day"]) <= set(days)  # the key set only
    # One customer moves the count vector by at most cells x rows, the sum by that x max |value|.
    assert SPEC.sensitivity("count") == 6 and SPEC.sensitivity("sum") == 60


def test_which_cells_a_customer_keeps_does_not_depend_on_the_values() -> None:
    days = [f"2026-06-{d:02d}" for d in range(1, 9)]
    small = _rows([("u", "Toys", day, 1.0) for day in days])
    large = _rows([("u", "Toys", day, 9.0) for day in days])
    kept_small = bound_contributions(small, SPEC, ["Toys"], days)
    kept_large = bound_contributions(large, SPEC, ["Toys"], days)
    assert kept_small["day"].tolist() == kept_large["day"].tolist()


def test_the_release_covers_the_whole_public_grid_and_states_its_terms() -> None:
    rows = _rows([("a", "Toys", "2026-06-01", 2.0), ("b", "Toys", "2026-06-01", 4.0)])
    categories, days = ["Books", "Toys"], ["2026-06-01", "2026-06-02", "2026-06-03"]
    release = release_report(SPEC, rows, categories=categories, days=days, epsilon=2.0)
    assert [(c["category"], c["day"]) for c in release["cells"]] == [(c, d) for c in categories for d in days]
    assert release["epsilon"] == 2.0 and release["delta"] == 0.0 and "opendp" in release["mechanism"]
    assert release["epsilon_split"] == {"count": 1.0, "sum": 1.0}
    assert release["noise_scale"] == {"count": pytest.approx(6.0), "sum": pytest.approx(60.0)}
    assert release["bounds"]["clamp"] == [0, 10] and release["bounds"]["max_cells_per_user"] == 3
    for cell in release["cells"]:
        assert isinstance(cell["count"], int)
        assert cell["mean"] is None or SPEC.lower <= cell["mean"] <= SPEC.upper
        assert (cell["mean"] is None) == (cell["count"] < 1)


def test_exact_cells_are_zero_where_nobody_bought() -> None:
    rows = _rows([("a", "Toys", "2026-06-02", 2.0)])
    cells = exact_cells(rows, ["Toys"], ["2026-06-01", "2026-06-02"])
    assert cells[["count", "sum"]].to_numpy().tolist() == [[0, 0], [1, 2]]


def test_a_larger_epsilon_gives_less_noise() -> None:
    rows = _rows([("a", "Toys", "2026-06-01", 1.0)])
    days = [f"2026-06-{d:02d}" for d in range(1, 31)]
    spec = REPORTS["daily-views"]
    errors = {}
    for epsilon in (0.1, 10.0):
        release = release_report(spec, rows, categories=["Toys"] * 1, days=days, epsilon=epsilon)
        truth = np.array([1] + [0] * 29)
        errors[epsilon] = np.abs(np.array([c["count"] for c in release["cells"]]) - truth).mean()
    assert errors[10.0] < errors[0.1]


def test_unknown_reports_and_empty_grids_are_refused() -> None:
    with pytest.raises(NotFoundError, match="no report 'nope': the reports are daily-sales"):
        get_report("nope")
    with pytest.raises(InputError, match="at least one category"):
        release_report(SPEC, _rows([]), categories=[], days=["2026-06-01"], epsilon=1.0)
