"""Offline evaluation of single sources, the fused engine and the learned ranker.

Leave-last-out: each evaluated user's newest item is the target; every model is fitted on
the remaining events; the target is ranked against the whole catalog (no sampled
negatives). The engine ranks only its fused candidates, so a target outside them counts as
a miss, which is the honest reading of a two-stage recommender.

:func:`evaluate_hybrid` is the same question under the sequential benchmarks' protocol
(leave-one-out with a validation target, full ranking, history excluded), which is what
``shoplm evaluate`` runs on a shop's store.

Example:
    >>> results = evaluate_engine(interactions, catalog, make_sources)   # doctest: +SKIP
    >>> results["fused"]["NDCG@10"]                                       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from shoplm.errors import InputError
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


def evaluate_hybrid(
    sequences: Mapping[str, Sequence[str]],
    catalog: CatalogView,
    source_factory: Callable[[Interactions], dict[str, CandidateSource]],
    *,
    protocol: str = "exclude_history",
    max_users: int | None = None,
    ranker_cases: int = 5000,
    ks: Sequence[int] = (5, 10, 20),
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The whole engine under the sequential benchmarks' leave-one-out protocol, beside each source.

    Each user's last item is the test target and the one before the validation target; every
    source is fitted once on what is left (``source_factory``), the ranker learns from the
    validation targets (histories without them, so nothing it learns from was seen by the
    sources), and each test target is ranked against the whole catalog after the history that
    includes the validation item. Every source alone, the fused candidates (reciprocal-rank
    fusion) and the ranker's order of them are scored; business rules are off. A target the
    two-stage engine did not propose ranks behind every candidate (a miss at any cut-off that
    the candidates fill).

    Args:
        sequences: user -> items in time order.
        catalog: the items the engine ranks.
        source_factory: fits the candidate sources on training interactions.
        protocol: ``"exclude_history"`` (the published protocol: history items are removed
            before ranking) or ``"keep_history"``; both are computed, this one gives ``models``.
        max_users: evaluate a random sample of this many test users (None: all).
        ranker_cases: validation cases the ranker learns from (a random sample).
        ks: cut-offs of HR / NDCG.
        seed: sampling seed.
        progress: called with a line of text as the steps go.

    Returns:
        ``{"protocol", "data", "models": {name: metrics}, "other_protocol": {...},
        "best_single_source", "ranker_over_best_single"}``.
    """
    from shoplm.evaluate.splits import leave_one_out
    from shoplm.recommend.bench import PROTOCOLS, Ranks, target_ranks

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; use one of {PROTOCOLS}")
    say = progress or (lambda _line: None)
    split = leave_one_out(sequences)
    rng = np.random.default_rng(seed)
    test_cases = split.test_cases()
    if max_users is not None and len(test_cases) > max_users:
        test_cases = [test_cases[i] for i in sorted(rng.choice(len(test_cases), max_users, replace=False))]
    valid_cases = [(h, t) for _, h, t in split.valid_cases()]
    if len(valid_cases) > ranker_cases:
        valid_cases = [valid_cases[i] for i in sorted(rng.choice(len(valid_cases), ranker_cases, replace=False))]
    if not test_cases:
        raise InputError("no user has two or more events: nothing to evaluate")
    train = split.train_interactions()
    say(f"fitting the sources on {len(train):,} events")
    engine = RecommendationEngine(catalog, source_factory(train))
    say(f"training the ranker on {len(valid_cases):,} validation targets")
    ranker = HybridRanker(seed=seed).fit_cases(
        engine, valid_cases, catalog=catalog, exclude_history=protocol == "exclude_history"
    )
    names = [*engine.sources, "fused", "ranker"]
    ranks: dict[str, list[Ranks]] = {name: [] for name in names}
    n_items = len(catalog)
    for start in range(0, len(test_cases), 256):
        chunk = test_cases[start : start + 256]
        say(f"ranking test targets {start:,}-{start + len(chunk):,} of {len(test_cases):,}")
        rows = {name: np.full((len(chunk), n_items), -np.inf) for name in names}
        for r, (_user, history, _target) in enumerate(chunk):
            for name in engine.sources:
                rows[name][r] = engine.catalog_scores(name, history)
            candidates, source_ranks, fused = engine.fuse(history, scene="home")
            if len(candidates):
                rows["fused"][r, candidates] = fused
                rows["ranker"][r, candidates] = ranker.score_candidates(
                    candidates, source_ranks, fused, catalog, history
                )
        targets = np.array([catalog.index.get(t, -1) for _, _, t in chunk])
        histories = [catalog.positions(h) for _, h, _ in chunk]
        for name in names:
            ranks[name].append(target_ranks(rows[name], targets, histories))
    other = "keep_history" if protocol == "exclude_history" else "exclude_history"

    def summary(which: str) -> dict[str, dict[str, float]]:
        out = {}
        for name in names:
            values = np.concatenate([r.of(which) for r in ranks[name]])
            metrics = ranking_metrics(values, ks)
            out[name] = {k: round(v, 5) for k, v in metrics.items() if not k.startswith("MRR")}
        return out

    models = summary(protocol)
    key = f"NDCG@{max(ks)}"
    best_single = max(engine.sources, key=lambda name: models[name][key])
    return {
        "protocol": f"leave-one-out, full ranking over {n_items:,} items, history "
        + ("excluded" if protocol == "exclude_history" else "kept")
        + "; sources fitted once without each user's last two items; the ranker learns from the "
        "validation targets; business rules off",
        "history": protocol,
        "data": {
            "users": len(sequences),
            "items": n_items,
            "training_events": len(train),
            "test_users": len(test_cases),
            "ranker_training_cases": ranker.training_groups_,
            "sources": list(engine.sources),
        },
        "models": models,
        other: summary(other),
        "best_single_source": best_single,
        "ranker_over_best_single": round(models["ranker"][key] / max(models[best_single][key], 1e-12), 4),
    }
