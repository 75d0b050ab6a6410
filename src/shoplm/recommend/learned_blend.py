"""A learned blend of a sequential model and item co-occurrence (the ``NAME+ranker`` rows of the seqrec bench).

The fixed blend ``log_softmax(model) + w * cooccurrence`` weighs the two sources the same for
every user and item. Here LightGBM lambdarank re-orders the fixed blend's top ``k`` candidates
from features of both sources (scores, their ranks among the candidates, the row's confidence),
the item's popularity and, with text vectors, the candidate's similarity to the newest items of
the history. It learns from validation targets; the test targets are never seen.

Example:
    >>> rng = np.random.default_rng(0)
    >>> logp, cooc = np.log(rng.dirichlet(np.ones(30), size=40)), rng.random((40, 30))
    >>> part = candidate_features(logp, cooc, [np.array([0])] * 40, np.zeros(30), None, weight=1.0, k=10)
    >>> part.candidates.shape, part.features.shape[:2]
    ((40, 10), (40, 10))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shoplm.errors import InputError

__all__ = ["FEATURES", "CandidateFeatures", "LearnedBlend", "candidate_features", "candidate_ranks"]

#: the feature columns, in order
FEATURES = (
    "seq_logp",
    "seq_rank",
    "cooc",
    "cooc_rank",
    "blend_rank",
    "seq_top_logp",
    "cooc_top",
    "popularity",
    "in_history",
    "history_length",
    "text_last",
    "text_recent",
)


@dataclass
class CandidateFeatures:
    """The top ``k`` candidates of each row (catalog columns) and their feature rows ``(n, k, len(FEATURES))``."""

    candidates: np.ndarray
    features: np.ndarray
    in_history: np.ndarray


def _ranks_within(values: np.ndarray) -> np.ndarray:
    """0 for the largest value of each row, 1 for the next... (as float)."""
    order = np.argsort(-values, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(values.shape[1])[None].repeat(len(values), 0), axis=1)
    return ranks.astype(np.float32)


def candidate_features(
    seq_logp: np.ndarray,
    cooc: np.ndarray,
    histories: Sequence[np.ndarray],
    popularity: np.ndarray,
    text: np.ndarray | None,
    *,
    weight: float,
    k: int,
) -> CandidateFeatures:
    """Candidates of ``seq_logp + weight * cooc`` (history kept) and their features.

    Args:
        seq_logp: ``(n, items)`` log-softmax of the sequential model (``-inf`` where it lacks the item).
        cooc: ``(n, items)`` co-occurrence scores.
        histories: each row's history as catalog columns, oldest first (``-1``: unknown item).
        popularity: ``(items,)`` log training counts.
        text: ``(items, d)`` normalized item text vectors, or None.
        weight: the co-occurrence weight of the fixed blend that proposes the candidates.
        k: candidates per row.
    """
    blend = seq_logp + weight * cooc
    k = min(k, blend.shape[1])
    top = np.argpartition(-blend, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(blend, top, 1), axis=1, kind="stable")
    candidates = np.take_along_axis(top, order, 1)
    seq_c = np.take_along_axis(seq_logp, candidates, 1)
    seq_c = np.where(np.isfinite(seq_c), seq_c, -50.0)
    cooc_c = np.take_along_axis(cooc, candidates, 1)
    n = len(candidates)
    in_history = np.zeros((n, k), dtype=bool)
    text_last = np.zeros((n, k), dtype=np.float32)
    text_recent = np.zeros((n, k), dtype=np.float32)
    lengths = np.zeros(n, dtype=np.float32)
    for r, cols in enumerate(histories):
        known = cols[cols >= 0]
        lengths[r] = len(cols)
        if len(known):
            in_history[r] = np.isin(candidates[r], known)
            if text is not None:
                vectors = text[candidates[r]]
                text_last[r] = vectors @ text[known[-1]]
                text_recent[r] = vectors @ text[known[-5:]].mean(0)
    columns = [
        seq_c,
        _ranks_within(seq_c),
        cooc_c,
        _ranks_within(cooc_c),
        np.broadcast_to(np.arange(k, dtype=np.float32), (n, k)),
        np.broadcast_to(seq_c.max(1, keepdims=True), (n, k)),
        np.broadcast_to(cooc.max(1, keepdims=True), (n, k)),
        popularity[candidates],
        in_history.astype(np.float32),
        np.broadcast_to(np.log1p(lengths)[:, None], (n, k)),
        text_last,
        text_recent,
    ]
    features = np.stack([np.asarray(c, dtype=np.float32) for c in columns], axis=2)
    return CandidateFeatures(candidates, features, in_history)


def candidate_ranks(
    scores: np.ndarray, part: CandidateFeatures, targets: np.ndarray, *, exclude_history: bool
) -> np.ndarray:
    """Pessimistic 0-based rank of each row's target among its candidates under ``scores`` (``inf``: a miss).

    With the history excluded, history candidates do not count, and a target from the history is a miss.
    """
    ranks = np.full(len(targets), np.inf)
    for r, target in enumerate(targets):
        hit = np.flatnonzero(part.candidates[r] == target)
        if target < 0 or len(hit) == 0:
            continue
        if exclude_history and part.in_history[r, hit[0]]:
            continue
        counted = ~part.in_history[r] if exclude_history else np.ones(len(scores[r]), dtype=bool)
        ahead = counted & (scores[r] >= scores[r, hit[0]])
        ranks[r] = float(ahead.sum() - 1)
    return ranks


class LearnedBlend:
    """LightGBM lambdarank over :func:`candidate_features` rows.

    Args:
        n_estimators: at most this many trees (early stopping on the evaluation cases).
        learning_rate, num_leaves, min_child_samples: LightGBM settings (small trees with many
            cases per leaf: chosen on amazon-toys validation users, see benchmarks/seqrec/README.md).
        seed: random seed.
    """

    def __init__(
        self,
        n_estimators: int = 400,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 200,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.seed = seed

    def fit(
        self,
        train: tuple[CandidateFeatures, np.ndarray],
        evaluation: tuple[CandidateFeatures, np.ndarray],
        *,
        exclude_history: bool,
    ) -> LearnedBlend:
        """Learn from ``(candidates, targets)`` of training cases; stop early on the evaluation cases.

        Raises:
            InputError: fewer than 2 cases of either part have their target among the candidates.
        """
        import lightgbm as lgb

        def groups(part: CandidateFeatures, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
            rows, labels, sizes = [], [], []
            for r, target in enumerate(targets):
                keep = ~part.in_history[r] if exclude_history else np.ones(part.candidates.shape[1], dtype=bool)
                label = (part.candidates[r][keep] == target).astype(np.int32)
                if label.any():  # a group without its target teaches no order
                    rows.append(part.features[r][keep])
                    labels.append(label)
                    sizes.append(int(keep.sum()))
            if len(sizes) < 2:
                raise InputError(
                    f"{len(sizes)} of {len(targets)} cases had their target among the candidates: too few to learn from"
                )
            return np.concatenate(rows), np.concatenate(labels), sizes

        x, y, g = groups(*train)
        vx, vy, vg = groups(*evaluation)
        self.model_ = lgb.LGBMRanker(
            objective="lambdarank",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            # a small training set (a test, a tiny shop) still gets leaves it can fill
            min_child_samples=min(self.min_child_samples, max(1, len(y) // 50)),
            random_state=self.seed,
            n_jobs=1,
            verbose=-1,
        )
        self.model_.fit(
            x,
            y,
            group=g,
            eval_X=(vx,),
            eval_y=(vy,),
            eval_group=[vg],
            eval_at=[20],
            callbacks=[lgb.early_stopping(30, verbose=False)],
        )
        self.training_groups_ = len(g)
        self.best_iteration_ = int(self.model_.best_iteration_ or self.n_estimators)
        return self

    def score(self, part: CandidateFeatures) -> np.ndarray:
        """``(n, k)`` scores of the candidates (higher is better)."""
        n, k, f = part.features.shape
        return np.asarray(self.model_.predict(part.features.reshape(n * k, f)), dtype=np.float64).reshape(n, k)

    def importances(self) -> dict[str, Any]:
        """Gain of each feature, for the report."""
        gains = self.model_.booster_.feature_importance(importance_type="gain")
        return {name: round(float(v), 1) for name, v in zip(FEATURES, gains, strict=True)}
