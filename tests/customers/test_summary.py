"""Frequency / recency / T summaries, holdout counts and the CDNOW reader."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shoplm.customers.summary import holdout_counts, read_cdnow, rfm_summary
from shoplm.errors import InputError


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "", "b"],
            "timestamp": pd.to_datetime(
                ["2011-01-01 09:00", "2011-01-01 17:00", "2011-01-15 00:00", "2011-02-12 00:00", "2011-01-08 00:00"]
            ).append(pd.to_datetime(["2011-01-09", "2011-01-20"])),
            "amount": [10.0, 5.0, 20.0, 40.0, 7.0, 99.0, -7.0],
            "is_return": [False, False, False, False, False, False, True],
        }
    )


def test_same_day_purchases_are_one_transaction_and_returns_and_guests_are_not_purchases() -> None:
    summary = rfm_summary(_frame(), "2011-01-29", unit="D")
    assert list(summary.index) == ["a", "b"]
    a, b = summary.loc["a"], summary.loc["b"]
    assert (a["frequency"], a["recency"], a["T"], a["monetary_value"]) == (1, 14.0, 28.0, 20.0)
    assert (b["frequency"], b["recency"], b["T"], b["monetary_value"]) == (0, 0.0, 21.0, 0.0)
    weeks = rfm_summary(_frame(), "2011-01-29", unit="W")
    assert weeks.loc["a", "T"] == pytest.approx(4.0)


def test_holdout_counts_the_days_after_the_calibration_end() -> None:
    counts = holdout_counts(_frame(), "2011-01-29", periods=2, unit="W")
    assert counts.to_dict() == {"a": 1}
    assert holdout_counts(_frame(), "2011-01-29", periods=1, unit="W").empty
    with pytest.raises(InputError, match="time unit"):
        holdout_counts(_frame(), "2011-01-29", periods=1, unit="M")


def test_reads_cdnow_with_or_without_header(tmp_path: Path) -> None:
    path = tmp_path / "cdnow.txt"
    path.write_text(" customer_id date cds dollars\n 00001 19970101  1   11.77\n\n 00002 19970112  5   77.00\n")
    frame = read_cdnow(path)
    assert frame["customer_id"].tolist() == ["00001", "00002"]
    assert frame["timestamp"].tolist() == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-01-12")]
    assert frame["amount"].tolist() == [11.77, 77.0]
    path.write_text("00001 19970101 1 11.77\n")
    assert len(read_cdnow(path)) == 1


@pytest.mark.parametrize(
    ("second_line", "line", "message"),
    [
        ("00002 1997011 1 12.00", 3, "date must be a date as YYYYMMDD"),
        ("00002 19970231 1 12.00", 3, "date must be"),
        ("00002 19970112 1", 3, "expected 4 fields"),
        ("00002 19970112 one 12.00", 3, "number_of_cds must be a whole number"),
        ("00002 19970112 1 $12", 3, "dollar_value must be a number"),
    ],
)
def test_a_malformed_line_is_named(tmp_path: Path, second_line: str, line: int, message: str) -> None:
    path = tmp_path / "cdnow.txt"
    path.write_text(f"customer_id date cds dollars\n00001 19970101 1 11.77\n{second_line}\n")
    with pytest.raises(InputError, match=message) as caught:
        read_cdnow(path)
    assert caught.value.line == line
    assert f"cdnow.txt:{line}" in str(caught.value)


def test_missing_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_cdnow(tmp_path / "none.txt")
    (tmp_path / "empty.txt").write_text("customer_id date cds dollars\n")
    with pytest.raises(InputError, match="no transaction line"):
        read_cdnow(tmp_path / "empty.txt")
