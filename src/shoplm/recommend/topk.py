"""The positions of the highest scores of a long array, fast.

NumPy's ``argpartition`` over the 20,000 scores of a catalog takes about 0.2 ms here, and every
candidate source of every request needs one. :func:`top_positions` first bounds the answer from
below with the maxima of 256 blocks (the ``n``-th largest block maximum is at most the ``n``-th
largest score), keeps the few hundred scores at or above that bound, and selects among those:
the same answer in about a seventh of the time.

Example:
    >>> import numpy as np
    >>> top_positions(np.array([0.1, np.nan, 0.9, 0.5, -np.inf]), 2).tolist()
    [2, 3]
"""

from __future__ import annotations

import numpy as np

#: Below this many scores the plain selection is as fast.
_DIRECT = 4096
_BLOCKS = 256


def top_positions(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` highest finite scores, best first (ties: lower position first).

    Args:
        scores: one score per position; NaN and -inf mean "not a candidate".
        n: how many.

    Returns:
        int64 positions, at most ``n`` (fewer when fewer scores are finite).
    """
    if n <= 0 or len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    candidates: np.ndarray
    if len(scores) > _DIRECT and n < _BLOCKS:
        whole = (len(scores) // _BLOCKS) * _BLOCKS
        maxima = np.fmax.reduce(scores[:whole].reshape(_BLOCKS, -1), axis=1)
        if whole < len(scores):
            maxima = np.append(maxima, np.fmax.reduce(scores[whole:]))
        maxima = np.where(np.isnan(maxima), -np.inf, maxima)
        bound = np.partition(maxima, len(maxima) - n)[len(maxima) - n]
        candidates = np.flatnonzero(scores >= bound)
    else:
        candidates = np.arange(len(scores))
    values = scores[candidates]
    finite = np.isfinite(values)
    if not finite.all():
        candidates, values = candidates[finite], values[finite]
    if len(candidates) > n:
        # Everything above the n-th value, then the tied ones in position order (candidates ascend).
        nth = np.partition(values, len(values) - n)[len(values) - n]
        above = values > nth
        tied = np.flatnonzero(values == nth)[: n - int(above.sum())]
        keep = np.concatenate([np.flatnonzero(above), tied])
        candidates, values = candidates[keep], values[keep]
    order = np.lexsort((candidates, -values))
    return candidates[order].astype(np.int64, copy=False)
