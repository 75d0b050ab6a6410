"""Streamed readers for CSV, JSONL and Parquet files and for DataFrames.

Each yields :class:`Chunk` objects of at most ``chunk_rows`` rows with the *line* (CSV,
JSONL) or *row* (Parquet, DataFrame) number of every row, so memory stays bounded for any
file size and every problem can be reported where it is.

Example:
    >>> import io, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "items.csv"
    >>> _ = path.write_text("item_id,title\\n1,Mug\\n2,Cup\\n")
    >>> [c.lines.tolist() for c in open_source(path).chunks(chunk_rows=10)]
    [[2, 3]]
"""

from __future__ import annotations

import codecs
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shoplm.errors import InputError

# Long free-text fields (descriptions, chats) can exceed csv's default 128 KiB field cap.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class Chunk:
    """Rows read from a source: a frame, their line/row numbers, and rows unreadable as such."""

    frame: pd.DataFrame
    lines: np.ndarray
    broken: list[tuple[int, str, str]]  # (line, reason, raw text) for rows that could not be parsed
    bytes_read: int = 0


class Source:
    """A file or DataFrame to ingest. Use :func:`open_source`."""

    label: str
    unit: str = "line"  # what `lines` count: "line" or "row"
    size: int = 0  # bytes (files) or rows (frames), for progress

    def columns(self) -> list[str]:
        raise NotImplementedError

    def chunks(self, chunk_rows: int = 50_000) -> Iterator[Chunk]:
        raise NotImplementedError


def normalize_column(name: object) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def open_source(source: str | Path | pd.DataFrame, *, encoding: str = "utf-8", fmt: str | None = None) -> Source:
    """A :class:`Source` for a path (format from its extension, or ``fmt``) or a DataFrame."""
    if isinstance(source, pd.DataFrame):
        return FrameSource(source)
    path = Path(source)
    if not path.exists():
        raise InputError("no such file", path=path)
    if path.is_dir():
        raise InputError("is a directory, not a file", path=path)
    kind = fmt or FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"unknown file type {path.suffix!r}: use .csv, .tsv, .jsonl or .parquet", path=path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty", path=path)
    if kind in ("csv", "tsv"):
        return CsvSource(path, encoding=encoding, delimiter="\t" if kind == "tsv" else ",")
    if kind == "jsonl":
        return JsonlSource(path, encoding=encoding)
    return ParquetSource(path)


