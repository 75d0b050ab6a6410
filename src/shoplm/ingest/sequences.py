"""Readers of the sequence format of the sequential-recommendation literature (S3-Rec / ICLRec files).

``sequences.txt`` holds one user a line (``user_id item_id item_id ...``, in time order);
``items.tsv`` is tab-separated with a header, the item id first and the item text last. These
readers touch no store, so benchmarks read the files with them directly; the importer
(:mod:`shoplm.ingest.importers.amazon_seq`) feeds them into the store.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sequences.txt"
    >>> _ = path.write_text("1 7 8 9" + chr(10) + "2 8 9" + chr(10))
    >>> read_sequences(path)["1"]
    ['7', '8', '9']
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shoplm.errors import InputError


def read_sequences(path: Path) -> dict[str, list[str]]:
    """``sequences.txt`` as user -> items; a malformed line raises :class:`InputError` naming it.

    Malformed: a user with no items, a non-integer id, a user on two lines. Empty lines are skipped.
    """
    if not path.is_file():
        raise InputError("no such file (expected sequences.txt: 'user item item ...' per line)", path=path)
    sequences: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise InputError("a user with no items (expected 'user item item ...')", path=path, line=number)
            if (bad := next((p for p in parts if not p.isdigit()), None)) is not None:
                # The format numbers users and items from 1; a word here means a different file.
                raise InputError(
                    f"{bad[:40]!r} is not an integer id (expected 'user item item ...')", path=path, line=number
                )
            if parts[0] in sequences:
                raise InputError(f"user {parts[0]!r} appears a second time", path=path, line=number)
            sequences[parts[0]] = parts[1:]
    if not sequences:
        raise InputError("the file holds no sequences", path=path)
    return sequences


def read_item_texts(path: Path) -> pd.DataFrame:
    """``items.tsv`` as a frame of ``item_id`` and ``title`` (first and last columns)."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    if frame.shape[1] < 2:
        raise InputError("expected at least two tab-separated columns (item id ... text)", path=path)
    return pd.DataFrame({"item_id": frame.iloc[:, 0].str.strip(), "title": frame.iloc[:, -1].str.strip()})
