"""A small DCN-v2 click model in PyTorch: embeddings of the categorical fields and the standardized
numbers feed a cross network (explicit feature crosses) and a deep network side by side.

Trained with Adam on logloss in mini-batches, early-stopped on the validation logloss (the best
epoch's weights are kept). Weights are saved as safetensors arrays, never pickled.

Example:
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"category": rng.integers(1, 4, 600).astype(float), "x": rng.normal(size=600)})
    >>> y = rng.random(600) < 1 / (1 + np.exp(-(2 * X["x"] - 1)))
    >>> model = DeepCtr(categorical={"category": 4}, epochs=3, batch_size=64, seed=0).fit(X, y)
    >>> bool(model.predict_proba(X)[y].mean() > model.predict_proba(X)[~y].mean())
    True
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.estimator import Estimator
from shoplm.marketing.ctr import _check_training, _matrix


def _network(n_codes: list[int], n_numeric: int, embed_dim: int, cross_layers: int, hidden: list[int]) -> Any:
    import torch
    from torch import nn

    class DCNv2(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = nn.ModuleList([nn.Embedding(n, embed_dim) for n in n_codes])
            width = embed_dim * len(n_codes) + n_numeric
            self.cross = nn.ModuleList([nn.Linear(width, width) for _ in range(cross_layers)])
            layers: list[nn.Module] = []
            last = width
            for size in hidden:
                layers += [nn.Linear(last, size), nn.ReLU()]
                last = size
            self.deep = nn.Sequential(*layers)
            self.out = nn.Linear(width + last, 1)

        def forward(self, codes: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
            embedded = [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
            x0 = torch.cat([*embedded, numeric], dim=1)
            x = x0
            for layer in self.cross:  # DCN-v2: x_{l+1} = x0 * (W x_l + b) + x_l
                x = x0 * layer(x) + x
            return self.out(torch.cat([x, self.deep(x0)], dim=1)).squeeze(1)

    return DCNv2()


class DeepCtr(Estimator):
    """DCN-v2 click model.

    Args:
        categorical: categorical column -> number of codes.
        embed_dim: embedding size per categorical field.
        cross_layers: cross-network depth.
        hidden: deep-network layer sizes.
        epochs: passes at most (early stopping on validation logloss, patience 2).
        batch_size, learning_rate, weight_decay: optimizer settings.
        seed: torch seed.
    """

    _version_modules = ("torch",)

    def __init__(
        self,
        categorical: dict[str, int] | None = None,
        embed_dim: int = 8,
        cross_layers: int = 2,
        hidden: list[int] | None = None,
        epochs: int = 8,
        batch_size: int = 1024,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-6,
        seed: int = 0,
    ) -> None:
        self.categorical = categorical
        self.embed_dim = embed_dim
        self.cross_layers = cross_layers
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.seed = seed

    def _tensors(self, X: pd.DataFrame | np.ndarray) -> tuple[Any, Any]:
        import torch

        values = _matrix(X, self.columns_)
        cats = self.categorical or {}
        codes = np.zeros((len(values), len(cats)), dtype=np.int64)
        for j, (name, n) in enumerate(cats.items()):
            codes[:, j] = np.clip(values[:, self.columns_.index(name)], 0, n - 1)
        numeric = values[:, [self.columns_.index(c) for c in self.numeric_]].astype(np.float32)
        return torch.from_numpy(codes), torch.from_numpy((numeric - self.mean_) / self.scale_)

    def _build(self) -> Any:
        cats = self.categorical or {}
        return _network(list(cats.values()), len(self.numeric_), self.embed_dim, self.cross_layers, self._hidden)

    @property
    def _hidden(self) -> list[int]:
        return list(self.hidden) if self.hidden is not None else [64, 32]

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None = None, y_val: Any = None) -> Self:
        """Train; with a validation set, keep the epoch of lowest validation logloss."""
        import torch

        labels = _check_training(X, y)
        torch.manual_seed(self.seed)
        self.columns_ = [str(c) for c in X.columns]
        missing = [c for c in (self.categorical or {}) if c not in self.columns_]
        if missing:
            raise InputError(f"categorical column(s) {missing} are not among the features")
        self.numeric_ = [c for c in self.columns_ if c not in (self.categorical or {})]
        numeric = X[self.numeric_].to_numpy(dtype=np.float32)
        self.mean_ = numeric.mean(axis=0).astype(np.float32)
        self.scale_ = np.where(numeric.std(axis=0) > 0, numeric.std(axis=0), 1.0).astype(np.float32)
        net = self._build()
        codes, dense = self._tensors(X)
        target = torch.from_numpy(labels.astype(np.float32))
        has_val = X_val is not None and y_val is not None and len(X_val) > 0
        if has_val:
            val_codes, val_dense = self._tensors(X_val)
            val_target = torch.from_numpy(np.asarray(y_val).astype(np.float32))
        optimizer = torch.optim.Adam(net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        generator = torch.Generator().manual_seed(self.seed)
        best, best_state, stale = float("inf"), None, 0
        self.history_: list[float] = []
        for _epoch in range(self.epochs):
            net.train()
            order = torch.randperm(len(target), generator=generator)
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                optimizer.zero_grad()
                loss = loss_fn(net(codes[batch], dense[batch]), target[batch])
                loss.backward()
                optimizer.step()
            if not has_val:
                continue
            net.eval()
            with torch.no_grad():
                val_loss = float(loss_fn(net(val_codes, val_dense), val_target))
            self.history_.append(round(val_loss, 5))
            if val_loss < best - 1e-5:
                best, stale = val_loss, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
                if stale >= 2:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self._net = net
        self.weights_ = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
        return self

    @property
    def net(self) -> Any:
        """The torch module (rebuilt from the saved weights on first use after a load)."""
        self.check_fitted()
        if getattr(self, "_net", None) is None:
            import torch

            net = self._build()
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.weights_.items()})
            net.eval()
            self._net = net
        return self._net

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Click probability of every row (a matrix: columns in the training order)."""
        import torch

        net = self.net
        codes, dense = self._tensors(X)
        threads = torch.get_num_threads()
        if len(codes) <= 2048 and threads != 1:
            torch.set_num_threads(1)  # a request's rows: threads cost more than they save
        try:
            with torch.no_grad():
                return torch.sigmoid(net(codes, dense)).numpy().astype(np.float64)
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {f"w.{k}": v for k, v in self.weights_.items()}
        arrays.update({"mean": self.mean_, "scale": self.scale_})
        return arrays, {"columns": self.columns_, "numeric": self.numeric_, "history": self.history_}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.weights_ = {k[2:]: v for k, v in arrays.items() if k.startswith("w.")}
        self.mean_, self.scale_ = arrays["mean"], arrays["scale"]
        self.columns_ = list(state["columns"])
        self.numeric_ = list(state["numeric"])
        self.history_ = list(state["history"])
        self._net = None
