"""CTR models of a shop: train on the stored impressions, keep versions, score live requests.

Versions live under ``settings.models_dir / "ctr"`` in a :class:`~shoplm.app.registry.ModelRegistry`
(``featurizer/`` and ``model/`` per version; ``CURRENT`` names the live one). Scoring loads the
live version once and again only when ``CURRENT`` changes.

Example:
    >>> import tempfile
    >>> from shoplm.config import Settings
    >>> from shoplm.store import Store
    >>> settings = Settings(data_dir=tempfile.mkdtemp())
    >>> train_ctr(Store.open(settings.database_url), settings)
    Traceback (most recent call last):
    ...
    shoplm.errors.NotFoundError: no impressions stored: ingest some first (shoplm ingest impressions FILE)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.app.registry import ModelRegistry
from shoplm.config import Settings
from shoplm.errors import InputError, NotFoundError
from shoplm.store import Store

TRAIN_COMMAND = "shoplm ctr train"
MODEL_KINDS = ("lightgbm", "logistic", "dcn_v2")


@dataclass
class CtrTrainResult:
    """What one training run did."""

    version: str
    path: Path
    model: str
    rows: int
    validation_auc: float
    seconds: float


def ctr_registry(settings: Settings) -> ModelRegistry:
    """The registry of the shop's CTR model versions."""
    return ModelRegistry(settings.models_dir / "ctr")


def _item_vectors(catalog: pd.DataFrame, settings: Settings, progress: bool) -> np.ndarray:
    from shoplm.lm import load_encoder
    from shoplm.lm.texts import item_texts

    encoder = load_encoder(settings)  # cached: the catalog's texts are usually encoded already
    return np.asarray(encoder.encode(item_texts(catalog), mode="passage", progress=progress), dtype=np.float32)


def train_ctr(
    store: Store,
    settings: Settings,
    *,
    model: str = "lightgbm",
    text: bool = True,
    validation_share: float = 0.1,
    progress: bool = False,
    on_step: Callable[[str], None] = lambda _step: None,
) -> CtrTrainResult:
    """Train a CTR model on every stored impression and publish it as the live version.

    The newest ``validation_share`` of impressions (by time) early-stops the model; the
    featurizer's end-of-log state covers all of them.

    Args:
        store: the shop's store.
        settings: the shop's settings (models directory, encoder).
        model: ``lightgbm`` (default), ``logistic`` or ``dcn_v2``.
        text: use the items' LM text vectors.
        validation_share: share of the newest impressions held out for early stopping.
        progress: show the encoder's progress bar.
        on_step: called with the name of each step.

    Raises:
        NotFoundError: no impressions are stored.
        InputError: an unknown model, or impressions without both clicks and non-clicks.
    """
    from sklearn.metrics import roc_auc_score

    from shoplm.marketing.ctr import GbmCtr, LogisticCtr
    from shoplm.marketing.ctr_features import CtrFeaturizer

    if model not in MODEL_KINDS:
        raise InputError(f"unknown CTR model {model!r}: use one of {', '.join(MODEL_KINDS)}")
    started = time.perf_counter()
    on_step("reading impressions")
    impressions = store.impressions.frame()
    if impressions.empty:
        raise NotFoundError("no impressions stored: ingest some first (shoplm ingest impressions FILE)")
    if impressions["clicked"].nunique() < 2:
        raise InputError("the stored impressions need both clicks and non-clicks to learn from")
    events = store.events.frame(("user_id", "item_id", "event_type", "ts_ms"), with_bots=False)
    catalog = store.items.catalog(["item_id", "title", "brand", "category", "price", "language"])
    vectors = None
    if text:
        on_step("encoding items")
        vectors = _item_vectors(catalog, settings, progress)
    on_step("features")
    featurizer = CtrFeaturizer(text_dims=16 if text else 0).fit(impressions, events, catalog, vectors)
    table = featurizer.log_features(impressions, events)
    y = impressions["clicked"].to_numpy(dtype=bool)
    cut = int(len(impressions) * (1 - validation_share))
    train, val = slice(0, cut), slice(cut, None)
    on_step(f"training {model}")
    cards = featurizer.cardinalities
    if model == "lightgbm":
        estimator: Any = GbmCtr(categorical=cards)
    elif model == "logistic":
        estimator = LogisticCtr(categorical=cards)
    else:
        from shoplm.marketing.ctr_deep import DeepCtr

        estimator = DeepCtr(categorical=cards)
    estimator.fit(table.iloc[train], y[train], table.iloc[val], y[val])
    val_auc = float("nan")
    if len(np.unique(y[val])) == 2:
        val_auc = float(roc_auc_score(y[val], estimator.predict_proba(table.iloc[val])))
    registry = ctr_registry(settings)
    path = registry.new_version()
    featurizer.save(path / "featurizer")
    estimator.save(path / "model")
    registry.publish(path.name)
    return CtrTrainResult(path.name, path, model, len(impressions), round(val_auc, 4), time.perf_counter() - started)


