"""Federated sequential recommendation: the :class:`~shoplm.recommend.SequentialRecommender` network, per shop.

Every shop trains the same SASRec-style network (:func:`shoplm.recommend.sequential_net.build_net`)
on its own users' sequences; all of its torch parameters travel (ID embeddings, the projection of
the frozen title vectors, positions, transformer blocks).

**The shared item vocabulary is the public catalog.** Row ``r`` of the item table is item
``catalog[r - 1]`` in every shop: the catalog (item ids, titles, their e5 vectors) is public
product data, published once to all shops, never derived from anyone's purchases. So the ID
embedding of an item bought in one shop only is trained there and shared through the average,
and no shop reveals which items its users bought. For the same reason every catalog row counts
as ``seen`` (the single-shop model masks the ID vectors of items without training events; here
no shop knows the union).

A shop's local step is ``local-epochs`` epochs of AdamW (fresh optimizer state each round) on the
full-softmax next-item loss over the whole catalog, plus FedProx's ``mu/2 * ||w - w_global||^2``.

Example:
    >>> model = seqrec_template(n_items=3, d_model=8, n_layers=1, n_heads=1, max_len=5)
    >>> shard = SeqrecShard([np.array([1, 2])], [np.array([2, 3])], model)
    >>> arrays, n = shard.train(initial_arrays(model, 4), {"local-epochs": 1})
    >>> n
    2
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shoplm.recommend.base import padded_histories
from shoplm.recommend.bench import Ranks, target_ranks
from shoplm.recommend.sequential import SequentialRecommender

__all__ = [
    "SeqrecShard",
    "initial_arrays",
    "load_seqrec_trainer",
    "seqrec_ranks",
    "seqrec_template",
    "training_windows",
]

#: the network's hyperparameters a template carries to the shops (saved beside each shard)
_SHAPE = ("d_model", "n_layers", "n_heads", "max_len", "dropout", "lr", "batch_size", "seed")


def seqrec_template(n_items: int, text: np.ndarray | None = None, **params: Any) -> SequentialRecommender:
    """A :class:`SequentialRecommender` carrying the network shape and the public item tables.

    Args:
        n_items: catalog size (rows ``1..n_items``; row 0 is padding).
        text: ``(n_items, dim)`` frozen title vectors in catalog order, or ``None`` (ID only).
        **params: the recommender's hyperparameters (``d_model``, ``n_layers``, ``lr``...).
    """
    model = SequentialRecommender(use_text=text is not None, use_attributes=False, **params)
    n_rows = n_items + 1
    model.seen_ = np.ones(n_rows, dtype=np.float32)
    model.seen_[0] = 0.0
    model.text_ = None
    if text is not None:
        model.text_ = np.zeros((n_rows, text.shape[1]), dtype=np.float32)
        model.text_[1:] = text
    model.attributes_ = None
    model.attribute_values_ = None
    return model


def _state_keys(net: Any) -> list[str]:
    return list(net.state_dict().keys())


def initial_arrays(model: SequentialRecommender, seed: int = 0) -> list[np.ndarray]:
    """The freshly initialized network's parameters, in the order every shop uses."""
    import torch

    from shoplm.recommend.sequential_net import build_net

    torch.manual_seed(seed)
    net = build_net(model, len(model.seen_))
    return [v.detach().numpy().copy() for v in net.state_dict().values()]


