"""Stand-in encoders for tests: one that counts calls, one that needs no model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from shoplm.lm import TextEncoder
from shoplm.lm.encoder import Mode, check_texts


class CountingEncoder(TextEncoder):
    """Wraps an encoder and records every call, every text and every (mode, text) it is asked to encode."""

    def __init__(self, inner: TextEncoder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.symmetric = inner.symmetric
        self.calls = 0
        self.texts: list[str] = []
        self.asked: list[tuple[str, str]] = []

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(
        self, texts: Sequence[str], *, mode: Mode = "passage", batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        self.calls += 1
        self.texts.extend(texts)
        self.asked += [(mode, t) for t in texts]
        return self.inner.encode(texts, mode=mode, batch_size=batch_size, progress=progress)


class HashEncoder(TextEncoder):
    """A fast stand-in model: a deterministic unit vector per (mode, text)."""

    def __init__(self, model_id: str = "hash-test", dim: int = 8, symmetric: bool = False) -> None:
        self.model_id = model_id
        self._dim = dim
        self.symmetric = symmetric

    @property
    def dim(self) -> int:
        return self._dim

    def encode(
        self, texts: Sequence[str], *, mode: Mode = "passage", batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        rows = []
        for text in check_texts(texts):
            salt = "" if self.symmetric else mode
            seed = int.from_bytes(hashlib.sha256(f"{salt}|{text}".encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).standard_normal(self._dim))
        out = np.asarray(rows, dtype=np.float32).reshape(len(rows), self._dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)
