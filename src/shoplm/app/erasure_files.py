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
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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


#: Column names that hold a user's id in the shops' files (user_id, CustomerID, buyer, ...).
USER_COLUMN = re.compile(r"user|customer|member|buyer|client|shopper", re.IGNORECASE)


@dataclass(frozen=True)
class Matcher:
    """How a user is recognized in files, with care not to take someone else's row for theirs.

    A raw id such as ``42`` also reads as a quantity or part of a price, so it counts only where
    a user's id belongs: as the whole value of a user column (``user_id``, ``CustomerID``, ...),
    as a whole JSON string, or as a whole token in free text that has no columns (a broken line
    kept in a rejects file, a log line). The pseudonym and the texts only the user wrote count
    anywhere.

    Example:
        >>> m = Matcher(raw_id="42", pseudonym="u_abc", texts=("my very own words",))
        >>> m.row({"user_id": "42", "qty": "1"}), m.row({"user_id": "7", "qty": "42"}), m.free("id=42;")
        (True, False, True)
    """

    raw_id: str | None
    pseudonym: str
    texts: tuple[str, ...] = ()

    def mentions(self, text: str) -> bool:
        """The pseudonym or one of the user's own texts is in ``text``."""
        return self.pseudonym in text or any(t in text for t in self.texts)

    def value(self, value: str) -> bool:
        """A whole value is the user (their raw id or pseudonym) or mentions them."""
        stripped = value.strip()
        return stripped in (self.raw_id, self.pseudonym) or self.mentions(value)

    def free(self, text: str) -> bool:
        """Free text names the user: the raw id as a whole token, or a mention."""
        if self.raw_id and re.search(rf"(?<![A-Za-z0-9_]){re.escape(self.raw_id)}(?![A-Za-z0-9_])", text):
            return True
        return self.mentions(text)

    def row(self, row: dict[str, Any]) -> bool:
        """A row (column -> value) is the user's: a user column holds them, or a value mentions them."""
        for column, cell in row.items():
            if cell is None or (not isinstance(cell, str) and not USER_COLUMN.search(str(column))):
                continue
            text = str(cell)
            if (USER_COLUMN.search(str(column)) and text.strip() == self.raw_id) or self.mentions(text):
                return True
        return False


def matching_lines(path: Path, matcher: Matcher) -> list[str]:
    """The user's rows in a data file, as text (Parquet rows as JSON)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = _read_parquet(path)
        if frame is None:
            return []
        mask = _row_mask(frame, matcher)
        return [json.dumps(row, default=str, ensure_ascii=False) for row in frame[mask].to_dict("records")]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    if suffix == ".csv":
        rows = list(csv.reader(text.splitlines(keepends=True)))
        return [",".join(row) for index, row in enumerate(rows) if index and _csv_row_is_theirs(rows[0], row, matcher)]
    if suffix == ".json":
        return [text] if _json_names(text, matcher) else []
    return [line for line in text.splitlines() if _line_is_theirs(line, matcher, jsonl=suffix == ".jsonl")]


def rewrite_without(path: Path, matcher: Matcher) -> bool:
    """Rewrite a data file without the user's rows (atomically); True if it changed."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = _read_parquet(path)
        if frame is None:
            return False
        mask = _row_mask(frame, matcher)
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
    if suffix == ".json":
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if document is not None:
            cleaned, changed = scrub_json(document, matcher.value)
            if changed:
                out = json.dumps(cleaned, ensure_ascii=False, indent=1)
                replace_file(path, lambda staging: Path(staging).write_text(out, encoding="utf-8"))
            return changed
    if suffix == ".csv":
        rows = list(csv.reader(text.splitlines(keepends=True)))
        kept = [row for index, row in enumerate(rows) if index == 0 or not _csv_row_is_theirs(rows[0], row, matcher)]
        if len(kept) == len(rows):
            return False

        def write_csv(staging: str) -> None:
            with open(staging, "w", encoding="utf-8", newline="") as handle:
                csv.writer(handle).writerows(kept)

        replace_file(path, write_csv)
        return True
    lines = text.splitlines(keepends=True)
    kept_lines = [line for line in lines if not _line_is_theirs(line, matcher, jsonl=suffix == ".jsonl")]
    if len(kept_lines) == len(lines):
        return False
    replace_file(path, lambda staging: Path(staging).write_text("".join(kept_lines), encoding="utf-8"))
    return True


def _csv_row_is_theirs(header: list[str], row: list[str], matcher: Matcher) -> bool:
    # A rejects file (line, field, reason, the input's columns) keeps a line it could not parse
    # whole, with an empty field: that cell is free text.
    if header[:3] == ["line", "field", "reason"] and len(row) > 3 and row[1] == "" and matcher.free(row[3]):
        return True
    return matcher.row(dict(zip(header, row, strict=False)))


def _line_is_theirs(line: str, matcher: Matcher, *, jsonl: bool) -> bool:
    if jsonl and line.strip():
        try:
            record = json.loads(line)
        except ValueError:
            return matcher.free(line)
        if isinstance(record, dict):
            return matcher.row(record) or matcher.mentions(line)
    return matcher.free(line)


def _json_names(text: str, matcher: Matcher) -> bool:
    try:
        return scrub_json(json.loads(text), matcher.value)[1]
    except ValueError:
        return matcher.free(text)


def _read_parquet(path: Path) -> Any:
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception:  # not ours to judge: a file we cannot read is reported by the residue check
        return None


def _row_mask(frame: Any, matcher: Matcher) -> np.ndarray:
    mask = np.zeros(len(frame), dtype=bool)
    for column in frame.columns:
        values = frame[column]
        if USER_COLUMN.search(str(column)):
            mask |= values.map(lambda v: v is not None and str(v).strip() == matcher.raw_id).to_numpy(dtype=bool)
        if values.dtype == object or str(values.dtype).startswith("string"):
            mask |= values.map(lambda v: isinstance(v, str) and matcher.mentions(v)).to_numpy(dtype=bool)
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
