"""Reading labelled texts: CSV, TSV, or ``label<space>text`` lines (``.all`` / ``.txt``).

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "intents.csv"
    >>> _ = p.write_text("utterance,intent\\nwhere is my parcel,track_order\\n")
    >>> load_labelled(p, "utterance", "intent").to_dict("records")
    [{'text': 'where is my parcel', 'label': 'track_order'}]
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from shoplm.errors import InputError

__all__ = ["LINE_SUFFIXES", "TABLE_SUFFIXES", "load_labelled", "read_label_text_lines"]

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
#: files of "label text" lines, as the sentence-classification corpora (custrev, MR, SST) ship them
LINE_SUFFIXES = {".all", ".txt"}


def read_label_text_lines(path: str | Path) -> pd.DataFrame:
    """A file of ``label<space>text`` lines as a ``text, label`` frame (blank lines skipped).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "custrev.all"
        >>> _ = p.write_text("1 works great .\\n0 broke in a week\\n")
        >>> read_label_text_lines(p)["label"].tolist()
        [1, 0]
    """
    path = Path(path)
    texts, labels = [], []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            label, _, text = line.strip().partition(" ")
            if not label:
                raise InputError("line has no label before the text", path=path, line=number)
            texts.append(text)
            labels.append(int(label) if label.lstrip("-").isdigit() else label)
    if not texts:
        raise InputError("empty file: no 'label text' lines", path=path)
    return pd.DataFrame({"text": texts, "label": labels})


def load_labelled(
    path: str | Path, text_col: str = "text", label_col: str = "label", group_col: str | None = None
) -> pd.DataFrame:
    """Labelled texts from ``path`` as a frame with columns ``text`` and ``label`` (and ``group``).

    The format follows the extension: ``.csv`` (comma), ``.tsv``/``.tab`` (tab, no quoting: review
    corpora hold bare quote characters), ``.all``/``.txt`` (``label text`` lines; the column names
    are then ignored). Missing texts become ``""``; a row without a label is an error naming
    its line. Integer labels stay integers (``0``/``1`` sentiment). ``group_col`` (e.g. a language
    column of a table) is kept as ``group``, for accuracy per group.

    Raises:
        InputError: unreadable or empty file, unknown extension, missing column, empty label.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    suffix = path.suffix.lower()
    if suffix in LINE_SUFFIXES:
        return read_label_text_lines(path)
    if suffix not in TABLE_SUFFIXES:
        known = ", ".join(sorted([*TABLE_SUFFIXES, *LINE_SUFFIXES]))
        raise InputError(f"unknown file type {suffix or '(none)'}; use one of {known}", path=path)
    sep = TABLE_SUFFIXES[suffix]
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL,
            encoding="utf-8",
            encoding_errors="replace",
        )
    except pd.errors.EmptyDataError:
        raise InputError("empty file: expected a header line and labelled rows", path=path) from None
    except pd.errors.ParserError as exc:
        raise InputError(f"cannot parse as {'TSV' if sep == chr(9) else 'CSV'}: {exc}", path=path) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in (text_col, label_col, group_col) if c and c not in frame.columns]
    if missing:
        raise InputError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; "
            f"the file has {', '.join(map(repr, frame.columns))}",
            path=path,
            field=missing[0],
        )
    if frame.empty:
        raise InputError("empty file: a header but no rows", path=path)
    labels = frame[label_col].str.strip()
    blank = labels.eq("")
    if blank.any():
        line = int(blank.to_numpy().argmax()) + 2  # +1 for the header, +1 for 1-based lines
        raise InputError(f"{int(blank.sum())} row(s) without a label", path=path, line=line, field=label_col)
    if labels.str.fullmatch(r"-?\d+").all():
        labels = labels.astype(int)
    out = pd.DataFrame({"text": frame[text_col].to_numpy(), "label": labels.to_numpy()})
    if group_col:
        out["group"] = frame[group_col].str.strip().to_numpy()
    return out