def training_windows(sequences: Sequence[Sequence[int]], max_len: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Inputs ``seq[:-1]`` and targets ``seq[1:]`` of each catalog-row sequence, cut in ``max_len`` chunks from the end.

    Example:
        >>> training_windows([[1, 2, 3]], 5)[1][0].tolist()
        [2, 3]
    """
    inputs, targets = [], []
    for seq in sequences:
        rows = np.asarray(seq, dtype=np.int64)
        if len(rows) < 2:
            continue
        x, y = rows[:-1], rows[1:]
        end = len(x)
        while end > 0:
            start = max(0, end - max_len)
            inputs.append(x[start:end])
            targets.append(y[start:end])
            end = start
    return inputs, targets


class SeqrecShard:
    """A shop's training windows and its local learner (the Flower client's work)."""

    def __init__(self, inputs: list[np.ndarray], targets: list[np.ndarray], model: SequentialRecommender) -> None:
        self.inputs = inputs
        self.targets = targets
        self.model = model
        self.round = 0

    def save(self, path: Path, catalog_path: Path) -> Path:
        """The shard's windows as ``.npz``; the public tables stay in ``catalog_path`` (one file for all shops)."""
        lengths = np.array([len(x) for x in self.inputs], dtype=np.int64)
        shape = {k: getattr(self.model, k) for k in _SHAPE}
        np.savez(
            path,
            lengths=lengths,
            inputs=np.concatenate(self.inputs) if self.inputs else np.zeros(0, np.int64),
            targets=np.concatenate(self.targets) if self.targets else np.zeros(0, np.int64),
            shape=np.array(json.dumps(shape)),
            catalog=np.array(str(catalog_path)),
        )
        return path

    def train(self, arrays: list[np.ndarray], config: Mapping[str, Any]) -> tuple[list[np.ndarray], int]:
        import torch
        import torch.nn.functional as F

        from shoplm.recommend.sequential_net import build_net

        model = self.model
        torch.set_num_threads(1)
        self.round += 1
        torch.manual_seed(model.seed + self.round)
        rng = np.random.default_rng(model.seed + self.round)
        net = build_net(model, len(model.seen_))
        keys = _state_keys(net)
        net.load_state_dict({k: torch.from_numpy(np.array(a)) for k, a in zip(keys, arrays, strict=True)})
        anchor = [p.detach().clone() for p in net.parameters()]
        mu = float(config.get("proximal-mu", 0.0))
        opt = torch.optim.AdamW(net.parameters(), lr=float(config.get("lr", model.lr)), weight_decay=0.0)
        seen = torch.from_numpy(model.seen_)
        text = torch.from_numpy(model.text_) if model.text_ is not None else None
        lengths = np.array([len(x) for x in self.inputs])
        net.train()
        for _ in range(int(config.get("local-epochs", 1))):
            order = rng.permutation(len(lengths))
            for start in range(0, len(order), model.batch_size):
                batch = order[start : start + model.batch_size]
                width = int(lengths[batch].max())
                x = np.zeros((len(batch), width), dtype=np.int64)
                y = np.zeros((len(batch), width), dtype=np.int64)
                for r, b in enumerate(batch):
                    x[r, : lengths[b]] = self.inputs[b]
                    y[r, : lengths[b]] = self.targets[b]
                xt, yt = torch.from_numpy(x), torch.from_numpy(y)
                opt.zero_grad(set_to_none=True)
                table = net.item_table(seen, text, None)
                h = net.encode(xt, table)
                mask = yt > 0
                logits = net.logits(h[mask], table, seen)
                logits[:, 0] = -1e9  # the padding row is never a target
                loss = F.cross_entropy(logits, yt[mask])
                if mu > 0:
                    pulls = zip(net.parameters(), anchor, strict=True)
                    loss = loss + 0.5 * mu * sum(((p - a) ** 2).sum() for p, a in pulls)
                loss.backward()
                opt.step()
        return [v.detach().numpy().copy() for v in net.state_dict().values()], int(lengths.sum())


def load_seqrec_trainer(path: str) -> SeqrecShard:
    """The Flower client's loader: a shop's windows from its own file, the public tables from the catalog file."""
    with np.load(path, allow_pickle=False) as data:
        lengths = data["lengths"]
        ends = np.cumsum(lengths)
        starts = ends - lengths
        inputs = [data["inputs"][s:e] for s, e in zip(starts, ends, strict=True)]
        targets = [data["targets"][s:e] for s, e in zip(starts, ends, strict=True)]
        shape = json.loads(str(data["shape"]))
        catalog_path = str(data["catalog"])
    with np.load(catalog_path, allow_pickle=False) as catalog:
        text = catalog["text"] if catalog["text"].size else None
        n_items = int(catalog["n_items"])
    return SeqrecShard(inputs, targets, seqrec_template(n_items, text, **shape))


def seqrec_ranks(
    model: SequentialRecommender, arrays: Sequence[np.ndarray], cases: Sequence[tuple[list[int], int]]
) -> Ranks:
    """Full-ranking ranks of each ``(history rows, target row)`` case under parameters ``arrays``.

    Every catalog item is ranked (no sampled negatives, ties against the model), with and without the
    history's items, as ``shoplm bench seqrec`` does (:func:`shoplm.recommend.bench.target_ranks`).
    """
    import torch

    from shoplm.recommend.sequential_net import build_net

    net = build_net(model, len(model.seen_))
    net.load_state_dict({k: torch.from_numpy(np.array(a)) for k, a in zip(_state_keys(net), arrays, strict=True)})
    net.eval()
    seen = torch.from_numpy(model.seen_)
    text = torch.from_numpy(model.text_) if model.text_ is not None else None
    parts_ex, parts_keep = [], []
    with torch.no_grad():
        table = net.item_table(seen, text, None)
        for start in range(0, len(cases), 256):
            chunk = cases[start : start + 256]
            x, last = padded_histories([list(c[0]) for c in chunk], model.max_len)
            h = net.encode(torch.from_numpy(x), table)[torch.arange(len(x)), torch.from_numpy(last)]
            scores = net.logits(h, table, seen)[:, 1:].numpy()  # column j = catalog row j + 1
            targets = np.array([c[1] - 1 for c in chunk], dtype=np.int64)
            ranks = target_ranks(scores, targets, [np.asarray(c[0], dtype=np.int64) - 1 for c in chunk])
            parts_ex.append(ranks.exclude_history)
            parts_keep.append(ranks.keep_history)
    if not parts_ex:
        return Ranks(np.zeros(0), np.zeros(0))
    return Ranks(np.concatenate(parts_ex), np.concatenate(parts_keep))
