"""Sequential next-item recommendation: causal self-attention over the user's history.

:class:`SequentialRecommender` is a SASRec-style transformer (Kang & McAuley 2018) trained
with a full-softmax cross-entropy over the whole catalog at every position of every
training sequence. Its item representation fuses three parts:

- a learned ID embedding (only for items seen in training: an unseen item's ID vector is
  masked to zero, so full-softmax negatives never push it somewhere arbitrary);
- a frozen language-model embedding of the item text (title), projected by a learned
  linear layer, so an item never seen in training still has a meaningful vector;
- optional attribute embeddings (brand, categories), averaged.

The same item vectors are used at the input and at the output (tied), so a cold item
that has text can be both read in a history and recommended.

Scoring runs the network on the live history, so an event seconds old changes the output
immediately; no per-user state is stored. Training runs in PyTorch
(:mod:`shoplm.recommend.sequential_net`, imported only by :meth:`SequentialRecommender.fit`);
the trained weights and the item table are kept as arrays and scoring is a numpy forward pass
(the same function in float32), so a serving process never imports torch.

Example:
    >>> from shoplm.recommend.base import Interactions
    >>> seqs = [["a", "b", "c", "a", "b", "c"]] * 8
    >>> users = [f"u{i}" for i, s in enumerate(seqs) for _ in s]
    >>> data = Interactions.from_arrays(users, [x for s in seqs for x in s])
    >>> model = SequentialRecommender(d_model=16, n_layers=1, epochs=30, seed=0).fit(data)
    >>> model.recommend(["a", "b"], k=1)[0][0]
    'c'
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import numpy as np

from shoplm.errors import InputError
from shoplm.recommend.base import CandidateSource, Interactions, padded_histories
from shoplm.recommend.onnx import serving_session

log = logging.getLogger(__name__)

__all__ = ["SequentialRecommender", "forward_last"]


# ----------------------------------------------------------------------------------------
# estimator
# ----------------------------------------------------------------------------------------
class SequentialRecommender(CandidateSource):
    """SASRec-style next-item model with fused ID + text (+ attribute) item vectors.

    Hyperparameters:
        d_model, n_layers, n_heads, max_len, dropout: network shape (``d_model % n_heads == 0``).
        lr, weight_decay, batch_size: AdamW settings; lr 2e-3 / batch 64 / dropout 0.3 learn fast.
        epochs, max_minutes: training budget (whichever ends first); ``budget_clock`` says how
            ``max_minutes`` is measured: ``"wall"`` time, or this process's ``"cpu"`` time (fair
            comparisons on a machine shared with other jobs); ``patience`` evaluations
            without a better validation NDCG stop early when ``valid`` is given.
        eval_every: epochs between validation evaluations.
        n_negatives: 0 = full softmax over the catalog; > 0 = sampled softmax with that many
            shared uniform negatives per batch (for very large catalogs).
        label_smoothing: cross-entropy label smoothing.
        norm: ``"pre"`` (LayerNorm before each sub-layer) or ``"post"`` (after the residual sum,
            as in the original SASRec).
        positions: ``"from_start"`` (position 0 = the oldest item of the window) or
            ``"from_end"`` (0 = the newest item, so the position embedding encodes recency).
        lr_schedule: ``"constant"`` or ``"cosine"`` (decays to 0 over ``epochs`` epochs).
        whiten_text: PCA-whiten the text embeddings over the catalog before their projection
            (anisotropic sentence vectors crowd into a narrow cone; whitening spreads them).
        cl_weight, cl_temperature: weight and temperature of a DuoRec-style contrastive loss
            between two dropout views of each sequence (0 = off).
        use_text, use_attributes: use the item text embeddings / attributes given to ``fit``.
        output_bias: a learned per-item popularity bias in the output layer.
        loss_chunk: rows of logits computed at a time (bounds memory of the full softmax).
        seed, num_threads: reproducibility and the torch threads used while training.

    Example:
        >>> model = SequentialRecommender(d_model=32, epochs=5)
        >>> model.get_params()["d_model"]
        32
    """

    _version_modules = ("safetensors", "torch", "onnxruntime")

    def __init__(
        self,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        max_len: int = 50,
        dropout: float = 0.3,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        epochs: int = 200,
        max_minutes: float | None = None,
        budget_clock: str = "wall",
        patience: int = 5,
        eval_every: int = 1,
        n_negatives: int = 0,
        label_smoothing: float = 0.0,
        norm: str = "pre",
        positions: str = "from_start",
        lr_schedule: str = "constant",
        whiten_text: bool = False,
        cl_weight: float = 0.0,
        cl_temperature: float = 1.0,
        use_text: bool = True,
        use_attributes: bool = True,
        output_bias: bool = False,
        max_attributes: int = 8,
        loss_chunk: int = 2048,
        seed: int = 0,
        num_threads: int = 1,
        verbose: bool = False,
    ) -> None:
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_len = max_len
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_minutes = max_minutes
        self.budget_clock = budget_clock
        self.patience = patience
        self.eval_every = eval_every
        self.n_negatives = n_negatives
        self.label_smoothing = label_smoothing
        self.norm = norm
        self.positions = positions
        self.lr_schedule = lr_schedule
        self.whiten_text = whiten_text
        self.cl_weight = cl_weight
        self.cl_temperature = cl_temperature
        self.use_text = use_text
        self.use_attributes = use_attributes
        self.output_bias = output_bias
        self.max_attributes = max_attributes
        self.loss_chunk = loss_chunk
        self.seed = seed
        self.num_threads = num_threads
        self.verbose = verbose

    # -- fitting -----------------------------------------------------------------------
    def fit(
        self,
        interactions: Interactions,
        *,
        item_text_embeddings: np.ndarray | None = None,
        item_ids: Sequence[str] | None = None,
        item_attributes: Mapping[str, Sequence[Any]] | None = None,
        valid: Mapping[str, str] | Sequence[tuple[Sequence[str], str]] | None = None,
        callback: Callable[[dict[str, Any]], None] | None = None,
    ) -> Self:
        """Train on the users' sequences in ``interactions``.

        Args:
            interactions: training events (time order per user).
            item_text_embeddings: ``(n, dim)`` frozen text vectors, row ``i`` for ``item_ids[i]``.
            item_ids: the catalog the model scores (aligned with ``item_text_embeddings``);
                defaults to the items of ``interactions``. Items of ``interactions`` missing
                from it are appended (without text).
            item_attributes: item id -> attribute values (brand, category ids...).
            valid: validation targets, either ``{user: target}`` (history = the user's training
                sequence) or ``[(history, target), ...]``; enables early stopping on NDCG@20.
            callback: called with a dict (epoch, loss, valid metrics) after every evaluation.
        """
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not a multiple of n_heads={self.n_heads}")
        if self.norm not in ("pre", "post"):
            raise ValueError(f"norm must be 'pre' or 'post', not {self.norm!r}")
        if self.positions not in ("from_start", "from_end"):
            raise ValueError(f"positions must be 'from_start' or 'from_end', not {self.positions!r}")
        sequences = interactions.sequences()
        catalog = [str(i) for i in item_ids] if item_ids is not None else []
        if item_text_embeddings is not None:
            if item_ids is None:
                raise InputError("item_text_embeddings needs item_ids (one id per row)")
            if len(item_text_embeddings) != len(catalog):
                raise InputError(f"{len(item_text_embeddings)} text embeddings for {len(catalog)} item ids")
        known = set(catalog)
        extra = sorted({str(i) for i in interactions.items()} - known)
        self.item_ids_ = np.asarray(catalog + extra, dtype=np.str_)
        self._item_index = None  # a refit may reorder the catalog
        index = {item: row + 1 for row, item in enumerate(self.item_ids_.tolist())}  # row 0 = padding
        n_rows = len(index) + 1

        # item side tables
        seen = np.zeros(n_rows, dtype=np.float32)
        counts = np.zeros(n_rows, dtype=np.float64)
        for seq in sequences.values():
            rows = [index[i] for i in seq]
            seen[rows] = 1.0
            np.add.at(counts, rows, 1.0)
        self.seen_ = seen
        self.popularity_ = np.log1p(counts[1:]).astype(np.float32)
        self.text_ = None
        if self.use_text and item_text_embeddings is not None:
            text = np.zeros((n_rows, item_text_embeddings.shape[1]), dtype=np.float32)
            vectors = np.asarray(item_text_embeddings, dtype=np.float32)
            text[1 : len(catalog) + 1] = _whitened(vectors) if self.whiten_text else vectors
            self.text_ = text
        self.attributes_ = None
        self.attribute_values_ = None
        if self.use_attributes and item_attributes:
            vocab: dict[str, int] = {}
            table = np.zeros((n_rows, self.max_attributes), dtype=np.int64)
            for item, values in item_attributes.items():
                row = index.get(str(item))
                if row is None:
                    continue
                ids = []
                for value in dict.fromkeys(str(v) for v in values):  # unique, in order
                    ids.append(vocab.setdefault(value, len(vocab) + 1))
                ids = ids[: self.max_attributes]
                table[row, : len(ids)] = ids
            self.attributes_ = table
            self.attribute_values_ = np.asarray(list(vocab), dtype=np.str_)

        # training windows: inputs seq[:-1], targets seq[1:], split into max_len chunks from the end
        inputs, targets = [], []
        for seq in sequences.values():
            rows = np.array([index[i] for i in seq], dtype=np.int64)
            if len(rows) < 2:
                continue
            x, y = rows[:-1], rows[1:]
            end = len(x)
            while end > 0:
                start = max(0, end - self.max_len)
                inputs.append(x[start:end])
                targets.append(y[start:end])
                end = start
        if not inputs:
            raise InputError("no user has two or more events: nothing to learn a next item from")

        valid_cases = self._valid_cases(valid, sequences, index)
        import torch

        from shoplm.recommend.sequential_net import train_network  # torch: only to train

        previous_threads = torch.get_num_threads()
        torch.set_num_threads(max(1, int(self.num_threads)))
        try:
            weights = train_network(self, inputs, targets, n_rows, valid_cases, callback)
        finally:
            torch.set_num_threads(previous_threads)
        self._set_weights(weights)
        from shoplm.recommend.sequential_net import export_onnx

        try:
            self.onnx_: bytes | None = export_onnx(self)
        except Exception as exc:  # scoring falls back to numpy: slower, the same scores
            log.warning("the sequential model could not be exported to ONNX (%s); it scores in numpy", exc)
            self.onnx_ = None
        self._session = None
        return self

    def _valid_cases(
        self,
        valid: Mapping[str, str] | Sequence[tuple[Sequence[str], str]] | None,
        sequences: dict[str, list[str]],
        index: dict[str, int],
    ) -> list[tuple[list[int], int]]:
        if valid is None:
            return []
        pairs = (
            [(sequences.get(str(u), []), str(t)) for u, t in valid.items()]
            if isinstance(valid, Mapping)
            else [(list(h), str(t)) for h, t in valid]
        )
        cases = []
        for history, target in pairs:
            rows = [index[i] for i in map(str, history) if i in index]
            if rows and target in index:
                cases.append((rows, index[target]))
        return cases

    # -- scoring (numpy) ----------------------------------------------------------------
    def prepare_serving(self) -> None:
        """Open the ONNX Runtime session that scores single histories (about 2x the numpy speed)."""
        if getattr(self, "onnx_", None) and getattr(self, "_session", None) is None:
            self._session = serving_session(self.onnx_)

    def score(self, history: Sequence[str]) -> np.ndarray:
        """One score per item of ``item_ids_`` for the live ``history`` (unknown ids ignored).

        An empty (or all-unknown) history gets log-popularity scores. After
        :meth:`prepare_serving` the network runs in ONNX Runtime, else in numpy.
        """
        session = getattr(self, "_session", None)
        if session is None:
            return self.score_batch([history])[0]
        index = self.item_index()
        rows = [index[i] + 1 for i in map(str, history) if i in index][-self.max_len :]
        if not rows:
            return self.popularity_.copy()
        (logits,) = session.run(None, {"rows": np.array([rows], dtype=np.int64)})
        return logits[0, 1:]

    def score_batch(self, histories: Sequence[Sequence[str]], batch_size: int = 256) -> np.ndarray:
        """Scores for many histories at once: ``(len(histories), len(item_ids_))`` float32."""
        self.check_fitted()
        index = self.item_index()
        rows = [[index[i] + 1 for i in map(str, h) if i in index] for h in histories]
        out = np.empty((len(rows), len(self.item_ids_)), dtype=np.float32)
        todo = [i for i, r in enumerate(rows) if r]
        for i, r in enumerate(rows):
            if not r:
                out[i] = self.popularity_
        for s in range(0, len(todo), batch_size):
            chunk = todo[s : s + batch_size]
            out[chunk] = self._logits([rows[i] for i in chunk])[:, 1:]
        return out

    def _logits(self, histories: list[list[int]]) -> np.ndarray:
        """(n, n_rows) logits for row-index histories (non-empty); column 0 is -inf."""
        x, last = padded_histories(histories, self.max_len)
        hidden = forward_last(
            self.weights_,
            self.table_,
            x,
            last,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            pre_norm=getattr(self, "norm", "pre") == "pre",
            positions_from_end=getattr(self, "positions", "from_start") == "from_end",
        )
        logits = hidden @ self.table_.T
        if self.bias_ is not None:
            logits += self.bias_
        logits[:, 0] = -np.inf
        return logits

    def _set_weights(self, weights: dict[str, np.ndarray], table: np.ndarray | None = None) -> None:
        """Keep trained weights (float32) and the item table scoring reads (computed unless given)."""
        self.weights_ = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.table_ = np.ascontiguousarray(table if table is not None else self._item_table(), dtype=np.float32)
        bias = self.weights_.get("bias")
        self.bias_ = (bias * self.seen_).astype(np.float32) if bias is not None else None

    def _item_table(self) -> np.ndarray:
        """(n_rows, d) item vectors (row 0 is padding): ID, projected text and attribute parts."""
        w = self.weights_
        table = w["id_emb.weight"] * self.seen_[:, None]
        if self.text_ is not None and "text_proj.weight" in w:
            has_text = (np.abs(self.text_).sum(1, keepdims=True) > 0).astype(np.float32)
            table = table + (self.text_ @ w["text_proj.weight"].T + w["text_proj.bias"]) * has_text
        if self.attributes_ is not None and "attr_emb.weight" in w:
            counts = np.maximum((self.attributes_ > 0).sum(1, keepdims=True), 1)
            table = table + w["attr_emb.weight"][self.attributes_].sum(1) / counts
        return table.astype(np.float32)

    # -- persistence -------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {f"net.{k}": v for k, v in self.weights_.items()}
        arrays["item_ids"] = self.item_ids_
        arrays["seen"] = self.seen_
        arrays["popularity"] = self.popularity_
        # The item table is derived from the weights, but computing it for 20k items costs a
        # serving process a noticeable part of its load time: it is saved, so loading is a read.
        arrays["serving_table"] = self.table_
        if getattr(self, "onnx_", None):
            arrays["onnx"] = np.frombuffer(self.onnx_, dtype=np.uint8)
        if self.text_ is not None:
            arrays["text"] = self.text_
        if self.attributes_ is not None and self.attribute_values_ is not None:
            arrays["attributes"] = self.attributes_
            arrays["attribute_values"] = self.attribute_values_
        state = {"best_epoch": getattr(self, "best_epoch_", None), "history": getattr(self, "history_", [])}
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.item_ids_ = np.asarray(arrays["item_ids"], dtype=np.str_)
        self._item_index = None
        self.seen_ = np.asarray(arrays["seen"], dtype=np.float32)
        self.popularity_ = np.asarray(arrays["popularity"], dtype=np.float32)
        self.text_ = arrays.get("text")
        self.attributes_ = arrays.get("attributes")
        self.attribute_values_ = arrays.get("attribute_values")
        if self.attributes_ is not None:
            self.attributes_ = self.attributes_.astype(np.int64)
        weights = {k[4:]: v for k, v in arrays.items() if k.startswith("net.")}
        self._set_weights(weights, arrays.get("serving_table"))  # older models: the table is computed
        self.onnx_ = arrays["onnx"].tobytes() if "onnx" in arrays else None
        self._session = None
        self.history_ = list(state.get("history", []))
        if state.get("best_epoch") is not None:
            self.best_epoch_ = state["best_epoch"]


def _whitened(vectors: np.ndarray) -> np.ndarray:
    """PCA whitening of the non-zero rows (zero rows, items without text, stay zero).

    Sentence embeddings crowd into a narrow cone; centring them and scaling every principal
    direction to unit variance spreads the items apart before the learned projection.
    """
    out = np.zeros_like(vectors, dtype=np.float32)
    has = np.abs(vectors).sum(1) > 0
    if has.sum() < 2:
        return vectors.astype(np.float32)
    x = vectors[has].astype(np.float64)
    x -= x.mean(0)
    u, s, _vt = np.linalg.svd(np.cov(x, rowvar=False))
    out[has] = (x @ (u / np.sqrt(s + 1e-6))).astype(np.float32) / np.sqrt(x.shape[1])
    return out


# ----------------------------------------------------------------------------------------
# the forward pass in numpy (eval mode: no dropout), the same as sequential_net._Net
# ----------------------------------------------------------------------------------------
_LN_EPS = 1e-5


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centered = x - mean
    variance = (centered * centered).mean(-1, keepdims=True)
    return centered / np.sqrt(variance + _LN_EPS) * weight + bias


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function to float32 precision (Abramowitz & Stegun 7.1.26, max error 1.5e-7)."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * np.float32(1.0 / math.sqrt(2.0))))


def forward_last(
    w: Mapping[str, np.ndarray],
    table: np.ndarray,
    seqs: np.ndarray,
    last: np.ndarray,
    *,
    n_layers: int,
    n_heads: int,
    pre_norm: bool = True,
    positions_from_end: bool = False,
) -> np.ndarray:
    """The hidden state at position ``last[b]`` of each right-padded row of ``seqs``: ``(batch, d)``.

    Args:
        w: the network's weights by their torch names.
        table: the item table (``(n_rows, d)``, row 0 padding).
        seqs: ``(batch, length)`` item rows, right-padded with 0.
        last: index of each row's last real position.
        n_layers, n_heads: the network's shape.
        pre_norm, positions_from_end: the network's LayerNorm placement and position counting.

    Returns:
        Float32 hidden states, as the torch network computes them in eval mode.
    """
    batch, length = seqs.shape
    positions = np.arange(length)[None]
    if positions_from_end:
        positions = np.maximum(last[:, None] - positions, 0)
    x = table[seqs] + w["pos_emb.weight"][positions]
    x = _layer_norm(x, w["emb_ln.weight"], w["emb_ln.bias"])
    d = x.shape[-1]
    dh = d // n_heads
    # Causal attention: padding sits on the right, so masking later positions keeps pads off real tokens.
    future = np.triu(np.ones((length, length), dtype=bool), 1)
    scale = np.float32(1.0 / math.sqrt(dh))
    for layer in range(n_layers):
        p = f"blocks.{layer}."
        h = _layer_norm(x, w[p + "ln1.weight"], w[p + "ln1.bias"]) if pre_norm else x
        qkv = (h @ w[p + "qkv.weight"].T + w[p + "qkv.bias"]).reshape(batch, length, 3, n_heads, dh)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (batch, heads, length, dh)
        scores = (q @ k.transpose(0, 1, 3, 2)) * scale
        scores[..., future] = -np.inf
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attention = (scores / scores.sum(-1, keepdims=True)) @ v
        x = x + attention.transpose(0, 2, 1, 3).reshape(batch, length, d) @ w[p + "out.weight"].T + w[p + "out.bias"]
        if not pre_norm:
            x = _layer_norm(x, w[p + "ln1.weight"], w[p + "ln1.bias"])
        h = _layer_norm(x, w[p + "ln2.weight"], w[p + "ln2.bias"]) if pre_norm else x
        x = x + _gelu(h @ w[p + "ff1.weight"].T + w[p + "ff1.bias"]) @ w[p + "ff2.weight"].T + w[p + "ff2.bias"]
        if not pre_norm:
            x = _layer_norm(x, w[p + "ln2.weight"], w[p + "ln2.bias"])
    x = x[np.arange(batch), last]
    return _layer_norm(x, w["final_ln.weight"], w["final_ln.bias"]).astype(np.float32)
