"""Rewriting files under the data directory without one user's rows: the file half of :mod:`shoplm.app.erasure`.

Rejects files and the demo's source files (CSV, JSON lines, Parquet, JSON, text) lose the rows
that name or quote the user; ``.npz`` vector files lose the rows keyed by the user's records.
Every rewrite goes to a file beside the old one that then replaces it, so a reader never sees
half a file.

Example:
    >>> scrub_json({"top": [{"user_id": "u_a", "p": 1}, {"user_id": "u_b", "p": 2}], "u_a": 3},
    ...            lambda s: s == "u_a")
    ({'top': [{'user_id': 'u_b', 'p': 2}]}, True)
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shoplm.config import Settings
from shoplm.store import sqlite_files

_TABULAR = {".csv", ".jsonl", ".parquet", ".json", ".txt", ".log"}


def data_files(settings: Settings) -> list[Path]:
    """Files under the data directory that may hold rows of users: rejects, source and report files."""
    root = settings.data_dir
    skip = {settings.models_dir, settings.cache_dir, root / "run", root / "embeddings"}
    database = set(sqlite_files(settings.database_url))
    found = []
    for path in root.rglob("*"):
        if not path.is_file() or path in database or any(parent in skip for parent in path.parents):
            continue
        if path.suffix.lower() in _TABULAR:
            found.append(path)
    return sorted(found)


def matching_lines(path: Path, match: Callable[[str], bool]) -> list[str]:
    """The user's rows in a data file, as text (Parquet rows as JSON)."""
    if path.suffix.lower() == ".parquet":
        frame = _read_parquet(path)
        if frame is None:
            return []
        mask = _row_mask(frame, match)
        return [json.dumps(row, default=str, ensure_ascii=False) for row in frame[mask].to_dict("records")]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [line for line in text.splitlines() if match(line)]


def rewrite_without(path: Path, match: Callable[[str], bool]) -> bool:
    """Rewrite a data file without the user's rows (atomically); True if it changed."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = _read_parquet(path)
        if frame is None:
            return False
        mask = _row_mask(frame, match)
        if not mask.any():
            return False
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame[~mask], preserve_index=False)
        replace_file(path, lambda staging: pq.write_table(table, staging, compression="zstd"))
        return True
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if not match(text):
        return False
    if suffix == ".json":
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if document is not None:
            cleaned, _changed = scrub_json(document, match)
            replace_file(
                path, lambda staging: Path(staging).write_text(json.dumps(cleaned, ensure_ascii=False, indent=1))
            )
            return True
    if suffix == ".csv":
        rows = list(csv.reader(text.splitlines(keepends=True)))
        kept = [row for index, row in enumerate(rows) if index == 0 or not any(match(cell) for cell in row)]

        def write_csv(staging: str) -> None:
            with open(staging, "w", encoding="utf-8", newline="") as handle:
                csv.writer(handle).writerows(kept)

        replace_file(path, write_csv)
        return True
    lines = [line for line in text.splitlines(keepends=True) if not match(line)]
    replace_file(path, lambda staging: Path(staging).write_text("".join(lines), encoding="utf-8"))
    return True


def _read_parquet(path: Path) -> Any:
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception:  # not ours to judge: a file we cannot read is reported by the residue check
        return None


def _row_mask(frame: Any, match: Callable[[str], bool]) -> np.ndarray:
    mask = np.zeros(len(frame), dtype=bool)
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object or str(values.dtype).startswith("string"):
            mask |= values.map(lambda v: isinstance(v, str) and match(v)).to_numpy(dtype=bool)
    return mask


def replace_file(path: Path, write: Callable[[str], None]) -> None:
    """Write a new version of ``path`` beside it, then swap it in (a reader never sees half a file)."""
    fd, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(staging)
        os.chmod(staging, path.stat().st_mode & 0o777)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def scrub_json(value: Any, match: Callable[[str], bool]) -> tuple[Any, bool]:
    """``value`` without what names the user: list entries and object members that do; True if changed.

    A list entry goes when it is a matching string or an object with a matching value of its
    own (``{"user_id": ..., "score": ...}``); an object member goes when its key or its string
    value matches.

    Example:
        >>> scrub_json({"top": [{"user_id": "u_a", "p": 1}, {"user_id": "u_b", "p": 2}], "u_a": 3},
        ...             lambda s: s == "u_a")
        ({'top': [{'user_id': 'u_b', 'p': 2}]}, True)
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        changed = False
        for key, item in value.items():
            if match(str(key)) or (isinstance(item, str) and match(item)):
                changed = True
                continue
            out[key], sub = scrub_json(item, match)
            changed |= sub
        return out, changed
    if isinstance(value, list):
        kept: list[Any] = []
        changed = False
        for item in value:
            own = [v for v in item.values() if isinstance(v, str)] if isinstance(item, dict) else []
            if (isinstance(item, str) and match(item)) or any(match(v) for v in own):
                changed = True
                continue
            cleaned, sub = scrub_json(item, match)
            kept.append(cleaned)
            changed |= sub
        return kept, changed
    return value, False


def scrub_json_text(body: str, match: Callable[[str], bool]) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return "{}"  # not JSON, yet it names the user: nothing of it can be kept safely
    cleaned, changed = scrub_json(document, match)
    return json.dumps(cleaned, ensure_ascii=False) if changed else body


def drop_npz_rows(path: Path, ids: frozenset[str] | set[str]) -> bool:
    """Rewrite an ``.npz`` of vectors (``review_ids`` + ``vectors``, ...) without the rows of these ids."""
    if not ids:
        return False
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    drop: np.ndarray | None = None
    for values in arrays.values():
        if values.dtype.kind == "U" and values.ndim == 1:
            hit = np.isin(values, list(ids))
            if hit.any():
                drop = hit if drop is None else drop | hit
    if drop is None:
        return False
    kept = {k: (v[~drop] if v.ndim >= 1 and len(v) == len(drop) else v) for k, v in arrays.items()}
    replace_file(path, lambda staging: _save_npz(staging, kept))
    return True


def _save_npz(staging: str, arrays: dict[str, np.ndarray]) -> None:
    with open(staging, "wb") as handle:  # a file object: np.savez would append ".npz" to a name
        np.savez(handle, **arrays)
