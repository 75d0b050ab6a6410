"""The estimator contract, as a test mixin every estimator's tests reuse.

Subclass :class:`EstimatorContract` in a test class and define ``make_estimator`` (unfitted,
small hyperparameters), ``fit_estimator`` (fit it on small data, return it) and ``probe``
(outputs that must survive a save/load round trip, as a numpy array).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shoplm.errors import ModelFileError, NotFittedError
from shoplm.estimator import ARRAYS_FILE, META_FILE, STRINGS_FILE, Estimator


class EstimatorContract:
    """Mixin: the tests every trained component must pass."""

    #: absolute tolerance for probe equality after a round trip
    probe_atol: float = 1e-6

    def make_estimator(self) -> Estimator:
        raise NotImplementedError

    def fit_estimator(self, estimator: Estimator) -> Estimator:
        raise NotImplementedError

    def probe(self, estimator: Estimator) -> np.ndarray:
        raise NotImplementedError

    # -- the contract ------------------------------------------------------------------
    def test_init_stores_hyperparameters_only(self) -> None:
        estimator = self.make_estimator()
        assert not estimator.is_fitted
        params = estimator.get_params()
        json.dumps(params)  # hyperparameters must be JSON-serializable
        assert type(estimator)(**params).get_params() == params

    def test_fit_returns_self_and_marks_fitted(self) -> None:
        estimator = self.make_estimator()
        assert self.fit_estimator(estimator) is estimator
        assert estimator.is_fitted

    def test_unfitted_cannot_be_saved(self, tmp_path: Path) -> None:
        with pytest.raises(NotFittedError):
            self.make_estimator().save(tmp_path / "model")

    def test_round_trip_gives_same_outputs(self, tmp_path: Path) -> None:
        estimator = self.fit_estimator(self.make_estimator())
        before = self.probe(estimator)
        estimator.save(tmp_path / "model")
        loaded = type(estimator).load(tmp_path / "model")
        assert type(loaded) is type(estimator)
        assert loaded.get_params() == estimator.get_params()
        np.testing.assert_allclose(self.probe(loaded), before, atol=self.probe_atol)
        # The base class loads whatever the directory holds, too.
        assert type(Estimator.load(tmp_path / "model")) is type(estimator)

    def test_files_hold_no_pickle_and_meta_has_versions(self, tmp_path: Path) -> None:
        path = self.fit_estimator(self.make_estimator()).save(tmp_path / "model")
        names = {p.name for p in path.iterdir()}
        assert META_FILE in names
        assert names <= {META_FILE, ARRAYS_FILE, STRINGS_FILE}, f"unexpected files {names}"
        meta = json.loads((path / META_FILE).read_text())
        assert {"python", "numpy", "shoplm"} <= set(meta["versions"])
        assert set(meta["files"]) == names - {META_FILE}
        if STRINGS_FILE in names:
            with zipfile.ZipFile(path / STRINGS_FILE) as archive:
                for member in archive.namelist():
                    header = archive.read(member)[:128]
                    assert b"'descr': '|O'" not in header, f"{member} is an object (pickled) array"

    def test_tampered_file_is_refused(self, tmp_path: Path) -> None:
        path = self.fit_estimator(self.make_estimator()).save(tmp_path / "model")
        payload = path / (ARRAYS_FILE if (path / ARRAYS_FILE).exists() else STRINGS_FILE)
        data = bytearray(payload.read_bytes())
        data[-1] ^= 0xFF
        payload.write_bytes(bytes(data))
        with pytest.raises(ModelFileError, match="hash"):
            type(self.make_estimator()).load(path)

    def test_missing_directory_is_a_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(ModelFileError, match="not a saved shoplm model"):
            type(self.make_estimator()).load(tmp_path / "nothing-here")

    def test_save_replaces_existing_model(self, tmp_path: Path) -> None:
        first = self.fit_estimator(self.make_estimator())
        first.save(tmp_path / "model")
        first.save(tmp_path / "model")
        leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model"]
        assert leftovers == [], f"staging directories left behind: {leftovers}"

    def test_loads_in_a_fresh_process(self, tmp_path: Path) -> None:
        estimator = self.fit_estimator(self.make_estimator())
        path = estimator.save(tmp_path / "model")
        code = (
            "import sys; from shoplm.estimator import Estimator; "
            "m = Estimator.load(sys.argv[1]); print(type(m).__name__, m.is_fitted)"
        )
        # The repository root on the path, so test-defined estimator classes import too.
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        result = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120, check=False, env=env
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [type(estimator).__name__, "True"]


def assert_params_round_trip(estimator: Estimator, **expected: Any) -> None:
    """Check that ``get_params`` reports what ``__init__`` was given."""
    params = estimator.get_params()
    for key, value in expected.items():
        assert params[key] == value
