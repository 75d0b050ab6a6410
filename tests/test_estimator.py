"""The contract itself, on a minimal estimator defined here."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pytest

from shoplm.errors import ModelFileError
from shoplm.estimator import Estimator, read_model_meta
from tests.estimator_contract import EstimatorContract


class CentroidModel(Estimator):
    """Remembers per-label centroids; enough state to exercise every file kind."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def fit(self, x: np.ndarray, labels: list[str]) -> Self:
        labels_array = np.asarray(labels)
        self.labels_ = np.unique(labels_array)
        self.centroids_ = np.stack([x[labels_array == lab].mean(axis=0) for lab in self.labels_]) * self.scale
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.check_fitted()
        distances = ((x[:, None, :] - self.centroids_[None]) ** 2).sum(-1)
        return self.labels_[distances.argmin(1)]

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"labels": self.labels_, "centroids": self.centroids_}, {"n_labels": len(self.labels_)}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.labels_ = arrays["labels"]
        self.centroids_ = arrays["centroids"]
        assert state["n_labels"] == len(self.labels_)


X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 4.9]])
Y = ["低", "低", "high", "high"]


class TestCentroidContract(EstimatorContract):
    def make_estimator(self) -> CentroidModel:
        return CentroidModel(scale=2.0)

    def fit_estimator(self, estimator: CentroidModel) -> CentroidModel:
        return estimator.fit(X, Y)

    def probe(self, estimator: CentroidModel) -> np.ndarray:
        return np.concatenate([estimator.centroids_.ravel(), (estimator.predict(X) == "high").astype(float)])


def test_loading_another_class_is_refused(tmp_path) -> None:
    class Other(CentroidModel):
        pass

    CentroidModel().fit(X, Y).save(tmp_path / "m")
    with pytest.raises(ModelFileError, match="not a Other"):
        Other.load(tmp_path / "m")


def test_meta_records_params_and_state(tmp_path) -> None:
    CentroidModel(scale=3.0).fit(X, Y).save(tmp_path / "m")
    meta = read_model_meta(tmp_path / "m")
    assert meta["params"] == {"scale": 3.0}
    assert meta["state"] == {"n_labels": 2}
    assert meta["class"].endswith("CentroidModel")


def test_class_outside_shoplm_is_refused(tmp_path) -> None:
    path = CentroidModel().fit(X, Y).save(tmp_path / "m")
    meta = path / "meta.json"
    meta.write_text(meta.read_text().replace("tests.test_estimator.CentroidModel", "os.system"))
    with pytest.raises(ModelFileError, match="unknown model class"):
        Estimator.load(path)
