"""Offline evaluation of single sources, the fused engine and the learned ranker.

Leave-last-out: each evaluated user's newest item is the target; every model is fitted on
the remaining events; the target is ranked against the whole catalog (no sampled
negatives). The engine ranks only its fused candidates, so a target outside them counts as
a miss, which is the honest reading of a two-stage recommender.

Example:
    >>> results = evaluate_engine(interactions, catalog, make_sources)   # doctest: +SKIP
    >>> results["fused"]["NDCG@10"]                                       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shoplm.evaluate.metrics import rank_of_target, ranking_metrics
from shoplm.recommend.base import CandidateSource, Interactions
from shoplm.recommend.catalog import CatalogView
from shoplm.recommend.engine import RecommendationEngine
from shoplm.recommend.ranker import HybridRanker


def evaluate_engine(
    interactions: Interactions,
    catalog: CatalogView,
    source_factory: Callable[[Interactions], dict[str, CandidateSource]],
    *,
    with_ranker: bool = True,
    max_users: int = 2000,
    min_history: int = 2,
    ks: Sequence[int] = (5, 10, 20),
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """HR/NDCG/MRR@k for each source alone, the fused engine, and (optionally) the ranker."""
    sequences = interactions.sequences()
    eligible = [u for u, items in sequences.items() if len(items) > min_history]
    rng = np.random.default_rng(seed)
    users = list(rng.choice(eligible, min(max_users, len(eligible)), replace=False)) if eligible else []
    train, targets = interactions.hold_out_last(set(users))
    sources = source_factory(train)
    engine = RecommendationEngine(catalog, sources)
    ranker = None
    if with_ranker:
        ranker = HybridRanker(seed=seed).fit(train, catalog=catalog, source_factory=source_factory)
    train_sequences = train.sequences()
    ranks: dict[str, list[float]] = {name: [] for name in sources}
    ranks["fused"] = []
    if ranker is not None:
        ranks["ranker"] = []
    for user in users:
        target = targets[user]
        if target not in catalog.index:
            continue
        position = catalog.index[target]
        history = train_sequences.get(user, [])
        for name in sources:
            scores = engine.catalog_scores(name, history)
            scores = np.where(np.isfinite(scores), scores, -np.inf)
            ranks[name].append(rank_of_target(scores, position))
        candidates, source_ranks, fused = engine.fuse(history, scene="home")
        ranks["fused"].append(_rank_in(candidates, fused, position))
        if ranker is not None:
            rescored = ranker.score_candidates(candidates, source_ranks, fused, catalog, history)
            ranks["ranker"].append(_rank_in(candidates, rescored, position))
    return {name: {**ranking_metrics(values, ks), "users": len(values)} for name, values in ranks.items()}


def _rank_in(candidates: np.ndarray, scores: np.ndarray, position: int) -> float:
    hit = np.flatnonzero(candidates == position)
    if len(hit) == 0:
        return float("inf")
    target_score = scores[hit[0]]
    return float((scores > target_score).sum() + (scores == target_score).sum() - 1)
