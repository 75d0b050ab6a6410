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
immediately; no per-user state is stored.

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

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shoplm.errors import InputError
from shoplm.recommend.base import CandidateSource, Interactions

__all__ = ["SequentialRecommender"]


# ----------------------------------------------------------------------------------------
# network
# ----------------------------------------------------------------------------------------
class _Block(nn.Module):
    """Pre-norm transformer block with causal attention (right-padded input needs no pad mask)."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, 4 * d)
        self.ff2 = nn.Linear(4 * d, d)
        self.drop = nn.Dropout(dropout)
        self.p = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        # Padding sits on the right, so causal masking alone keeps real tokens off the pads.
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.p if self.training else 0.0)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff2(self.drop(F.gelu(self.ff1(self.ln2(x))))))


class _Net(nn.Module):
    def __init__(
        self,
        n_rows: int,
        d: int,
        layers: int,
        heads: int,
        max_len: int,
        dropout: float,
        text_dim: int,
        n_attr_values: int,
        output_bias: bool,
    ) -> None:
        super().__init__()
        self.id_emb = nn.Embedding(n_rows, d)
        nn.init.normal_(self.id_emb.weight, std=0.02)
        self.text_proj = nn.Linear(text_dim, d) if text_dim else None
        self.attr_emb = nn.Embedding(n_attr_values + 1, d, padding_idx=0) if n_attr_values else None
        if self.attr_emb is not None:
            nn.init.normal_(self.attr_emb.weight, std=0.02)
            with torch.no_grad():
                self.attr_emb.weight[0].zero_()
        self.pos_emb = nn.Embedding(max_len, d)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        self.emb_ln = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([_Block(d, heads, dropout) for _ in range(layers)])
        self.final_ln = nn.LayerNorm(d)
        self.bias = nn.Parameter(torch.zeros(n_rows)) if output_bias else None

    def item_table(self, seen: torch.Tensor, text: torch.Tensor | None, attrs: torch.Tensor | None) -> torch.Tensor:
        """(n_rows, d) item vectors; row 0 is padding (zero)."""
        e = self.id_emb.weight * seen[:, None]
        if self.text_proj is not None and text is not None:
            e = e + self.text_proj(text) * (text.abs().sum(1, keepdim=True) > 0)
        if self.attr_emb is not None and attrs is not None:
            counts = (attrs > 0).sum(1, keepdim=True).clamp(min=1)
            e = e + self.attr_emb(attrs).sum(1) / counts
        return e

    def encode(self, seqs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """(batch, len) right-padded item rows -> (batch, len, d) hidden states."""
        pos = torch.arange(seqs.shape[1], device=seqs.device)
        x = self.drop(self.emb_ln(table[seqs] + self.pos_emb(pos)[None]))
        for block in self.blocks:
            x = block(x)
        return self.final_ln(x)

    def logits(self, h: torch.Tensor, table: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        out = h @ table.T
        if self.bias is not None:
            out = out + self.bias * seen
        return out


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

    _version_modules = ("torch", "safetensors")

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
            text[1 : len(catalog) + 1] = np.asarray(item_text_embeddings, dtype=np.float32)
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
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(max(1, int(self.num_threads)))
        try:
            self._train(inputs, targets, n_rows, valid_cases, callback)
        finally:
            torch.set_num_threads(previous_threads)
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

    def _tensors(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        seen = torch.from_numpy(self.seen_)
        text = torch.from_numpy(self.text_) if self.text_ is not None else None
        attrs = torch.from_numpy(self.attributes_) if self.attributes_ is not None else None
        return seen, text, attrs

    def _build(self, n_rows: int) -> _Net:
        return _Net(
            n_rows,
            self.d_model,
            self.n_layers,
            self.n_heads,
            self.max_len,
            self.dropout,
            0 if self.text_ is None else self.text_.shape[1],
            0 if self.attribute_values_ is None else len(self.attribute_values_),
            self.output_bias,
        )

    def _train(
        self,
        inputs: list[np.ndarray],
        targets: list[np.ndarray],
        n_rows: int,
        valid_cases: list[tuple[list[int], int]],
        callback: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        net = self._build(n_rows)
        seen, text, attrs = self._tensors()
        decay, no_decay = [], []
        for name, p in net.named_parameters():
            (decay if p.ndim == 2 and "emb" not in name else no_decay).append(p)
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.lr,
        )
        lengths = np.array([len(x) for x in inputs])
        if self.budget_clock not in ("wall", "cpu"):
            raise ValueError(f"budget_clock must be 'wall' or 'cpu', not {self.budget_clock!r}")
        clock = time.monotonic if self.budget_clock == "wall" else time.process_time
        deadline = clock() + 60.0 * self.max_minutes if self.max_minutes else math.inf
        cpu_started = time.process_time()
        best, best_state, bad = -1.0, None, 0
        self.history_: list[dict[str, Any]] = []
        started = time.monotonic()
        for epoch in range(1, self.epochs + 1):
            net.train()
            total, steps = 0.0, 0
            for batch in self._batches(lengths, rng):
                width = int(lengths[batch].max())
                x = np.zeros((len(batch), width), dtype=np.int64)
                y = np.zeros((len(batch), width), dtype=np.int64)
                for r, b in enumerate(batch):
                    x[r, : lengths[b]] = inputs[b]
                    y[r, : lengths[b]] = targets[b]
                loss = self._step(net, opt, torch.from_numpy(x), torch.from_numpy(y), seen, text, attrs, rng)
                total += loss
                steps += 1
                if clock() > deadline:
                    break
            record: dict[str, Any] = {
                "epoch": epoch,
                "loss": total / max(steps, 1),
                "seconds": round(time.monotonic() - started, 1),
                "cpu_seconds": round(time.process_time() - cpu_started, 1),
            }
            out_of_time = clock() > deadline
            if valid_cases and (epoch % self.eval_every == 0 or out_of_time or epoch == self.epochs):
                metrics = self._evaluate(net, valid_cases, seen, text, attrs)
                record.update(metrics)
                if metrics["NDCG@20"] > best:
                    best, bad = metrics["NDCG@20"], 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    self.best_epoch_ = epoch
                else:
                    bad += 1
            self.history_.append(record)
            if self.verbose:
                print(record, flush=True)
            if callback is not None:
                callback(record)
            if out_of_time or (valid_cases and bad >= self.patience):
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self._net = net
        self._table_cache: torch.Tensor | None = None

    def _batches(self, lengths: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """Shuffled batches of similar-length sequences.

        Padding to the longest sequence of a random batch wastes most of the attention work
        (a few users have hundreds of events, most a handful), so sequences are sorted by
        length within pools of 50 batches, then the batches are shuffled.
        """
        order = rng.permutation(len(lengths))
        pool = self.batch_size * 50
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def _step(
        self,
        net: _Net,
        opt: torch.optim.Optimizer,
        x: torch.Tensor,
        y: torch.Tensor,
        seen: torch.Tensor,
        text: torch.Tensor | None,
        attrs: torch.Tensor | None,
        rng: np.random.Generator,
    ) -> float:
        opt.zero_grad(set_to_none=True)
        table = net.item_table(seen, text, attrs)
        h = net.encode(x, table)
        mask = y > 0
        hv, yv = h[mask], y[mask]
        # The softmax over the catalog dominates the cost. Its loss is computed chunk by chunk
        # on detached leaves and back-propagated once, so only one chunk of logits is alive.
        hd = hv.detach().requires_grad_()
        td = table.detach().requires_grad_()
        bias = net.bias
        n = len(yv)
        total = 0.0
        if self.n_negatives > 0:
            neg = torch.from_numpy(rng.integers(1, len(seen), size=self.n_negatives))
            neg = neg[seen[neg] > 0] if bool((seen[neg] > 0).any()) else neg
        for s in range(0, n, self.loss_chunk):
            hc, yc = hd[s : s + self.loss_chunk], yv[s : s + self.loss_chunk]
            if self.n_negatives > 0:
                pos = (hc * td[yc]).sum(1, keepdim=True)
                negl = hc @ td[neg].T
                if bias is not None:
                    pos = pos + bias[yc][:, None]
                    negl = negl + bias[neg]
                negl = negl.masked_fill(neg[None, :] == yc[:, None], -1e9)  # accidental hits
                logits = torch.cat([pos, negl], 1)
                loss = F.cross_entropy(logits, torch.zeros_like(yc), reduction="sum")
            else:
                logits = hc @ td.T
                if bias is not None:
                    logits = logits + bias * seen
                logits[:, 0] = -1e9  # padding row is never a target
                loss = F.cross_entropy(logits, yc, reduction="sum", label_smoothing=self.label_smoothing)
            (loss / n).backward()
            total += float(loss.detach())
        grads_h, grads_t = hd.grad, td.grad
        tensors, grads = [hv, table], [grads_h, grads_t]
        if self.cl_weight > 0:
            cl = self._contrastive(net, x, y, h, table)
            tensors.append(cl)
            grads.append(torch.ones_like(cl))
            total += float(cl.detach()) * n
        torch.autograd.backward(tensors, grads)
        opt.step()
        return total / max(n, 1)

    def _contrastive(
        self, net: _Net, x: torch.Tensor, y: torch.Tensor, h: torch.Tensor, table: torch.Tensor
    ) -> torch.Tensor:
        """DuoRec-style InfoNCE between two dropout views of each sequence's last state."""
        last = (y > 0).sum(1) - 1
        rows = torch.arange(len(x))
        z1 = h[rows, last]
        z2 = net.encode(x, table)[rows, last]
        z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        sim = z1 @ z2.T / self.cl_temperature
        tgt = y[rows, last]
        same = (tgt[:, None] == tgt[None, :]) & ~torch.eye(len(x), dtype=torch.bool)
        sim = sim.masked_fill(same, -1e9)  # a sequence with the same next item is no negative
        return self.cl_weight * 0.5 * (F.cross_entropy(sim, rows) + F.cross_entropy(sim.T, rows))

    @torch.no_grad()
    def _evaluate(
        self,
        net: _Net,
        cases: list[tuple[list[int], int]],
        seen: torch.Tensor,
        text: torch.Tensor | None,
        attrs: torch.Tensor | None,
    ) -> dict[str, float]:
        net.eval()
        table = net.item_table(seen, text, attrs)
        ranks = []
        for s in range(0, len(cases), 512):
            chunk = cases[s : s + 512]
            scores = self._forward_histories(net, [c[0] for c in chunk], table, seen)
            tgt = torch.tensor([c[1] for c in chunk])
            t = scores[torch.arange(len(chunk)), tgt][:, None]
            # pessimistic ties, as in shoplm.evaluate.metrics
            ranks.append(((scores > t).sum(1) + (scores == t).sum(1) - 1).numpy())
        r = np.concatenate(ranks).astype(np.float64)
        net.train()
        return {
            "HR@20": float((r < 20).mean()),
            "NDCG@20": float(np.where(r < 20, 1.0 / np.log2(r + 2.0), 0.0).mean()),
        }

    def _forward_histories(
        self, net: _Net, histories: list[list[int]], table: torch.Tensor, seen: torch.Tensor
    ) -> torch.Tensor:
        """(n, n_rows) logits for row-index histories (non-empty); column 0 is -inf."""
        clipped = [h[-self.max_len :] for h in histories]
        width = max(len(h) for h in clipped)
        x = np.zeros((len(clipped), width), dtype=np.int64)
        for r, h in enumerate(clipped):
            x[r, : len(h)] = h
        last = torch.tensor([len(h) - 1 for h in clipped])
        h = net.encode(torch.from_numpy(x), table)[torch.arange(len(clipped)), last]
        logits = net.logits(h, table, seen)
        logits[:, 0] = -math.inf
        return logits

    # -- scoring -----------------------------------------------------------------------
    def prepare_serving(self) -> None:
        """Serve on one thread: one short history is far too little work to split, and concurrent
        requests toggling the process-wide thread count would race each other."""
        torch.set_num_threads(1)

    def score(self, history: Sequence[str]) -> np.ndarray:
        """One score per item of ``item_ids_`` for the live ``history`` (unknown ids ignored).

        An empty (or all-unknown) history gets log-popularity scores.
        """
        return self.score_batch([history])[0]

    @torch.no_grad()
    def score_batch(self, histories: Sequence[Sequence[str]], batch_size: int = 256) -> np.ndarray:
        """Scores for many histories at once: ``(len(histories), len(item_ids_))`` float32."""
        self.check_fitted()
        if len(histories) < 16 and torch.get_num_threads() > 1:
            # One short sequence is far too little work to split: extra threads only wait on each
            # other (150 ms instead of 2 ms on a busy 2-core machine). Serve it on one thread.
            previous = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return self.score_batch(histories, batch_size)
            finally:
                torch.set_num_threads(previous)
        index = self.item_index()
        rows = [[index[i] + 1 for i in map(str, h) if i in index] for h in histories]
        out = np.empty((len(rows), len(self.item_ids_)), dtype=np.float32)
        net = self._network()
        table = self._table()
        seen = torch.from_numpy(self.seen_)
        todo = [i for i, r in enumerate(rows) if r]
        for i, r in enumerate(rows):
            if not r:
                out[i] = self.popularity_
        for s in range(0, len(todo), batch_size):
            chunk = todo[s : s + batch_size]
            logits = self._forward_histories(net, [rows[i] for i in chunk], table, seen)
            out[chunk] = logits[:, 1:].numpy()
        return out

    def _network(self) -> _Net:
        if getattr(self, "_net", None) is None:
            raise RuntimeError("network missing")  # pragma: no cover - fit/load always set it
        return self._net

    def _table(self) -> torch.Tensor:
        # Item vectors do not change after training: compute them once for serving.
        if getattr(self, "_table_cache", None) is None:
            seen, text, attrs = self._tensors()
            with torch.no_grad():
                self._table_cache = self._net.item_table(seen, text, attrs)
        return self._table_cache

    # -- persistence -------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {
            f"net.{k}": v.detach().cpu().numpy() for k, v in self._network().state_dict().items()
        }
        arrays["item_ids"] = self.item_ids_
        arrays["seen"] = self.seen_
        arrays["popularity"] = self.popularity_
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
        net = self._build(len(self.seen_))
        net.load_state_dict({k[4:]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("net.")})
        net.eval()
        self._net = net
        self._table_cache = None
        self.history_ = list(state.get("history", []))
        if state.get("best_epoch") is not None:
            self.best_epoch_ = state["best_epoch"]
