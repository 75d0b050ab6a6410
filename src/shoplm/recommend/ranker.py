"""A learned ranker over the fused candidates: LightGBM lambdarank on per-candidate features.

Training is leave-last-out: the candidate sources are fitted on each user's history without
its newest item, the engine proposes candidates for that shortened history, and the ranker
learns to put the held-out item first. At serving time it re-scores the candidates of the
``home`` scene; the features are rank-based, so they stay comparable when the sources are
refitted on all data. The trained trees are served as an ONNX graph
(:mod:`shoplm.recommend.trees`), so a serving process does not import LightGBM.

Example:
    >>> ranker = HybridRanker(n_estimators=50)          # doctest: +SKIP
    >>> ranker.fit(interactions, catalog=catalog, source_factory=make_sources)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from shoplm.errors import InputError
from shoplm.estimator import Estimator
from shoplm.recommend.base import CandidateSource, Interactions
from shoplm.recommend.catalog import CatalogView
from shoplm.recommend.components import SOURCES
from shoplm.recommend.trees import TreeScorer, lightgbm_to_onnx

if TYPE_CHECKING:
    from shoplm.recommend.engine import RecommendationEngine

#: Features that do not depend on which sources there are, after the per-source ones.
SHARED_FEATURES = ("fused", "category_affinity", "seen_before", "history_length")


def feature_names(layout: Sequence[str]) -> list[str]:
    """The feature columns for per-source features over ``layout`` (source names, in order).

    Example:
        >>> feature_names(["als"])
        ['inv_rank_als', 'has_als', 'fused', 'category_affinity', 'seen_before', 'history_length']
    """
    return [*(f"inv_rank_{s}" for s in layout), *(f"has_{s}" for s in layout), *SHARED_FEATURES]


def candidate_features(
    candidates: np.ndarray,
    ranks: dict[str, np.ndarray],
    fused: np.ndarray,
    catalog: CatalogView,
    history: Sequence[str],
    *,
    layout: Sequence[str] = tuple(SOURCES),
    sources: Sequence[str] | None = None,
) -> np.ndarray:
    """One feature row per candidate (see :func:`feature_names`); shared by training and serving.

    ``layout`` fixes the per-source columns; only ``sources`` (those the ranker was trained
    with, default: all of the layout) contribute, others read as absent.
    """
    n = len(candidates)
    allowed = set(layout if sources is None else sources)
    ranks = {name: rank for name, rank in ranks.items() if name in allowed}
    columns: list[np.ndarray] = []
    presence: list[np.ndarray] = []
    for name in layout:
        rank = ranks.get(name)
        if rank is None:
            columns.append(np.zeros(n))
            presence.append(np.zeros(n))
        else:
            r = rank[candidates]
            columns.append(np.where(np.isfinite(r), 1.0 / r, 0.0))
            presence.append(np.isfinite(r).astype(np.float64))
    positions = catalog.positions(history[-50:])
    if len(positions):
        categories, counts = np.unique(catalog.top_category[positions], return_counts=True)
        share = dict(zip(categories, counts / counts.sum(), strict=True))
        affinity = np.fromiter((share.get(c, 0.0) for c in catalog.top_category[candidates]), dtype=np.float64, count=n)
        seen = np.isin(candidates, positions).astype(np.float64)
    else:
        affinity = np.zeros(n)
        seen = np.zeros(n)
    length = np.full(n, np.log1p(len(history)))
    return np.column_stack([*columns, *presence, fused, affinity, seen, length])


class HybridRanker(Estimator):
    """LightGBM lambdarank over candidate features; falls back to the fused score if unfitted."""

    _version_modules = ("lightgbm", "onnxruntime")

    def __init__(
        self,
        n_estimators: int = 100,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        max_users: int = 5000,
        min_history: int = 2,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_users = max_users
        self.min_history = min_history
        self.seed = seed

    def fit(
        self,
        interactions: Interactions,
        *,
        catalog: CatalogView,
        source_factory: Callable[[Interactions], dict[str, CandidateSource]],
        **_: Any,
    ) -> Self:
        """Learn from each user's newest item, held out (see the module docstring)."""
        from shoplm.recommend.engine import RecommendationEngine

        train, cases = self.training_split(interactions)
        # Training sources see everything but the held-out newest item of the chosen users.
        engine = RecommendationEngine(catalog, source_factory(train))
        return self.fit_cases(engine, cases, catalog=catalog)

    def training_split(self, interactions: Interactions) -> tuple[Interactions, list[tuple[list[str], str]]]:
        """The events the ranker's sources may see, and its ``(history, newest item)`` cases.

        Up to ``max_users`` users with more than ``min_history`` events (a random sample) give
        their newest item as a case; it is left out of the returned events.

        Raises:
            InputError: fewer than 10 such users.
        """
        sequences = interactions.sequences()
        users = [u for u, items in sequences.items() if len(items) > self.min_history]
        if len(users) < 10:
            raise InputError(f"the ranker needs at least 10 users with more than {self.min_history} events")
        rng = np.random.default_rng(self.seed)
        if len(users) > self.max_users:
            users = list(rng.choice(users, self.max_users, replace=False))
        train, _held_out = interactions.hold_out_last(set(users))
        return train, [(sequences[u][:-1], sequences[u][-1]) for u in users]

    def fit_cases(
        self,
        engine: RecommendationEngine,
        cases: Sequence[tuple[Sequence[str], str]],
        *,
        catalog: CatalogView,
        exclude_history: bool = False,
    ) -> Self:
        """Learn to put each case's target first among the engine's ``home`` candidates for its history.

        Args:
            engine: fitted sources, none of which saw the targets.
            cases: ``(history, target)`` pairs.
            catalog: the catalog the engine ranks.
            exclude_history: drop the history's items from the candidates (as an evaluation
                that never shows them does).

        Returns:
            self, fitted.
        """
        import lightgbm as lgb

        self.sources_ = sorted(engine.sources)
        # Every registered source has its columns (zeros when absent), so the layout is fixed at training.
        self.layout_ = list(SOURCES)
        features, labels, groups = [], [], []
        for history, target in cases:
            candidates, ranks, fused = engine.fuse(history, scene="home")
            if exclude_history and len(candidates):
                keep = ~np.isin(candidates, catalog.positions(history))
                candidates, fused = candidates[keep], fused[keep]
            if len(candidates) == 0 or target not in catalog.index:
                continue
            label = (candidates == catalog.index[target]).astype(np.int32)
            if not label.any():
                continue  # the target was not among the candidates: nothing to learn to order
            features.append(
                candidate_features(
                    candidates, ranks, fused, catalog, history, layout=self.layout_, sources=self.sources_
                )
            )
            labels.append(label)
            groups.append(len(candidates))
        if len(groups) < 10:
            raise InputError("too few users had their next item among the candidates to train a ranker")
        model = lgb.LGBMRanker(
            objective="lambdarank",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            random_state=self.seed,
            n_jobs=1,
            verbose=-1,
        )
        model.fit(np.vstack(features), np.concatenate(labels), group=groups)
        self.model_text_ = model.booster_.model_to_string()
        self.onnx_ = lightgbm_to_onnx(model.booster_)
        self.scorer_ = TreeScorer(self.onnx_)
        self.training_groups_ = len(groups)
        return self

    def rerank(self, features: np.ndarray) -> np.ndarray:
        """Scores for candidate feature rows (higher is better)."""
        self.check_fitted()
        return self.scorer_.predict(features)

    def score_candidates(
        self,
        candidates: np.ndarray,
        ranks: dict[str, np.ndarray],
        fused: np.ndarray,
        catalog: CatalogView,
        history: Sequence[str],
    ) -> np.ndarray:
        """Features from the engine's fusion, then :meth:`rerank`."""
        features = candidate_features(
            candidates, ranks, fused, catalog, history, layout=self.layout_, sources=self.sources_
        )
        return self.rerank(features)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        # LightGBM's own text format (readable, versioned, no pickle) for the record, and the
        # same trees as an ONNX graph, which serving runs.
        encoded = np.frombuffer(self.model_text_.encode("utf-8"), dtype=np.uint8)
        graph = np.frombuffer(self.onnx_, dtype=np.uint8)
        state = {
            "training_groups": self.training_groups_,
            "features": feature_names(self.layout_),
            "sources": self.sources_,
        }
        return {"booster_text": encoded, "onnx": graph}, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        features = list(state.get("features", []))
        layout = [name.removeprefix("inv_rank_") for name in features if name.startswith("inv_rank_")]
        if features != feature_names(layout):
            raise InputError("this ranker was trained on other features: retrain it")
        self.layout_ = layout
        self.model_text_ = arrays["booster_text"].tobytes().decode("utf-8")
        if "onnx" in arrays:
            self.onnx_ = arrays["onnx"].tobytes()
        else:  # saved before rankers carried their ONNX graph: convert once, here
            import lightgbm as lgb

            self.onnx_ = lightgbm_to_onnx(lgb.Booster(model_str=self.model_text_))
        self.scorer_ = TreeScorer(self.onnx_)
        self.training_groups_ = int(state["training_groups"])
        self.sources_ = list(state["sources"])
