"""The one contract every trained component follows: ``fit``, ``save(path)``, ``load(path)``.

Conventions (after scikit-learn and statsforecast):

- ``__init__`` only stores hyperparameters, under attributes of the same names;
- ``fit`` learns state, stores it in attributes ending in ``_`` and returns ``self``;
- ``save`` writes a directory: numeric arrays in ``arrays.safetensors``, string arrays in
  ``strings.npz`` (read back with ``allow_pickle=False``) and ``meta.json`` holding the class,
  hyperparameters, JSON state, library versions and the SHA-256 of every payload file.
  No pickle anywhere, so loading a model never runs code from the file;
- ``load`` needs nothing but the directory: no training data set object.

A subclass implements ``fit``, ``_get_state`` and ``_set_state``.

Example:
    >>> import tempfile
    >>> from shoplm.recommend import Interactions, PopularityRecommender
    >>> model = PopularityRecommender().fit(Interactions.from_arrays(["u1", "u2"], ["a", "a"]))
    >>> path = model.save(tempfile.mkdtemp() + "/popularity")
    >>> Estimator.load(path).recommend([], k=1)
    [('a', 1.0)]
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import mmap
import os
import platform
import shutil
import struct
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Self

import numpy as np
from safetensors.numpy import save_file

from shoplm import __version__
from shoplm.errors import ModelFileError, NotFittedError

FORMAT_VERSION = 1
META_FILE = "meta.json"
ARRAYS_FILE = "arrays.safetensors"
STRINGS_FILE = "strings.npz"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions(*modules: str) -> dict[str, str]:
    """Versions of the given installed modules (plus python, numpy, shoplm), for metadata."""
    versions = {"python": platform.python_version(), "numpy": np.__version__, "shoplm": __version__}
    for name in modules:
        try:
            versions[name] = str(importlib.import_module(name).__version__)
        except (ImportError, AttributeError):
            versions[name] = "unavailable"
    return versions


class Estimator(ABC):
    """Base class of every trained component. See the module docstring for the contract."""

    #: modules whose versions are recorded in meta.json besides numpy and python
    _version_modules: tuple[str, ...] = ()

    # -- hyperparameters -------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The hyperparameters given to ``__init__`` (JSON-serializable)."""
        signature = inspect.signature(type(self).__init__)
        return {
            name: getattr(self, name)
            for name, parameter in signature.parameters.items()
            if name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # -- learning --------------------------------------------------------------------
    @abstractmethod
    def fit(self, *args: Any, **kwargs: Any) -> Self:
        """Learn from data; return ``self``."""

    @property
    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless ``fit`` or ``load`` has run."""
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load() first")

    # -- persistence -----------------------------------------------------------------
    @abstractmethod
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Learned state as (named arrays, JSON-serializable dict)."""

    @abstractmethod
    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        """Restore learned state from what ``_get_state`` returned."""

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to directory ``path`` atomically; return the path.

        An existing model at ``path`` is replaced only once the new one is complete, so a
        reader never sees a half-written model.
        """
        self.check_fitted()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        arrays, state = self._get_state()
        numeric = {k: np.ascontiguousarray(v) for k, v in arrays.items() if v.dtype.kind in "biuf"}
        strings = {k: np.asarray(v, dtype=np.str_) for k, v in arrays.items() if v.dtype.kind in "OUS"}
        unknown = set(arrays) - set(numeric) - set(strings)
        if unknown:
            raise TypeError(f"arrays of unsupported dtype in state: {sorted(unknown)}")
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            files: dict[str, str] = {}
            if numeric:
                save_file(numeric, str(staging / ARRAYS_FILE))
                files[ARRAYS_FILE] = _sha256(staging / ARRAYS_FILE)
            if strings:
                np.savez(staging / STRINGS_FILE, **strings)
                files[STRINGS_FILE] = _sha256(staging / STRINGS_FILE)
            meta = {
                "format_version": FORMAT_VERSION,
                "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "params": self.get_params(),
                "state": state,
                "files": files,
                "versions": library_versions(*self._version_modules),
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            (staging / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False))
            if target.exists():
                backup = target.with_name(f".{target.name}.old-{os.getpid()}")
                os.replace(target, backup)
                os.replace(staging, target)
                shutil.rmtree(backup, ignore_errors=True)
            else:
                os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a model saved by :meth:`save`; checks its class and file hashes.

        Called on ``Estimator`` itself it returns whatever shoplm class the directory holds.
        """
        source = Path(path)
        meta_path = source / META_FILE
        if not meta_path.is_file():
            raise ModelFileError(f"{source}: not a saved shoplm model (no {META_FILE})")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{meta_path}: unreadable metadata ({exc})") from exc
        if meta.get("format_version") != FORMAT_VERSION:
            raise ModelFileError(
                f"{source}: model format {meta.get('format_version')!r}, this shoplm reads {FORMAT_VERSION}"
            )
        saved_cls = _resolve_class(meta.get("class", ""), source)
        if not issubclass(saved_cls, cls):
            raise ModelFileError(f"{source}: holds a {saved_cls.__name__}, not a {cls.__name__}")
        for name, expected in meta.get("files", {}).items():
            file_path = source / name
            if not file_path.is_file():
                raise ModelFileError(f"{source}: {name} is missing")
            if _sha256(file_path) != expected:
                raise ModelFileError(f"{file_path}: contents do not match the hash in {META_FILE}")
        arrays: dict[str, np.ndarray] = {}
        if ARRAYS_FILE in meta["files"]:
            arrays.update(map_safetensors(source / ARRAYS_FILE))
        if STRINGS_FILE in meta["files"]:
            with np.load(source / STRINGS_FILE, allow_pickle=False) as npz:
                arrays.update({k: npz[k] for k in npz.files})
        model = saved_cls(**meta.get("params", {}))
        model._set_state(arrays, meta.get("state", {}))
        return model


#: safetensors dtype names -> numpy dtypes (little-endian, as the format stores them).
_SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}


