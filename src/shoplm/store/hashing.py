"""Content hashes of rows: how the store tells a changed row from one it already holds.

Ingest hashes every row it stores, and the orders repository hashes an order again when an
order tool changes it, so both must compute the same digest: it lives here, below both.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"a": [1, 1], "b": ["x", "x"]})
    >>> hashes = content_hash(frame, ["a", "b"])
    >>> hashes[0] == hashes[1], len(hashes[0])
    (True, 32)
"""

from __future__ import annotations

import hashlib

import pandas as pd


def content_hash(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """A short, stable hash of the given columns of every row.

    Args:
        frame: the rows.
        columns: the columns the hash covers, in this order.

    Returns:
        One 32-character hex digest per row (same index as ``frame``).
    """
    joined = frame[columns[0]].astype(str)
    for column in columns[1:]:
        joined = joined + "\x1f" + frame[column].astype(str)
    return joined.map(lambda text: hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
