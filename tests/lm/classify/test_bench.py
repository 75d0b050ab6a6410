"""run_classifier_benchmark and the bench sub-commands on tiny generated files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from shoplm.cli import app
from shoplm.errors import InputError
from shoplm.lm.classify.bench import run_classifier_benchmark
from tests.assistant.synthetic import REVIEWS, TEST_LABELS, TEST_TEXTS, TRAIN_LABELS, TRAIN_TEXTS

KEYS = {"accuracy", "macro_f1", "train_seconds", "n_train", "n_test", "ece", "protocol", "params"}
FAST = {"calibration_folds": 3, "l2": 1e-3}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    train, test = tmp_path / "train.csv", tmp_path / "test.tsv"
    pd.DataFrame({"utterance": TRAIN_TEXTS, "intent": TRAIN_LABELS}).to_csv(train, index=False)
    pd.DataFrame({"utterance": TEST_TEXTS, "intent": TEST_LABELS}).to_csv(test, sep="\t", index=False)
    reviews = tmp_path / "reviews.all"
    reviews.write_text("".join(f"{label} {text}\n" for text, label in REVIEWS * 2))
    return {"train": train, "test": test, "reviews": reviews}


def test_test_file_protocol_writes_json(files: dict[str, Path], tmp_path: Path, embedding_cache: Path) -> None:
    out = tmp_path / "out" / "results.json"
    report = run_classifier_benchmark(
        files["train"], files["test"], text_col="utterance", label_col="intent", out=out,
        cache_dir=embedding_cache, params=FAST, latency_texts=2,
    )  # fmt: skip
    written = json.loads(out.read_text())
    assert set(written) >= KEYS and written["accuracy"] == report["accuracy"]
    assert (written["n_train"], written["n_test"]) == (36, 12)
    assert written["accuracy"] >= 11 / 12 and 0 <= written["ece"] <= 1
    assert written["latency_texts"] == 2 and written["latency_ms_median"] > 0


def test_holdout_and_folds(files: dict[str, Path], embedding_cache: Path) -> None:
    held = run_classifier_benchmark(
        files["train"], text_col="utterance", label_col="intent", holdout=0.25, cache_dir=embedding_cache,
        params=FAST, latency_texts=0,
    )  # fmt: skip
    assert (held["n_train"], held["n_test"]) == (24, 12)
    assert "hold-out 0.25" in held["protocol"]
    cv = run_classifier_benchmark(
        files["reviews"], folds=3, cache_dir=embedding_cache, params={**FAST, "calibration_folds": 0},
        latency_texts=0,
    )  # fmt: skip
    assert cv["n_test"] == 24 and len(cv["folds"]) == 3
    assert {"accuracy_std", "ece_std"} <= set(cv)


def test_bad_inputs(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"train\.csv.*missing column 'text'"):
        run_classifier_benchmark(files["train"], files["test"], label_col="intent")
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(InputError, match=r"empty\.tsv: empty file"):
        run_classifier_benchmark(empty, holdout=0.2)
    with pytest.raises(InputError, match="hold-out"):
        run_classifier_benchmark(files["train"], text_col="utterance", label_col="intent")


def test_bench_commands_of_the_cli(files: dict[str, Path], tmp_path: Path, embedding_cache: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.json"
    args = ["bench", "intents", "--train", str(files["train"]), "--test", str(files["test"]), "--text-col", "utterance",
            "--label-col", "intent", "--out", str(out), "--cache-dir", str(embedding_cache),
            "--ngram-features", "0"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert set(json.loads(out.read_text())) >= KEYS
    bad = runner.invoke(app, ["bench", "sentiment", "--train", str(files["train"]), "--holdout", "0.2"])
    assert bad.exit_code == 2
    assert "missing columns 'text', 'label'" in " ".join(bad.output.split())
