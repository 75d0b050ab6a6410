"""Federated intent classification: the assistant's softmax head on frozen e5 embeddings, per shop.

The frozen encoder stays with each shop: a shop embeds its own utterances once (the same
multilingual-e5-small ``query`` vectors the :class:`~shoplm.lm.classify.TextClassifier` uses) and
keeps them in its shard; only the head's weights ``W (dim, k)`` and bias ``b (k,)`` travel. The
n-gram block of the classifier is left out: its vocabulary is learned from the texts, so a shared
one would leak them.

Features are the unit-norm embeddings scaled by ``sqrt(dim)`` (one fixed transform every shop can
apply alone; the classifier's per-dimension standardization would need the pooled mean). The
label set (the 27 intents) is public, like the catalog: every shop knows the index of each intent.

Centralized and local-only baselines fit the same head with :func:`shoplm.lm.classify.heads.fit_head`;
a shop's local step of a federated round runs L-BFGS on the same loss plus FedProx's proximal
term ``mu/2 * ||theta - theta_global||^2`` (``mu = 0`` for FedAvg).

Example:
    >>> x = np.eye(4, dtype=np.float32); y = np.array([0, 1, 2, 3])
    >>> w, b = local_head_step(x, y, [np.zeros((4, 4)), np.zeros(4)], l2=1e-4, mu=0.0, max_iter=50)
    >>> int((head_predict([w, b], x) == y).sum())
    4
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shoplm.lm.classify.heads import fit_head, log_softmax

__all__ = [
    "IntentShard",
    "embed_utterances",
    "fit_central_head",
    "head_features",
    "head_predict",
    "load_intent_trainer",
    "local_head_step",
]


def head_features(embeddings: np.ndarray) -> np.ndarray:
    """Unit-norm rows scaled by ``sqrt(dim)``: the head's input, the same transform in every shop."""
    e = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.maximum(norms, 1e-12) * np.sqrt(e.shape[1])


def embed_utterances(texts: Sequence[str], *, encoder: str = "e5-onnx", cache_dir: Path | None = None) -> np.ndarray:
    """e5 ``query`` embeddings of ``texts`` (cached under ``cache_dir``, as the assistant's benchmark does)."""
    from shoplm.lm import CachedEncoder, load_encoder

    inner = load_encoder(encoder, cache=False, threads=1)
    model = CachedEncoder(inner, cache_dir) if cache_dir is not None else inner
    return np.asarray(model.encode(list(texts), mode="query"), dtype=np.float32)


def head_predict(arrays: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Class index of each row under head ``[W, b]``."""
    return (np.asarray(x) @ arrays[0] + arrays[1]).argmax(axis=1)


def fit_central_head(
    x: np.ndarray, y: np.ndarray, *, n_classes: int, l2: float, max_iter: int = 300
) -> list[np.ndarray]:
    """The head fitted on all of ``x`` (centralized or one shop alone), as ``[W, b]``."""
    params = fit_head(x, None, y, n_classes=n_classes, l2=l2, hidden=0, max_iter=max_iter)
    return [params["We"], params["b"]]


def local_head_step(
    x: np.ndarray,
    y: np.ndarray,
    start: Sequence[np.ndarray],
    *,
    l2: float,
    mu: float,
    max_iter: int,
) -> list[np.ndarray]:
    """One shop's local training: L-BFGS from the global ``[W, b]`` on cross-entropy + L2 + proximal term.

    Args:
        x, y: the shop's features and class indices.
        start: the global head ``[W (dim, k), b (k,)]``; also the proximal term's anchor.
        l2: L2 penalty on ``W`` (the same as the centralized head's).
        mu: FedProx's proximal weight (0: plain FedAvg local training).
        max_iter: L-BFGS iterations (the local work of a round).

    Returns:
        ``[W, b]`` after local training (float32, as sent).
    """
    import scipy.optimize

    w0, b0 = (np.asarray(a, dtype=np.float64) for a in start)
    dim, k = w0.shape
    x = np.asarray(x, dtype=np.float64)
    onehot = np.zeros((len(y), k))
    onehot[np.arange(len(y)), y] = 1.0
    theta0 = np.concatenate([w0.ravel(), b0])

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: dim * k].reshape(dim, k), theta[dim * k :]
        logp = log_softmax(x @ w + b)
        n = len(y)
        dz = (np.exp(logp) - onehot) / n
        gw = x.T @ dz + l2 * w
        gb = dz.sum(axis=0)
        loss = -float((onehot * logp).sum()) / n + 0.5 * l2 * float((w**2).sum())
        grad = np.concatenate([gw.ravel(), gb])
        if mu > 0:
            delta = theta - theta0
            loss += 0.5 * mu * float(delta @ delta)
            grad += mu * delta
        return loss, grad

    found = scipy.optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    theta = found.x
    return [theta[: dim * k].reshape(dim, k).astype(np.float32), theta[dim * k :].astype(np.float32)]


class IntentShard:
    """A shop's intent data (features and labels of its training rows) and its local learner.

    Saved as one ``.npz`` per shop (``x``, ``y``); :meth:`train` is the Flower client's work.

    Example:
        >>> shard = IntentShard(np.eye(2), np.array([0, 1]))
        >>> shard.train([np.zeros((2, 2)), np.zeros(2)], {"l2": 1e-4, "local-iters": 20})[1]
        2
    """

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x = np.asarray(x, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.int64)

    def save(self, path: Path) -> Path:
        np.savez(path, x=self.x.astype(np.float32), y=self.y)
        return path

    def train(self, arrays: list[np.ndarray], config: Mapping[str, Any]) -> tuple[list[np.ndarray], int]:
        new = local_head_step(
            self.x,
            self.y,
            arrays,
            l2=float(config.get("l2", 1e-4)),
            mu=float(config.get("proximal-mu", 0.0)),
            max_iter=int(config.get("local-iters", 20)),
        )
        return new, len(self.y)


def load_intent_trainer(path: str) -> IntentShard:
    """The Flower client's loader: a shop's shard from its own file only."""
    with np.load(path, allow_pickle=False) as data:
        return IntentShard(data["x"], data["y"])
