"""The PyTorch side of :class:`~shoplm.recommend.sequential.SequentialRecommender`: its network and training loop.

Imported only to train: a trained model keeps its weights as arrays and scores histories in
numpy (:mod:`shoplm.recommend.sequential`), so a serving process never imports torch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shoplm.recommend.base import padded_histories

if TYPE_CHECKING:
    from shoplm.recommend.sequential import SequentialRecommender


class _Block(nn.Module):
    """Transformer block with causal attention (right-padded input needs no pad mask).

    ``pre_norm``: LayerNorm before each sub-layer (stable with a high learning rate); else after
    the residual sum, as in the original SASRec and Transformer.
    """

    def __init__(self, d: int, heads: int, dropout: float, pre_norm: bool = True) -> None:
        super().__init__()
        self.heads = heads
        self.pre_norm = pre_norm
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
        h = self.ln1(x) if self.pre_norm else x
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        # Padding sits on the right, so causal masking alone keeps real tokens off the pads.
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.p if self.training else 0.0)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
        if not self.pre_norm:
            x = self.ln1(x)
        h = self.ln2(x) if self.pre_norm else x
        x = x + self.drop(self.ff2(self.drop(F.gelu(self.ff1(h)))))
        return x if self.pre_norm else self.ln2(x)


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
        pre_norm: bool = True,
        positions_from_end: bool = False,
    ) -> None:
        super().__init__()
        self.positions_from_end = positions_from_end
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
        self.blocks = nn.ModuleList([_Block(d, heads, dropout, pre_norm) for _ in range(layers)])
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
        pos = torch.arange(seqs.shape[1], device=seqs.device)[None]
        if self.positions_from_end:  # 0 = the newest item: the position encodes recency
            pos = ((seqs > 0).sum(1, keepdim=True) - 1 - pos).clamp(min=0)
        x = self.drop(self.emb_ln(table[seqs] + self.pos_emb(pos)))
        for block in self.blocks:
            x = block(x)
        return self.final_ln(x)

    def logits(self, h: torch.Tensor, table: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        out = h @ table.T
        if self.bias is not None:
            out = out + self.bias * seen
        return out


def build_net(model: SequentialRecommender, n_rows: int) -> _Net:
    """The network of ``model``'s shape over ``n_rows`` item rows (row 0 is padding)."""
    return _Net(
        n_rows,
        model.d_model,
        model.n_layers,
        model.n_heads,
        model.max_len,
        model.dropout,
        0 if model.text_ is None else model.text_.shape[1],
        0 if model.attribute_values_ is None else len(model.attribute_values_),
        model.output_bias,
        model.norm == "pre",
        model.positions == "from_end",
    )


def net_from_weights(model: SequentialRecommender) -> _Net:
    """The trained network of a fitted ``model`` (for checks of the numpy forward pass against torch)."""
    net = build_net(model, len(model.seen_))
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.weights_.items()})
    return net.eval()


def _tensors(model: SequentialRecommender) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    seen = torch.from_numpy(model.seen_)
    text = torch.from_numpy(model.text_) if model.text_ is not None else None
    attrs = torch.from_numpy(model.attributes_) if model.attributes_ is not None else None
    return seen, text, attrs


def train_network(
    model: SequentialRecommender,
    inputs: list[np.ndarray],
    targets: list[np.ndarray],
    n_rows: int,
    valid_cases: list[tuple[list[int], int]],
    callback: Callable[[dict[str, Any]], None] | None,
) -> dict[str, np.ndarray]:
    """Train the network on the windows; returns its weights (the best validation epoch's, if validated).

    Sets ``model.history_`` (a record per epoch) and ``model.best_epoch_`` when validated.
    """
    torch.manual_seed(model.seed)
    rng = np.random.default_rng(model.seed)
    net = build_net(model, n_rows)
    seen, text, attrs = _tensors(model)
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        (decay if p.ndim == 2 and "emb" not in name else no_decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": model.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=model.lr,
    )
    lengths = np.array([len(x) for x in inputs])
    if model.lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', not {model.lr_schedule!r}")
    if model.lr_schedule == "cosine":  # to 0 over ``epochs`` epochs of steps
        total_steps = model.epochs * math.ceil(len(inputs) / model.batch_size)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )
    if model.budget_clock not in ("wall", "cpu"):
        raise ValueError(f"budget_clock must be 'wall' or 'cpu', not {model.budget_clock!r}")
    clock = time.monotonic if model.budget_clock == "wall" else time.process_time
    deadline = clock() + 60.0 * model.max_minutes if model.max_minutes else math.inf
    cpu_started = time.process_time()
    best, best_state, bad = -1.0, None, 0
    model.history_ = []
    started = time.monotonic()
    for epoch in range(1, model.epochs + 1):
        net.train()
        total, steps = 0.0, 0
        for batch in _batches(model.batch_size, lengths, rng):
            width = int(lengths[batch].max())
            x = np.zeros((len(batch), width), dtype=np.int64)
            y = np.zeros((len(batch), width), dtype=np.int64)
            for r, b in enumerate(batch):
                x[r, : lengths[b]] = inputs[b]
                y[r, : lengths[b]] = targets[b]
            loss = _step(model, net, opt, torch.from_numpy(x), torch.from_numpy(y), seen, text, attrs, rng)
            if model.lr_schedule == "cosine":
                schedule.step()
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
        if valid_cases and (epoch % model.eval_every == 0 or out_of_time or epoch == model.epochs):
            metrics = _evaluate(model, net, valid_cases, seen, text, attrs)
            record.update(metrics)
            if metrics["NDCG@20"] > best:
                best, bad = metrics["NDCG@20"], 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                model.best_epoch_ = epoch
            else:
                bad += 1
        model.history_.append(record)
        if model.verbose:
            print(record, flush=True)
        if callback is not None:
            callback(record)
        if out_of_time or (valid_cases and bad >= model.patience):
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}


