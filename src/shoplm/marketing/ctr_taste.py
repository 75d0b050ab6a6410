"""A user's taste for item titles, learned from click logs: title-token embeddings + per-user ridge to date.

A shopper who clicks titles of one kind clicks more of that kind. Each title is a TF-IDF vector over
its words (Latin words; Chinese characters and character bigrams), fitted on the catalog titles. A
small bilinear click model, ``logit = item bias + user bias + position bias + u_user · (x_item A)``,
learns a low-dimensional title embedding ``z = x A`` shared by every user (the users' tastes live in
a few directions of title space, so the shared embedding is learned from all of them, where each
user alone has too few clicks to weigh hundreds of words).

The feature of an impression is then the user's taste *to date* in that space: a ridge regression of
their click residuals (click − the position's CTR) on the ``z`` of the items shown to them strictly
before it, dotted with the candidate's ``z``. The embedding is cross-fitted: users are split in two
halves by a hash of their id, and a user's features always use the embedding learned on the other
half, so no impression's own label reaches its feature through the embedding either.

Example:
    >>> tokens = title_tokens("Acme 无线耳机 Blue")
    >>> tokens[:2], "无线" in tokens
    (['acme', 'blue'], True)
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

_WORD_RE = re.compile(r"[A-Za-z0-9]+|[\u3400-\u9fff]+")
MAX_POSITION = 15


def title_tokens(title: str) -> list[str]:
    """Latin words (lower-cased), then Chinese characters and character bigrams, of one title."""
    latin, han = [], []
    for match in _WORD_RE.finditer(title or ""):
        word = match.group(0).lower()
        if word.isascii():
            latin.append(word)
        else:
            han += [*word, *(word[i : i + 2] for i in range(len(word) - 1))]
    return latin + han


def title_matrix(titles: Sequence[str]) -> np.ndarray:
    """Dense L2-normalised TF-IDF rows of the titles (vocabulary fitted on these titles)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=title_tokens, sublinear_tf=True, dtype=np.float32)
    return vectorizer.fit_transform([str(t) for t in titles]).toarray()


def user_folds(user_ids: np.ndarray) -> np.ndarray:
    """0 or 1 per user id: a stable hash (CRC-32, cheap for the one id of a live request), the same everywhere."""
    return np.fromiter((zlib.crc32(str(u).encode("utf-8")) & 1 for u in user_ids), dtype=np.int64, count=len(user_ids))


def fit_title_embedding(
    titles: np.ndarray,
    item_rows: np.ndarray,
    user_codes: np.ndarray,
    positions: np.ndarray,
    clicked: np.ndarray,
    *,
    dims: int = 16,
    epochs: int = 150,
    seed: int = 0,
) -> np.ndarray:
    """Learn the title embedding ``x A`` of every catalog row from logged clicks (full-batch Adam).

    Args:
        titles: the TF-IDF matrix of the catalog (:func:`title_matrix`).
        item_rows, user_codes, positions, clicked: one entry per logged impression (known items only).
        dims: embedding size.
        epochs: full-batch steps.
        seed: initial weights.

    Returns:
        The embedding of every catalog row (``len(titles) × dims``).
    """
    import torch

    n_users = int(user_codes.max()) + 1 if len(user_codes) else 1
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(titles, dtype=torch.float32)
    users = torch.nn.Parameter(0.1 * torch.randn(n_users, dims, generator=gen))
    words = torch.nn.Parameter(0.1 * torch.randn(x.shape[1], dims, generator=gen))
    item_bias = torch.nn.Parameter(torch.zeros(len(titles)))
    user_bias = torch.nn.Parameter(torch.zeros(n_users))
    pos_bias = torch.nn.Parameter(torch.zeros(MAX_POSITION + 1))
    it, us = torch.as_tensor(item_rows), torch.as_tensor(user_codes)
    ps = torch.as_tensor(np.minimum(positions, MAX_POSITION))
    y = torch.as_tensor(clicked, dtype=torch.float32)
    optimizer = torch.optim.Adam([users, words, item_bias, user_bias, pos_bias], lr=0.05)
    for _ in range(epochs):
        optimizer.zero_grad()
        z = x @ words
        logit = item_bias[it] + user_bias[us] + pos_bias[ps] + (users[us] * z[it]).sum(1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y)
        loss = loss + 1e-4 * words.pow(2).sum() + 1e-3 * users.pow(2).mean()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return (x @ words).numpy().astype(np.float32)


def taste_to_date(
    user_keys: np.ndarray, ts: np.ndarray, z: np.ndarray, residual: np.ndarray, ridge: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each impression's user taste from that user's strictly earlier impressions (ridge regression).

    Args:
        user_keys: user of each impression (any hashable codes).
        ts: impression times.
        z: title embedding of each impression's item (rows × dims).
        residual: click − expected click of each impression.
        ridge: the ridge penalty (prior strength towards no taste).

    Returns:
        ``(taste · z, taste)`` per impression: the score and the taste vector to date.
    """
    dims = z.shape[1]
    score, taste = np.zeros(len(ts)), np.zeros((len(ts), dims))
    eye = ridge * np.eye(dims)
    for idx in pd.Series(np.arange(len(ts))).groupby(user_keys, sort=False).indices.values():
        idx = idx[np.argsort(ts[idx], kind="stable")]
        zu, tu = z[idx].astype(np.float64), ts[idx]
        gram = np.concatenate([np.zeros((1, dims, dims)), np.cumsum(zu[:, :, None] * zu[:, None, :], axis=0)])
        moment = np.concatenate([np.zeros((1, dims)), np.cumsum(zu * residual[idx, None], axis=0)])
        before = np.searchsorted(tu, tu, side="left")  # impressions strictly earlier (same request excluded)
        w = np.linalg.solve(gram[before] + eye, moment[before][:, :, None])[:, :, 0]
        score[idx], taste[idx] = np.einsum("ij,ij->i", w, zu), w
    return score, taste
