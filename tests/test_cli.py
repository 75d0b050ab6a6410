"""The command line, run in-process (typer's runner) and once as a real console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from shoplm.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize("command", [[], ["ingest"], ["import"], ["encode"], ["info"], ["demo"]])
def test_help_everywhere(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_ingest_reports_and_exit_codes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = tmp_path / "items.csv"
    good.write_text("item_id,title,price\n1,Mug,3\n2,Cup,-1\n")
    result = invoke("ingest", "items", str(good), "--data-dir", str(data), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["read"], report["accepted"], report["rejected"]) == (2, 1, 1)
    assert Path(report["rejects_path"]).exists()

    missing = invoke("ingest", "items", str(tmp_path / "nope.csv"), "--data-dir", str(data))
    assert missing.exit_code == 2
    assert "no such file" in missing.output

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("sku,name\n1,Mug\n")
    result = invoke("ingest", "items", str(wrong), "--data-dir", str(data))
    assert result.exit_code == 2
    assert "missing required column(s) 'item_id', 'title'" in result.output

    info = invoke("info", "--data-dir", str(data))
    assert info.exit_code == 0
    assert "items" in info.output and "1" in info.output


def test_every_row_bad_exits_nonzero(tmp_path: Path) -> None:
    bad = tmp_path / "items.csv"
    bad.write_text("item_id,title,price\n1,Mug,-3\n")
    result = invoke("ingest", "items", str(bad), "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    assert "price: negative" in result.output


def test_import_list(tmp_path: Path) -> None:
    result = invoke("import", "--list", "x", "y")
    assert result.exit_code == 0
    assert "amazon-seq" in result.output and "uci-retail" in result.output


def test_console_script_is_installed_and_fails_cleanly(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("shoplm")
    result = subprocess.run(
        [str(script), "ingest", "events", str(tmp_path / "none.csv"), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert "no such file" in result.stderr


def test_train_recommend_profile_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    items = tmp_path / "items.csv"
    items.write_text(
        "item_id,title,category,price\n"
        + "\n".join(
            f"i{n},{'Red dress' if n % 2 else 'USB charger'} {n},{'Clothing' if n % 2 else 'Electronics'},{10 + n}"
            for n in range(12)
        )
    )
    events = tmp_path / "events.csv"
    rows = [
        f"U{u},i{(u % 2) + 2 * ((u + s) % 6)},view,{1_700_000_000 + u * 100 + s}" for u in range(30) for s in range(5)
    ]
    events.write_text("user_id,item_id,event_type,timestamp\n" + "\n".join(rows))
    assert invoke("ingest", "items", str(items), "--data-dir", str(data)).exit_code == 0
    assert invoke("ingest", "events", str(events), "--data-dir", str(data)).exit_code == 0
    result = runner.invoke(
        app, ["train", "--data-dir", str(data)], env={"SHOPLM_RECOMMEND__SEQUENTIAL_MINUTES": "0.05"}
    )
    assert result.exit_code == 0, result.output
    assert "ranker" in result.output and "sequential" in result.output
    result = invoke("recommend", "--user", "U1", "--k", "3", "--json", "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    recs = json.loads(result.output)
    assert len(recs) == 3 and all(r["reason"] and r["title"] for r in recs)
    assert invoke("recommend", "--scene", "checkout", "--data-dir", str(data)).exit_code == 2
    profile = json.loads(invoke("profile", "U1", "--json", "--data-dir", str(data)).output)
    assert profile["top_categories"][0]["category"] == "Clothing"


def test_recommend_without_models_is_a_clear_error(tmp_path: Path) -> None:
    result = invoke("recommend", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "run `shoplm train`" in result.output


def test_train_assistant_then_chat_from_stdin(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    # A shop's own sentiment file (0 = negative, as review corpora label it); a small one keeps this fast.
    mine = tmp_path / "moods.csv"
    rows = ["where is my parcel", "谢谢，收到了", "nobody answers my emails", "等了两周还没发货，也没人回复"]
    mine.write_text("message,mood\n" + "".join(f"{t},{m}\n" for t, m in zip(rows, [1, 1, 0, 0], strict=True)))
    columns = ["--sentiment", str(mine), "--text-col", "message", "--label-col", "mood", "--data-dir", data]
    unnamed = invoke("train", "assistant", *columns)
    assert unnamed.exit_code == 2 and "--negative-label" in unnamed.output  # "negative" is not among 0/1
    result = invoke("train", "assistant", *columns, "--negative-label", "0")
    assert result.exit_code == 0, result.output
    assert "assistant intent model" in result.output
    assert "assistant sentiment model (1, negative) from 4 examples of" in " ".join(result.output.split())
    assert invoke("train", "recommenders", "--sentiment", str(mine), "--data-dir", data).exit_code == 2
    assert invoke("train", "everything", "--data-dir", data).exit_code == 2
    bad_mode = invoke("train", "assistant", "--mode", "svm", "--data-dir", data)
    assert bad_mode.exit_code == 2 and "query or lora" in bad_mode.output
    wrong_encoder = runner.invoke(
        app, ["train", "assistant", "--mode", "lora", "--data-dir", data], env={"SHOPLM_ENCODER__NAME": "minilm"}
    )
    assert wrong_encoder.exit_code == 2 and "multilingual-e5-small" in wrong_encoder.output
    chat = runner.invoke(app, ["chat", "--user", "U1", "--data-dir", data], input="where is my order?\n")
    assert chat.exit_code == 0, chat.output
    assert chat.output.strip()


@pytest.mark.parametrize("workers", ["0", "-2"])
def test_serve_refuses_a_worker_count_below_one(tmp_path: Path, workers: str) -> None:
    result = invoke("serve", "--workers", workers, "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "--workers must be 1 or more" in result.output


def test_serve_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("serve", "--port", str(port), "--workers", "1", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in " ".join(result.output.split())


def test_evaluate_an_imported_sequence_store(tmp_path: Path) -> None:
    # the whole engine on data imported through `shoplm import amazon-seq`, one command
    rng = np.random.default_rng(0)
    source = tmp_path / "toys"
    source.mkdir()
    lines = []
    for u in range(60):  # three 6-item cycles, each user walking one from a random phase
        phase, length = int(rng.integers(6)), int(rng.integers(3, 7))
        lines.append(" ".join([str(u + 1)] + [str(6 * (u % 3) + (phase + s) % 6 + 1) for s in range(length)]))
    (source / "sequences.txt").write_text("\n".join(lines) + "\n")
    (source / "items.tsv").write_text("item_id\ttitle\n" + "".join(f"{i}\ttoy number {i}\n" for i in range(1, 19)))
    data = str(tmp_path / "data")
    assert invoke("import", "amazon-seq", str(source), "--data-dir", data).exit_code == 0
    out = tmp_path / "engine.json"
    result = invoke("evaluate", "--out", str(out), "--minutes", "0.1", "--data-dir", data)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert {"sequential", "cooccurrence", "fused", "ranker"} <= set(report["models"])
    assert report["data"]["test_users"] == 60 and report["history"] == "exclude_history"
    assert report["models"]["cooccurrence"]["HR@5"] > 0.5
    assert "best single source" in result.output and "ranker" in result.output
    assert invoke("evaluate", "--max-users", "0", "--data-dir", data).exit_code == 2
    assert invoke("evaluate", "--data-dir", str(tmp_path / "empty")).exit_code == 1
