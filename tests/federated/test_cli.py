"""``shoplm bench federated``: bad input is refused with exit 2 and a clear message, before any training."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shoplm.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "images"], "unknown task 'images'"),
        (["--task", "intent", "--strategy", "fedsgd"], "unknown strategy fedsgd"),
        (["--task", "intent", "--dp-noise", "nan"], "dp-noise must be a number >= 0"),
        (["--task", "intent", "--dp-clip", "0"], "dp-clip must be a positive number"),
        (["--task", "intent", "--shops", "1"], "shops must be at least 2"),
        (["--task", "intent"], "needs the Bitext CSV"),
        (["--task", "seqrec", "--seqrec-data", "/no/such/dir"], "needs the amazon-toys directory"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "federated", *args, "--out", str(tmp_path / "f.json")])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "f.json").exists()
