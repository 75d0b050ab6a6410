"""Click-through-rate models over the features of :mod:`shoplm.marketing.ctr_features`.

Three models with one interface (``fit(X, y, X_val, y_val)``, ``predict_proba(X)``), each an
:class:`~shoplm.estimator.Estimator`:

- :class:`LogisticCtr`: scikit-learn logistic regression on one-hot categorical codes and
  standardized numbers;
- :class:`GbmCtr`: LightGBM with native categorical splits, early-stopped on the validation set;
- :class:`DeepCtr` (in :mod:`shoplm.marketing.ctr_deep`): a small DCN-v2 in PyTorch.

:class:`CtrScorer` joins a fitted :class:`~shoplm.marketing.ctr_features.CtrFeaturizer` and a
model into the serving path, ``score(user_id, item_ids) -> probabilities``, and
:class:`CreativeScorer` gives ad-copy variants a predicted CTR.

Example:
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"category": rng.integers(1, 4, 400).astype(float), "x": rng.normal(size=400)})
    >>> y = rng.random(400) < 1 / (1 + np.exp(-(X["x"] - 1)))
    >>> model = LogisticCtr(categorical={"category": 4}).fit(X, y)
    >>> bool(model.predict_proba(X)[y].mean() > model.predict_proba(X)[~y].mean())
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.estimator import Estimator
from shoplm.marketing.ctr_features import CtrFeaturizer


def _matrix(X: pd.DataFrame | np.ndarray, columns: list[str]) -> np.ndarray:
    """A float matrix with ``columns`` in order: selected from a DataFrame, or a matrix taken as is."""
    if isinstance(X, pd.DataFrame):
        return X[columns].to_numpy(dtype=np.float64)
    values = np.asarray(X, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(columns):
        raise InputError(f"expected a matrix of {len(columns)} feature columns, got shape {values.shape}")
    return values


def _check_training(X: pd.DataFrame, y: np.ndarray) -> np.ndarray:
    labels = np.asarray(y).astype(bool)
    if len(X) != len(labels):
        raise InputError(f"{len(X)} feature rows but {len(labels)} labels")
    if len(labels) == 0 or labels.all() or not labels.any():
        raise InputError("CTR training needs both clicked and unclicked impressions")
    return labels


class LogisticCtr(Estimator):
    """Logistic regression: categorical codes one-hot, numbers standardized.

    Args:
        categorical: categorical column -> number of codes (``CtrFeaturizer.cardinalities``).
        C: inverse regularization strength.
        max_iter: solver iterations.
    """

    _version_modules = ("sklearn",)

    def __init__(self, categorical: dict[str, int] | None = None, C: float = 1.0, max_iter: int = 300) -> None:
        self.categorical = categorical
        self.C = C
        self.max_iter = max_iter

    def _design(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        values = _matrix(X, self.columns_)
        cats = self.categorical or {}
        blocks = []
        for name, n in cats.items():
            if name in self.columns_:
                codes = np.clip(values[:, self.columns_.index(name)].astype(np.int64), 0, n - 1)
                blocks.append(np.eye(n, dtype=np.float64)[codes])
        numeric = values[:, [self.columns_.index(c) for c in self.numeric_]]
        blocks.append((numeric - self.mean_) / self.scale_)
        return np.hstack(blocks)

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None = None, y_val: Any = None) -> Self:
        """Fit on features ``X`` and clicks ``y`` (the validation set is not needed)."""
        from sklearn.linear_model import LogisticRegression

        labels = _check_training(X, y)
        self.columns_ = [str(c) for c in X.columns]
        self.numeric_ = [c for c in self.columns_ if c not in (self.categorical or {})]
        numeric = X[self.numeric_].to_numpy(dtype=np.float64)
        self.mean_ = numeric.mean(axis=0)
        self.scale_ = np.where(numeric.std(axis=0) > 0, numeric.std(axis=0), 1.0)
        model = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(self._design(X), labels)
        self.coef_ = model.coef_[0].astype(np.float64)
        self.intercept_ = float(model.intercept_[0])
        return self

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Click probability of every row (a matrix: columns in the training order)."""
        self.check_fitted()
        return 1.0 / (1.0 + np.exp(-(self._design(X) @ self.coef_ + self.intercept_)))

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"coef": self.coef_, "mean": self.mean_, "scale": self.scale_}
        return arrays, {"columns": self.columns_, "numeric": self.numeric_, "intercept": self.intercept_}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.coef_, self.mean_, self.scale_ = arrays["coef"], arrays["mean"], arrays["scale"]
        self.columns_ = list(state["columns"])
        self.numeric_ = list(state["numeric"])
        self.intercept_ = float(state["intercept"])