def check_encoding(path: Path, encoding: str) -> None:
    """Fail early, naming the line, if the file is not in ``encoding`` (nothing is stored yet)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    newlines = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                bad_at = exc.start
                line = newlines + block[:bad_at].count(b"\n") + 1
                hint = " (it may be GBK/GB18030 or Latin-1: re-save it as UTF-8, or pass --encoding)"
                raise InputError(
                    f"not valid {encoding} at byte {offset + bad_at} (0x{block[bad_at]:02x}){hint}",
                    path=path,
                    line=line,
                ) from None
            offset += len(block)
            newlines += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InputError(f"the file ends inside a {encoding} character (truncated?)", path=path) from None


class CsvSource(Source):
    def __init__(self, path: Path, *, encoding: str, delimiter: str) -> None:
        self.path = path
        self.label = str(path)
        self.size = path.stat().st_size
        self.encoding = encoding
        self.delimiter = delimiter
        check_encoding(path, encoding)
        self._header = self._read_header()

    def _open(self):
        # utf-8-sig drops a byte-order mark that spreadsheet programs add.
        encoding = "utf-8-sig" if self.encoding.replace("_", "-").lower() == "utf-8" else self.encoding
        return self.path.open("r", encoding=encoding, newline="")

    def _read_header(self) -> list[str]:
        with self._open() as handle:
            try:
                header = next(csv.reader(handle, delimiter=self.delimiter))
            except StopIteration:
                raise InputError("the file is empty", path=self.path) from None
            except csv.Error as exc:
                raise InputError(f"unreadable header: {exc}", path=self.path, line=1) from None
        if not any(h.strip() for h in header):
            raise InputError("the first line should be a header naming the columns", path=self.path, line=1)
        return [normalize_column(h) for h in header]

    def columns(self) -> list[str]:
        return self._header

    def chunks(self, chunk_rows: int = 50_000) -> Iterator[Chunk]:
        width = len(self._header)
        with self._open() as handle:
            reader = csv.reader(handle, delimiter=self.delimiter)
            next(reader)
            rows: list[list[str]] = []
            lines: list[int] = []
            broken: list[tuple[int, str, str]] = []
            start_line = reader.line_num + 1
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    broken.append((reader.line_num, f"unreadable CSV: {exc}", ""))
                    start_line = reader.line_num + 1
                    continue
                line = start_line
                start_line = reader.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                if len(row) != width:
                    broken.append((line, f"has {len(row)} fields, the header has {width}", self.delimiter.join(row)))
                else:
                    rows.append(row)
                    lines.append(line)
                if len(rows) + len(broken) >= chunk_rows:
                    yield Chunk(
                        pd.DataFrame(rows, columns=self._header),
                        np.asarray(lines, np.int64),
                        broken,
                        handle.buffer.tell(),
                    )
                    rows, lines, broken = [], [], []
            if rows or broken:
                yield Chunk(pd.DataFrame(rows, columns=self._header), np.asarray(lines, np.int64), broken, self.size)


class JsonlSource(Source):
    def __init__(self, path: Path, *, encoding: str) -> None:
        self.path = path
        self.label = str(path)
        self.size = path.stat().st_size
        self.encoding = encoding
        check_encoding(path, encoding)
        self._columns = self._scan_columns()

    def _scan_columns(self) -> list[str]:
        # Columns are the union of keys of the first rows; later unknown keys still reach validation.
        seen: dict[str, None] = {}
        with self.path.open("r", encoding=self.encoding) as handle:
            for count, text in enumerate(handle):
                if count >= 1000:
                    break
                try:
                    record = json.loads(text)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    seen.update(dict.fromkeys(normalize_column(k) for k in record))
        if not seen:
            raise InputError("no JSON object found in the first 1000 lines (is this JSONL?)", path=self.path)
        return list(seen)

    def columns(self) -> list[str]:
        return self._columns

    def chunks(self, chunk_rows: int = 50_000) -> Iterator[Chunk]:
        records: list[dict[str, str]] = []
        lines: list[int] = []
        broken: list[tuple[int, str, str]] = []
        with self.path.open("r", encoding=self.encoding) as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    broken.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})", text.rstrip("\n")))
                    continue
                if not isinstance(record, dict):
                    broken.append((number, "not a JSON object", text.rstrip("\n")))
                    continue
                records.append({normalize_column(k): _jsonl_value(v) for k, v in record.items()})
                lines.append(number)
                if len(records) + len(broken) >= chunk_rows:
                    yield Chunk(
                        _records_frame(records, self._columns),
                        np.asarray(lines, np.int64),
                        broken,
                        handle.buffer.tell(),
                    )
                    records, lines, broken = [], [], []
        if records or broken:
            yield Chunk(_records_frame(records, self._columns), np.asarray(lines, np.int64), broken, self.size)


def _jsonl_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _records_frame(records: list[dict[str, str]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records)
    for column in columns:
        if column not in frame.columns:
            frame[column] = ""
    return frame.fillna("")


class ParquetSource(Source):
    unit = "row"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        self.size = path.stat().st_size
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
            raise InputError(f"not a readable Parquet file (truncated or corrupt?): {exc}", path=path) from None
        self._columns = [normalize_column(n) for n in self._file.schema_arrow.names]

    def columns(self) -> list[str]:
        return self._columns

    def chunks(self, chunk_rows: int = 50_000) -> Iterator[Chunk]:
        total = max(1, self._file.metadata.num_rows)
        row = 1
        try:
            for batch in self._file.iter_batches(batch_size=chunk_rows):
                frame = batch.to_pandas()
                frame.columns = self._columns
                lines = np.arange(row, row + len(frame), dtype=np.int64)
                row += len(frame)
                yield Chunk(frame, lines, [], int(self.size * (row - 1) / total))
        except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
            raise InputError(
                f"unreadable Parquet data after row {row - 1} (truncated or corrupt?): {exc}", path=self.path
            ) from None


class FrameSource(Source):
    unit = "row"

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.label = "<DataFrame>"
        self.size = len(frame)

    def columns(self) -> list[str]:
        return [normalize_column(c) for c in self.frame.columns]

    def chunks(self, chunk_rows: int = 50_000) -> Iterator[Chunk]:
        names = self.columns()
        for start in range(0, len(self.frame), chunk_rows):
            part = self.frame.iloc[start : start + chunk_rows].copy()
            part.columns = names
            lines = np.arange(start + 1, start + 1 + len(part), dtype=np.int64)
            yield Chunk(part.reset_index(drop=True), lines, [], start + len(part))