def map_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file, memory-mapped read-only rather than read into memory.

    Several serving processes loading the same model then share one copy of its arrays (the
    page cache), and loading reads only the header. The arrays are read-only; a model that
    changes one (the text source adding items) copies it first.

    Args:
        path: a file written by ``safetensors.numpy.save_file``.

    Returns:
        Name -> array.
    """
    with path.open("rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        (header_size,) = struct.unpack_from("<Q", mapped, 0)
        header = json.loads(mapped[8 : 8 + header_size])
    except (struct.error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: not a safetensors file ({exc})") from exc
    start = 8 + header_size
    arrays: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = np.dtype(_SAFETENSORS_DTYPES[entry["dtype"]])
        begin, end = entry["data_offsets"]
        count = (end - begin) // dtype.itemsize
        array = np.frombuffer(mapped, dtype=dtype, count=count, offset=start + begin)
        arrays[name] = array.reshape(entry["shape"])
    return arrays


def _resolve_class(qualified: str, source: Path) -> type[Estimator]:
    module_name, _, class_name = qualified.rpartition(".")
    # Only shoplm's own classes (and test doubles) are loaded: the file names a class, never code.
    if not module_name or not (module_name.startswith("shoplm.") or module_name.startswith("tests.")):
        raise ModelFileError(f"{source}: unknown model class {qualified!r}")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ModelFileError(f"{source}: model class {qualified!r} is not available ({exc})") from exc
    if not (isinstance(found, type) and issubclass(found, Estimator)):
        raise ModelFileError(f"{source}: {qualified!r} is not a shoplm estimator")
    return found


def read_model_meta(path: str | Path) -> dict[str, Any]:
    """The ``meta.json`` of a saved model, without loading its arrays."""
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise ModelFileError(f"{path}: not a saved shoplm model (no {META_FILE})")
    return json.loads(meta_path.read_text())