class GbmCtr(Estimator):
    """LightGBM on the feature table, categorical columns split natively, early-stopped on validation.

    Args:
        categorical: categorical column -> number of codes.
        num_leaves, learning_rate, min_child_samples: LightGBM's parameters.
        max_rounds: boosting rounds at most; early stopping after ``patience`` without gain.
        seed: random seed.
    """

    _version_modules = ("lightgbm",)

    def __init__(
        self,
        categorical: dict[str, int] | None = None,
        num_leaves: int = 31,
        learning_rate: float = 0.05,
        min_child_samples: int = 50,
        max_rounds: int = 800,
        patience: int = 40,
        seed: int = 0,
    ) -> None:
        self.categorical = categorical
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.min_child_samples = min_child_samples
        self.max_rounds = max_rounds
        self.patience = patience
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None = None, y_val: Any = None) -> Self:
        """Fit; with a validation set, stop when its logloss has not improved for ``patience`` rounds."""
        import lightgbm

        labels = _check_training(X, y)
        self.feature_names_ = [str(c) for c in X.columns]
        cats = [c for c in self.feature_names_ if c in (self.categorical or {})]
        params = {
            "objective": "binary",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "cat_smooth": 20,
            "seed": self.seed,
            "num_threads": 1,
            "verbose": -1,
        }
        train = lightgbm.Dataset(
            X.to_numpy(dtype=np.float64),
            labels.astype(float),
            feature_name=self.feature_names_,
            categorical_feature=cats,
        )
        valid, callbacks = [], []
        if X_val is not None and y_val is not None and len(X_val):
            valid = [
                train.create_valid(X_val[self.feature_names_].to_numpy(dtype=np.float64), np.asarray(y_val, float))
            ]
            callbacks = [lightgbm.early_stopping(self.patience, verbose=False)]
        booster = lightgbm.train(params, train, num_boost_round=self.max_rounds, valid_sets=valid, callbacks=callbacks)
        self.best_rounds_ = int(booster.best_iteration or booster.current_iteration())
        self.booster_text_ = booster.model_to_string(num_iteration=self.best_rounds_)
        self._booster = booster
        return self

    @property
    def booster(self) -> Any:
        """The LightGBM booster (rebuilt from its text on first use after a load)."""
        self.check_fitted()
        if getattr(self, "_booster", None) is None:
            import lightgbm

            self._booster = lightgbm.Booster(model_str=self.booster_text_)
        return self._booster

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Click probability of every row (a matrix: columns in the training order)."""
        values = _matrix(X, self.feature_names_)
        # One thread: a request's few hundred rows cost more to split than to score.
        threads = 1 if len(values) <= 10_000 else 0
        return np.asarray(
            self.booster.predict(values, num_iteration=self.best_rounds_, num_threads=threads), dtype=np.float64
        )

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        # The booster's text goes in strings.npz: a payload file whose hash meta.json checks.
        return {"booster": np.array([self.booster_text_])}, {
            "feature_names": self.feature_names_,
            "best_rounds": self.best_rounds_,
        }

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.feature_names_ = list(state["feature_names"])
        self.best_rounds_ = int(state["best_rounds"])
        self.booster_text_ = str(arrays["booster"][0])
        self._booster = None


class CtrScorer:
    """The serving path: a fitted featurizer and model, scoring one user's candidates.

    Item-side features (catalog codes, text vectors, stats) are precomputed arrays in the
    featurizer, so a request costs a few array lookups and one model call.

    Example:
        >>> import pandas as pd
        >>> items = pd.DataFrame({"item_id": ["a", "b"], "category": ["X", "Y"], "brand": ["p", "q"],
        ...                       "price": [10.0, 20.0], "language": ["en", "en"]})
        >>> imps = pd.DataFrame({"request_id": [f"r{i // 2}" for i in range(40)], "position": [0, 1] * 20,
        ...     "user_id": ["u"] * 40, "item_id": ["a", "b"] * 20, "ts_ms": [i // 2 for i in range(40)],
        ...     "scene": ["home"] * 40, "clicked": [True, False] * 20})
        >>> f = CtrFeaturizer(text_dims=0).fit(imps, None, items)
        >>> model = LogisticCtr(categorical=f.cardinalities).fit(f.log_features(imps, None), imps["clicked"])
        >>> p = CtrScorer(f, model).score("u", ["a", "b"])
        >>> bool(p[0] > p[1])
        True
    """

    def __init__(self, featurizer: CtrFeaturizer, model: Any) -> None:
        self.featurizer = featurizer
        self.model = model

    def score(
        self,
        user_id: str,
        item_ids: Sequence[str],
        *,
        scene: str = "home",
        positions: Sequence[int] | None = None,
        hour: int = 12,
    ) -> np.ndarray:
        """Predicted click probability of each candidate for ``user_id``.

        Args:
            user_id: the pseudonymous user (a new user is scored as one without history).
            item_ids: the candidates.
            scene: ``home``, ``search`` or ``item_detail``.
            positions: the slot each would be shown in (default 0, 1, 2, ...); use one value for
                all to compare items independent of their place.
            hour: hour of day (UTC).
        """
        if not len(item_ids):
            return np.zeros(0)
        X = self.featurizer.request_features(user_id, item_ids, scene=scene, positions=positions, hour=hour)
        return self.model.predict_proba(X)


#: ad channel -> the page scene its ads appear in
CHANNEL_SCENES = {"search": "search", "feed": "home", "push": "home"}


class CreativeScorer:
    """Predicted CTR of ad-copy variants of an item, for :mod:`shoplm.marketing.adcopy` to rank them.

    The CTR model predicts the item's click probability in the given scene and slot (the
    audience's average when no user is given); the text of each variant moves it by the
    similarity of the variant's LM vector to the item's title vector, the signal the text
    features carry (an unrelated or contradicting text scores lower). Without an encoder every
    variant gets the item's predicted CTR.

    Args:
        scorer: a fitted :class:`CtrScorer`.
        encode: texts -> L2-normalized vectors (the LM layer's ``TextEncoder.encode``), or None.
        item_titles: item id -> title, for the text comparison.
        text_weight: logit change per unit of cosine similarity.

    Example:
        >>> import numpy as np
        >>> class Stub:
        ...     def score(self, user_id, item_ids, **kw): return np.array([0.1])
        >>> enc = lambda texts: np.array([[1.0, 0.0] if "mug" in t.lower() else [0.0, 1.0] for t in texts])
        >>> cs = CreativeScorer(Stub(), enc, {"i1": "Blue mug"})
        >>> p = cs.score("i1", ["A great mug for tea", "Buy shoes now"])
        >>> bool(p[0] > p[1]), round(float(p[0]), 3)
        (True, 0.1)
    """

    def __init__(
        self,
        scorer: Any,
        encode: Any = None,
        item_titles: dict[str, str] | None = None,
        *,
        text_weight: float = 1.0,
    ) -> None:
        self.scorer = scorer
        self.encode = encode
        self.item_titles = item_titles or {}
        self.text_weight = text_weight

    def __call__(self, item: Any, channel: str, texts: Sequence[str]) -> list[float]:
        """The ad-copy engine's ``VariantScorer``: ``(AdItem, channel, texts) -> scores``."""
        self.item_titles.setdefault(str(item.item_id), str(getattr(item, "title", "")))
        scene = CHANNEL_SCENES.get(channel, "home")
        return [float(p) for p in self.score(str(item.item_id), texts, scene=scene)]

    def score(self, item_id: str, texts: Sequence[str], *, user_id: str = "", scene: str = "search") -> np.ndarray:
        """Predicted CTR of each ad text for ``item_id`` (in slot 0 of ``scene``)."""
        base = float(self.scorer.score(user_id, [item_id], scene=scene, positions=[0])[0])
        if not len(texts):
            return np.zeros(0)
        title = self.item_titles.get(item_id, "")
        if self.encode is None or not title:
            return np.full(len(texts), base)
        vectors = np.asarray(self.encode([title, *texts]), dtype=np.float64)
        similarity = vectors[1:] @ vectors[0]
        logit = np.log(base / (1 - base)) + self.text_weight * (similarity - similarity.max())
        return 1.0 / (1.0 + np.exp(-logit))