_cache_lock = threading.Lock()
_cache: dict[Path, tuple[str, Any]] = {}


def load_ctr_scorer(settings: Settings) -> Any:
    """The live :class:`~shoplm.marketing.ctr.CtrScorer` (loaded once per published version).

    Raises:
        NotFoundError: no CTR model has been trained (the message names the command).
    """
    from shoplm.estimator import Estimator
    from shoplm.marketing.ctr import CtrScorer

    registry = ctr_registry(settings)
    version = registry.current()
    if version is None:
        raise NotFoundError(f"no CTR model trained yet: run {TRAIN_COMMAND}")
    with _cache_lock:
        cached = _cache.get(registry.root)
        if cached is not None and cached[0] == version:
            return cached[1]
        path = registry.versions_dir / version
        scorer = CtrScorer(Estimator.load(path / "featurizer"), Estimator.load(path / "model"))
        _cache[registry.root] = (version, scorer)
        return scorer


def score_items(
    settings: Settings,
    pseudonymous_user_id: str,
    item_ids: Sequence[str],
    *,
    scene: str = "home",
    position: int | None = None,
) -> dict[str, Any]:
    """Predicted click probabilities of ``item_ids`` for one user, with the model version.

    Args:
        settings: the shop's settings.
        pseudonymous_user_id: the stored (pseudonymized) user id.
        item_ids: the candidates (1 to 1000, each in the catalog the model was trained with).
        scene: ``home``, ``search`` or ``item_detail``.
        position: score every candidate in this slot; None: in the order given (slot 0, 1, ...).

    Raises:
        NotFoundError: no trained model, or items unknown to it.
        InputError: no candidates, too many, or an unknown scene.
    """
    if not item_ids:
        raise InputError("item_ids is empty: give 1 to 1000 candidate items")
    if len(item_ids) > 1000:
        raise InputError(f"{len(item_ids)} candidates: at most 1000 per request")
    if scene not in ("home", "search", "item_detail"):
        raise InputError(f"unknown scene {scene!r}: use home, search or item_detail")
    scorer = load_ctr_scorer(settings)
    unknown = [item_ids[i] for i in np.flatnonzero(scorer.featurizer.item_rows(item_ids) < 0)]
    if unknown:
        raise NotFoundError(f"item(s) unknown to the CTR model: {', '.join(unknown[:5])} (retrain: {TRAIN_COMMAND})")
    positions = None if position is None else [position] * len(item_ids)
    hour = int(time.gmtime().tm_hour)
    probabilities = scorer.score(pseudonymous_user_id, list(item_ids), scene=scene, positions=positions, hour=hour)
    version = ctr_registry(settings).current()
    return {
        "model_version": version,
        "scene": scene,
        "scores": [
            {"item_id": item, "p_click": round(float(p), 6)} for item, p in zip(item_ids, probabilities, strict=True)
        ],
    }
