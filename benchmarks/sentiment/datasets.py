"""Readers of the shared review-sentiment files, as frames with ``text`` and ``label`` (1 positive, 0 negative).

ChnSentiCorp's TSVs carry bare quotes, so they are read without quote processing (pandas'
default CSV quoting loses 454 of the 9,600 training rows).

``online_shopping_10_cats.csv`` holds most of ChnSentiCorp's texts, its dev and test sets
included: it is never used to train for the ChnSentiCorp benchmark. As a benchmark of its own
it is split by a hash of the text after exact duplicates are dropped, so one text is never on
both sides.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pandas as pd

#: share of the de-duplicated online_shopping_10_cats texts in its test split (by text hash)
SHOPPING10_TEST_SHARE = 0.2


def read_chnsenticorp(data: Path, split: str) -> pd.DataFrame:
    frame = pd.read_csv(
        Path(data) / f"reviews-zh/chnsenticorp_{split}.tsv", sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False
    )
    return pd.DataFrame({"text": frame["text_a"].astype(str), "label": frame["label"].astype(int)})


def read_custrev(data: Path) -> pd.DataFrame:
    lines = (Path(data) / "reviews-en/custrev.all").read_text(encoding="utf-8", errors="replace").splitlines()
    rows = [line.split(" ", 1) for line in lines if line.strip()]
    return pd.DataFrame({"text": [r[1] if len(r) > 1 else "" for r in rows], "label": [int(r[0]) for r in rows]})


def text_bucket(text: str) -> float:
    """A number in [0, 1) fixed by the text alone (SHA-1 of its UTF-8 bytes)."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def read_shopping10(data: Path, per_cat: int | None = None) -> pd.DataFrame:
    """De-duplicated ``online_shopping_10_cats`` with ``cat`` and ``split`` (train/test by text hash).

    Args:
        data: the shared data folder.
        per_cat: keep at most this many training texts per category, and half as many test
            texts (the first by hash: a fixed, uniform sample); None keeps all.
    """
    raw = pd.read_csv(Path(data) / "reviews-zh/online_shopping_10_cats.csv", keep_default_na=False)
    frame = pd.DataFrame({"text": raw["review"].astype(str).str.strip(), "label": raw["label"].astype(int)})
    frame["cat"] = raw["cat"].astype(str)
    frame = frame[frame["text"] != ""]
    # An exact duplicate text with two labels is ambiguous: drop every copy of it.
    labels_per_text = frame.groupby("text")["label"].nunique()
    frame = frame[frame["text"].map(labels_per_text) == 1].drop_duplicates("text")
    frame["bucket"] = frame["text"].map(text_bucket)
    frame["split"] = ["test" if b < SHOPPING10_TEST_SHARE else "train" for b in frame["bucket"]]
    if per_cat is not None:
        frame = frame.sort_values("bucket", kind="stable")
        parts = [group[group["split"] == "train"].head(per_cat) for _, group in frame.groupby("cat", sort=True)] + [
            group[group["split"] == "test"].head(per_cat // 2) for _, group in frame.groupby("cat", sort=True)
        ]
        frame = pd.concat(parts)
    return frame.drop(columns="bucket").reset_index(drop=True)
