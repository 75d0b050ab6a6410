"""load_labelled: CSV, TSV and 'label text' lines; clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplm.errors import InputError
from shoplm.lm.classify import load_labelled, read_label_text_lines


def test_csv_keeps_quoted_commas(tmp_path: Path) -> None:
    path = tmp_path / "intents.csv"
    path.write_text('instruction,intent,category\n"hi, where is my order",track_order,ORDER\n我要退款,refund,REFUND\n')
    frame = load_labelled(path, "instruction", "intent")
    assert list(frame.columns) == ["text", "label"]
    assert frame["text"].tolist() == ["hi, where is my order", "我要退款"]
    assert frame["label"].tolist() == ["track_order", "refund"]


def test_tsv_reads_bare_quotes_and_integer_labels(tmp_path: Path) -> None:
    path = tmp_path / "reviews.tsv"
    path.write_text('label\ttext_a\n1\t"好评" 推荐\n0\t差评"\n')
    frame = load_labelled(path, "text_a", "label")
    assert frame["text"].tolist() == ['"好评" 推荐', '差评"']
    assert frame["label"].tolist() == [1, 0]


def test_label_text_lines(tmp_path: Path) -> None:
    path = tmp_path / "custrev.all"
    path.write_text("1 works great .\n\n0 broke after a week\n")
    frame = load_labelled(path, "ignored", "ignored")
    assert frame.to_dict("records") == [
        {"text": "works great .", "label": 1},
        {"text": "broke after a week", "label": 0},
    ]
    assert read_label_text_lines(path).shape == (2, 2)


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_missing_column_names_file_and_column(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    sep = "," if suffix == ".csv" else "\t"
    path.write_text(f"text{sep}category\nhello{sep}x\n")
    with pytest.raises(InputError, match=r"data\.(csv|tsv).*missing column 'intent'.*'text', 'category'") as info:
        load_labelled(path, "text", "intent")
    assert info.value.path == str(path) and info.value.field == "intent"


@pytest.mark.parametrize("content", ["", "text,label\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=r"empty\.csv: empty file"):
        load_labelled(path)


def test_empty_lines_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.all"
    path.write_text("\n\n")
    with pytest.raises(InputError, match=r"empty\.all: empty file"):
        load_labelled(path)


def test_blank_label_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("text,label\na,x\nb,\n")
    with pytest.raises(InputError, match=r"data\.csv:3 \[label\]: 1 row\(s\) without a label"):
        load_labelled(path)


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_labelled(tmp_path / "nope.csv")
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(InputError, match=r"unknown file type \.xlsx"):
        load_labelled(tmp_path / "data.xlsx")
