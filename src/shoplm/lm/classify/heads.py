"""Classification heads trained with L-BFGS in numpy/scipy: softmax regression and a small MLP.

Full-batch L-BFGS (as scikit-learn's ``lbfgs`` solver) is deterministic, needs no learning-rate
or epoch tuning and converges in seconds on the few thousand labelled texts a shop has.

The input comes in two blocks: dense sentence embeddings ``xe`` and optional sparse n-gram
TF-IDF ``xt``. The logistic head is linear in both; the MLP puts one ReLU layer on the dense
block and keeps the sparse block linear ("wide and deep"), because a hidden layer over 100k
sparse columns would cost far more than it gains.

Example:
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(40, 3)); y = (x[:, 0] > 0).astype(int)
    >>> params = fit_head(x, None, y, n_classes=2, l2=1e-3, hidden=0)
    >>> float((head_logits(params, x, None).argmax(1) == y).mean())
    1.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["fit_head", "fit_temperature", "head_logits", "log_softmax", "softmax"]

Params = dict[str, np.ndarray]


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(z))


def _shapes(d_dense: int, d_sparse: int, k: int, hidden: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    if hidden:
        shapes["W1"] = (d_dense, hidden)
        shapes["b1"] = (hidden,)
        shapes["W2"] = (hidden, k)
    else:
        shapes["We"] = (d_dense, k)
    if d_sparse:
        shapes["Wt"] = (d_sparse, k)
    shapes["b"] = (k,)
    return shapes


def _unpack(theta: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> Params:
    out, start = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        out[name] = theta[start : start + size].reshape(shape)
        start += size
    return out


def head_logits(params: Params, xe: np.ndarray, xt: sp.csr_matrix | None) -> np.ndarray:
    """Class scores ``(n, k)`` of a fitted head (before temperature)."""
    z = np.zeros((xe.shape[0], params["b"].shape[0]), dtype=np.float64) + params["b"]
    if "W1" in params:
        z += np.maximum(xe @ params["W1"] + params["b1"], 0.0) @ params["W2"]
    else:
        z += xe @ params["We"]
    if "Wt" in params and xt is not None:
        z += np.asarray(xt @ params["Wt"])
    return z


def _objective(
    theta: np.ndarray,
    shapes: dict[str, tuple[int, ...]],
    xe: np.ndarray,
    xt: sp.csr_matrix | None,
    onehot: np.ndarray,
    l2: float,
) -> tuple[float, np.ndarray]:
    p = _unpack(theta, shapes)
    n = xe.shape[0]
    z = np.zeros_like(onehot) + p["b"]
    h = None
    if "W1" in p:
        h = np.maximum(xe @ p["W1"] + p["b1"], 0.0)
        z += h @ p["W2"]
    else:
        z += xe @ p["We"]
    if "Wt" in p:
        z += np.asarray(xt @ p["Wt"])
    logp = log_softmax(z)
    loss = -float((onehot * logp).sum()) / n
    dz = (np.exp(logp) - onehot) / n
    grads: Params = {"b": dz.sum(axis=0)}
    if h is not None:
        grads["W2"] = h.T @ dz + l2 * p["W2"]
        dh = (dz @ p["W2"].T) * (h > 0)
        grads["W1"] = xe.T @ dh + l2 * p["W1"]
        grads["b1"] = dh.sum(axis=0)
        loss += 0.5 * l2 * (float((p["W1"] ** 2).sum()) + float((p["W2"] ** 2).sum()))
    else:
        grads["We"] = xe.T @ dz + l2 * p["We"]
        loss += 0.5 * l2 * float((p["We"] ** 2).sum())
    if "Wt" in p:
        grads["Wt"] = np.asarray(xt.T @ dz) + l2 * p["Wt"]
        loss += 0.5 * l2 * float((p["Wt"] ** 2).sum())
    return loss, np.concatenate([grads[name].ravel() for name in shapes])


def fit_head(
    xe: np.ndarray,
    xt: sp.csr_matrix | None,
    y: np.ndarray,
    *,
    n_classes: int,
    l2: float,
    hidden: int = 0,
    max_iter: int = 300,
    seed: int = 0,
    init: Params | None = None,
) -> Params:
    """Fit a softmax head (``hidden=0``) or a one-hidden-layer MLP; returns float64 parameters.

    ``y`` holds class indices ``0..n_classes-1``; ``init`` warm-starts from earlier parameters.
    """
    xe = np.asarray(xe, dtype=np.float64)
    shapes = _shapes(xe.shape[1], xt.shape[1] if xt is not None else 0, n_classes, hidden)
    if init is not None and all(init.get(k) is not None and init[k].shape == s for k, s in shapes.items()):
        theta0 = np.concatenate([init[k].ravel() for k in shapes]).astype(np.float64)
    else:
        rng = np.random.default_rng(seed)
        parts = []
        for name, shape in shapes.items():
            if name == "W1":  # He initialization: the ReLU layer starts with useful variance
                parts.append(rng.normal(0.0, np.sqrt(2.0 / max(shape[0], 1)), size=shape).ravel())
            elif name == "W2":
                parts.append(rng.normal(0.0, np.sqrt(1.0 / max(shape[0], 1)), size=shape).ravel())
            else:
                parts.append(np.zeros(int(np.prod(shape))))
        theta0 = np.concatenate(parts)
    onehot = np.zeros((xe.shape[0], n_classes), dtype=np.float64)
    onehot[np.arange(xe.shape[0]), y] = 1.0
    import scipy.optimize  # training only (a quarter second to import): serving runs the fitted head

    result = scipy.optimize.minimize(
        _objective,
        theta0,
        args=(shapes, xe, xt, onehot, l2),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "maxcor": 10},
    )
    return {k: v.copy() for k, v in _unpack(result.x, shapes).items()}


def fit_temperature(logits: np.ndarray, y: np.ndarray, *, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature ``T`` minimizing the negative log-likelihood of ``softmax(logits / T)``.

    On (nearly) separable data the likelihood keeps improving as ``T -> 0``: a few dozen
    examples, all classified right, do not prove 100% accuracy. So ``T`` is raised, if needed,
    until the mean confidence is no more than the rule-of-succession estimate of accuracy,
    ``(correct + 1) / (n + 2)``; with thousands of examples this changes nothing.

    Example:
        >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
        >>> fit_temperature(z, np.array([0, 1, 1, 0])) > 1
        True
    """
    logits = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        return -float(log_softmax(logits / np.exp(log_t))[rows, y].mean())

    def mean_confidence(log_t: float) -> float:
        return float(softmax(logits / np.exp(log_t)).max(axis=1).mean())

    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    import scipy.optimize

    found: Any = scipy.optimize.minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    log_t = float(found.x)
    cap = (float((logits.argmax(axis=1) == y).sum()) + 1.0) / (len(y) + 2.0)
    if mean_confidence(log_t) > cap and mean_confidence(hi) < cap:
        # Mean confidence falls as T rises: bisect for the T where it meets the cap.
        a, b = log_t, hi
        for _ in range(60):
            mid = 0.5 * (a + b)
            a, b = (mid, b) if mean_confidence(mid) > cap else (a, mid)
        log_t = b
    return float(np.exp(log_t))