def _batches(batch_size: int, lengths: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar-length sequences.

    Padding to the longest sequence of a random batch wastes most of the attention work
    (a few users have hundreds of events, most a handful), so sequences are sorted by
    length within pools of 50 batches, then the batches are shuffled.
    """
    order = rng.permutation(len(lengths))
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def _step(
    model: SequentialRecommender,
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
    if model.n_negatives > 0:
        neg = torch.from_numpy(rng.integers(1, len(seen), size=model.n_negatives))
        neg = neg[seen[neg] > 0] if bool((seen[neg] > 0).any()) else neg
    for s in range(0, n, model.loss_chunk):
        hc, yc = hd[s : s + model.loss_chunk], yv[s : s + model.loss_chunk]
        if model.n_negatives > 0:
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
            loss = F.cross_entropy(logits, yc, reduction="sum", label_smoothing=model.label_smoothing)
        (loss / n).backward()
        total += float(loss.detach())
    grads_h, grads_t = hd.grad, td.grad
    tensors, grads = [hv, table], [grads_h, grads_t]
    if model.cl_weight > 0:
        cl = _contrastive(model, net, x, y, h, table)
        tensors.append(cl)
        grads.append(torch.ones_like(cl))
        total += float(cl.detach()) * n
    torch.autograd.backward(tensors, grads)
    opt.step()
    return total / max(n, 1)


def _contrastive(
    model: SequentialRecommender, net: _Net, x: torch.Tensor, y: torch.Tensor, h: torch.Tensor, table: torch.Tensor
) -> torch.Tensor:
    """DuoRec-style InfoNCE between two dropout views of each sequence's last state."""
    last = (y > 0).sum(1) - 1
    rows = torch.arange(len(x))
    z1 = h[rows, last]
    z2 = net.encode(x, table)[rows, last]
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    sim = z1 @ z2.T / model.cl_temperature
    tgt = y[rows, last]
    same = (tgt[:, None] == tgt[None, :]) & ~torch.eye(len(x), dtype=torch.bool)
    sim = sim.masked_fill(same, -1e9)  # a sequence with the same next item is no negative
    return model.cl_weight * 0.5 * (F.cross_entropy(sim, rows) + F.cross_entropy(sim.T, rows))


@torch.no_grad()
def _evaluate(
    model: SequentialRecommender,
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
        scores = _forward_histories(model, net, [c[0] for c in chunk], table, seen)
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
    model: SequentialRecommender, net: _Net, histories: list[list[int]], table: torch.Tensor, seen: torch.Tensor
) -> torch.Tensor:
    """(n, n_rows) logits for row-index histories (non-empty); column 0 is -inf."""
    x, last = padded_histories(histories, model.max_len)
    h = net.encode(torch.from_numpy(x), table)[torch.arange(len(x)), torch.from_numpy(last)]
    logits = net.logits(h, table, seen)
    logits[:, 0] = -math.inf
    return logits


class _LastLogits(nn.Module):
    """The serving graph: item rows of one history -> the logits of every item row for its next item."""

    def __init__(self, net: _Net, table: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("table", table)
        self.register_buffer("bias", bias if bias is not None else torch.zeros(len(table)))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        hidden = self.net.encode(rows, self.table)[:, -1]
        return hidden @ self.table.T + self.bias


def export_onnx(model: SequentialRecommender) -> bytes:
    """The fitted ``model``'s scoring of one history as an ONNX graph (input ``rows``: 1 x length int64).

    Its logits equal the numpy forward pass within float rounding (a test holds them together).
    """
    import io
    import warnings

    net = net_from_weights(model)
    bias = torch.from_numpy(model.bias_) if model.bias_ is not None else None
    graph = _LastLogits(net, torch.from_numpy(model.table_), bias).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (torch.ones((1, 2), dtype=torch.int64),),
            buffer,
            input_names=["rows"],
            output_names=["logits"],
            dynamic_axes={"rows": {1: "length"}},
            opset_version=17,
            dynamo=False,
        )
    return buffer.getvalue()
