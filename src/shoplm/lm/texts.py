"""The texts a language model reads for shop objects.

Example:
    >>> import pandas as pd
    >>> item_texts(pd.DataFrame({"title": ["Mug"], "brand": ["Acme"], "category": ["Kitchen > Mugs"]}))
    ['Mug | Acme | Kitchen > Mugs']
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def item_texts(catalog: pd.DataFrame) -> list[str]:
    """The text a language model reads for each item: title, brand and category.

    Kept short on purpose: encoding cost grows with length, and titles carry most of the
    meaning. The description is not included.

    Args:
        catalog: rows with ``title`` and optionally ``brand`` and ``category``.

    Returns:
        One text per row, parts joined by `` | `` (empty parts left out).
    """
    parts = [catalog["title"].fillna("").astype(str)]
    for column in ("brand", "category"):
        if column in catalog.columns:
            parts.append(catalog[column].fillna("").astype(str))
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + np.where(part != "", " | " + part, "")
    return joined.str.strip().tolist()
