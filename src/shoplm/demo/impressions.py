"""Impression logs of the demo store: which items each request showed, and which were clicked.

Every request (a page view in scene ``home``, ``search`` or ``item_detail``) shows ``K`` items in
positions ``0..K-1`` with one of ``C`` ad-copy variants (``creative``, uniform at random). The
shown items mix the user's hidden category tastes with global popularity and are ordered by a
popularity-led ranker, so the logs carry the position and selection bias of a real shop.

Clicks follow the fixed ground-truth click model (see ``GROUND_TRUTH.md``, section
``impressions``)::

    P(click) = sigmoid(w0 + a*affinity(user, item category) + b*quality(item)
                       - c*log(1 + position) + d*cos(taste(user), text(item)) + g[item, creative] + eps)

with ``eps ~ N(0, s^2)`` per impression, and an add-to-cart with probability ``P_CART`` after a
click. ``text(item)`` is a fixed embedding of the item's title that needs no language model: each
known word of the title (brand, and the catalog's words, where a Chinese word and its English
twin share one vector, as a multilingual encoder would place them close) gets a vector from a
hash-seeded generator, and the title's vector is their normalized sum. ``p_click`` (the true
probability) is written for evaluation only; ingest drops it.

Everything is drawn from ``numpy.random.default_rng([seed, 47])``, a stream separate from the
rest of the store, so adding impressions changed no other file of a seed.

Example:
    >>> from pathlib import Path
    >>> from shoplm.demo import DemoSizes, generate_demo_store
    >>> m = generate_demo_store(Path("/tmp/demo_imp"), seed=1, sizes=DemoSizes(200, 300, 5_000))
    >>> import pandas as pd
    >>> list(pd.read_parquet(m.files["impressions"]).columns)[:5]
    ['request_id', 'user_id', 'ts', 'scene', 'position']
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shoplm.demo import vocab as V

IMPRESSION_SCENES = ("home", "search", "item_detail")
SCENE_WEIGHTS = (0.5, 0.25, 0.25)
SLOTS = 8  # K: items shown per request
N_CREATIVES = 4  # C: ad-copy variants
P_CART = 0.25  # add-to-cart probability after a click
TEXT_DIM = 16  # size of the hidden title vectors and taste vectors
AFFINITY_BY_RANK = (1.0, 0.6, 0.3)  # affinity of a user's 1st, 2nd, 3rd preferred category; 0 otherwise
REQUESTS_PER_USER = 4  # default number of requests: this many per user
TRUTH_FILE = "impressions_truth.json"
_STREAM = 47


@dataclass(frozen=True)
class ClickModel:
    """The coefficients of the ground-truth click model (see the module docstring)."""

    w0: float = -3.1  # base logit (the form's constant: sets the overall CTR)
    a: float = 1.6  # category affinity
    b: float = 2.2  # item quality (0..1, Beta(4, 1.8))
    c: float = 0.75  # position: - c * log(1 + position)
    d: float = 3.0  # cos(user taste, item title vector)
    s: float = 0.3  # sd of the per-impression logit noise eps
    creative_sd: float = 0.3  # sd of the fixed (item, creative) logit effects g


CLICK_MODEL = ClickModel()

_TOKEN_RE = re.compile(r"[A-Za-z0-9]+|[\u3400-\u9fff]")


def _lexicon() -> dict[str, str]:
    """Catalog words (English lower-case and Chinese) -> concept key (the English word)."""
    pairs: list[tuple[str, str]] = [*V.ADJECTIVES, *V.COLORS]
    for c in V.CATEGORIES:
        pairs += [*c.nouns, *c.features, *c.materials, *c.sizes]
    lex: dict[str, str] = {}
    for en, zh in pairs:
        key = en.lower()
        lex[key] = key
        if zh:
            lex[zh.lower()] = key
    return lex


_LEX = _lexicon()
# Longest first; English words only as whole words ("Mat" is not inside "Material").
_LEX_RE = re.compile(
    "|".join(
        rf"(?<![A-Za-z]){re.escape(w)}(?![A-Za-z])" if w.isascii() else re.escape(w)
        for w in sorted(_LEX, key=len, reverse=True)
    ),
    re.IGNORECASE,
)


def _token_vector(key: str) -> np.ndarray:
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "little")).standard_normal(TEXT_DIM)


def title_vectors(titles: list[str]) -> np.ndarray:
    """The fixed hidden text vector of each title: unit-length rows of ``TEXT_DIM`` floats.

    Known catalog words map to one concept each (a Chinese word and its English twin share it),
    other Latin words and Chinese characters count as their own tokens.

    Example:
        >>> v = title_vectors(["Acme Wireless Earbuds", "Acme 无线耳机", "Zeta Yoga Mat"])
        >>> bool(v[0] @ v[1] > 0.99), bool(v[0] @ v[2] < 0.9)
        (True, True)
    """
    cache: dict[str, np.ndarray] = {}
    out = np.zeros((len(titles), TEXT_DIM))
    for i, title in enumerate(titles):
        keys = [_LEX[m.group(0).lower()] for m in _LEX_RE.finditer(title)]
        rest = _LEX_RE.sub(" ", title)
        keys += [t.lower() for t in _TOKEN_RE.findall(rest)]
        for key in keys or [title]:
            if key not in cache:
                cache[key] = _token_vector(key)
            out[i] += cache[key]
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def write_impressions(
    b: Any, n_requests: int | None, hour_weights: np.ndarray, model: ClickModel = CLICK_MODEL
) -> tuple[Path, int]:
    """Draw the impression log of the builder's store; write ``impressions.parquet`` and its truth file.

    Args:
        b: the demo generator's builder after its items, users and events steps (reads its hidden state only).
        n_requests: requests to draw; None for ``REQUESTS_PER_USER`` per user.
        hour_weights: the relative traffic of each hour of the day (the events' profile).
        model: the click model's coefficients.

    Returns:
        The parquet path and its row count.
    """
    rng = np.random.default_rng([b.seed, _STREAM])
    n_users, n_items, nc = b.sizes.n_users, b.sizes.n_items, len(b.cats)
    R = int(n_requests if n_requests is not None else REQUESTS_PER_USER * n_users)

    # Hidden per-user and per-(item, creative) state.
    taste = rng.standard_normal((n_users, TEXT_DIM))
    taste /= np.linalg.norm(taste, axis=1, keepdims=True)
    creative_effect = rng.normal(0.0, model.creative_sd, (n_items, N_CREATIVES))
    text = title_vectors(list(b.item_title))
    affinity = np.zeros((n_users, nc))
    for rank, value in enumerate(AFFINITY_BY_RANK):
        has = b.pref[:, rank] >= 0
        affinity[np.flatnonzero(has), b.pref[has, rank]] = value

    # Requests: users by activity (bots and one-order fraud accounts browse no shop pages here).
    w = b.activity * (b.role != "bot") * (b.role != "fraud_account")
    r_user = np.sort(rng.choice(n_users, size=R, p=w / w.sum()))
    lo, hi = b.user_lo[r_user], b.user_hi[r_user]

    day = lo // 86_400_000 + (rng.random(R) * np.maximum((hi - lo) // 86_400_000, 1)).astype(np.int64)
    hour = rng.choice(24, size=R, p=hour_weights / hour_weights.sum())
    r_ts = np.clip(day * 86_400_000 + hour * 3_600_000 + rng.integers(0, 3_600_000, R), lo, hi - 60_000)
    r_scene = rng.choice(len(IMPRESSION_SCENES), size=R, p=SCENE_WEIGHTS)

    # Anchor category: a preferred one (by affinity) mostly, else the catalog's mix.
    aff_p = affinity[r_user] / affinity[r_user].sum(1, keepdims=True)
    pref_cat = (rng.random(R)[:, None] > np.cumsum(aff_p, axis=1)).sum(1).clip(0, nc - 1)
    anchor = np.where(rng.random(R) < 0.7, pref_cat, rng.choice(nc, size=R, p=b.cat_share))

    # Candidates: anchor-category items (search and item pages mostly; home half) or popular ones.
    by_cat = [np.flatnonzero(b.item_cat == c) for c in range(nc)]
    cat_cum = [np.cumsum(b.item_pop[m]) / b.item_pop[m].sum() for m in by_cat]
    glob_cum = np.cumsum(b.item_pop) / b.item_pop.sum()
    draws = 3 * SLOTS
    in_anchor = rng.random((R, draws)) < np.where(r_scene == 0, 0.5, 0.8)[:, None]
    u = rng.random((R, draws))
    cand = np.minimum(np.searchsorted(glob_cum, u), n_items - 1)
    for c in range(nc):
        m = in_anchor & (anchor[:, None] == c)
        if m.any():
            cand[m] = by_cat[c][np.minimum(np.searchsorted(cat_cum[c], u[m]), len(by_cat[c]) - 1)]
    shown = np.empty((R, SLOTS), dtype=np.int64)
    ranker_noise = rng.gumbel(size=(R, draws))
    for r in range(R):
        seen = list(dict.fromkeys(cand[r].tolist()))
        while len(seen) < SLOTS:  # a tiny catalog corner: top up with any unseen items
            extra = int(rng.integers(n_items))
            if extra not in seen:
                seen.append(extra)
        items = np.array(seen[:draws])
        score = np.log(b.item_pop[items]) + ranker_noise[r, : len(items)]  # popularity-led ranker
        shown[r] = items[np.argsort(-score, kind="stable")[:SLOTS]]

    # Impressions and the click model.
    imp_req = np.repeat(np.arange(R), SLOTS)
    pos = np.tile(np.arange(SLOTS), R)
    item = shown.ravel()
    user = r_user[imp_req]
    creative = rng.integers(0, N_CREATIVES, R * SLOTS)
    cos = np.einsum("ij,ij->i", taste[user], text[item])
    logit = (
        model.w0
        + model.a * affinity[user, b.item_cat[item]]
        + model.b * b.item_quality[item]
        - model.c * np.log1p(pos)
        + model.d * cos
        + creative_effect[item, creative]
        + rng.normal(0.0, model.s, R * SLOTS)
    )
    p_click = _sigmoid(logit)
    clicked = rng.random(R * SLOTS) < p_click
    carted = clicked & (rng.random(R * SLOTS) < P_CART)

    order = np.argsort(r_ts, kind="stable")  # request ids follow time
    rank = np.empty(R, dtype=np.int64)
    rank[order] = np.arange(R)
    width = max(7, len(str(R)))
    req_ids = np.array([f"Q{i + 1:0{width}d}" for i in range(R)], dtype=object)[rank]
    o = np.lexsort((pos, rank[imp_req]))
    table = pa.table(
        {
            "request_id": pa.array(req_ids[imp_req][o], pa.string()),
            "user_id": pa.array(b.user_ids[user][o], pa.string()),
            "ts": pa.array(r_ts[imp_req][o].astype(np.int64), pa.int64()),
            "scene": pa.array(np.array(IMPRESSION_SCENES, dtype=object)[r_scene[imp_req]][o], pa.string()),
            "position": pa.array(pos[o].astype(np.int64), pa.int64()),
            "item_id": pa.array(b.item_ids[item][o], pa.string()),
            "clicked": pa.array(clicked[o].astype(np.int64), pa.int64()),
            "added_to_cart": pa.array(carted[o].astype(np.int64), pa.int64()),
            "creative": pa.array(creative[o].astype(np.int64), pa.int64()),
            "p_click": pa.array(np.round(p_click[o], 6), pa.float64()),
        }
    )
    path = b.out / "impressions.parquet"
    pq.write_table(table, path, compression="zstd")
    truth = {
        "click_model": asdict(model),
        "slots": SLOTS,
        "n_creatives": N_CREATIVES,
        "p_cart_given_click": P_CART,
        "affinity_by_rank": list(AFFINITY_BY_RANK),
        "oracle_auc": round(oracle_auc(clicked, p_click), 4),
        "ctr": round(float(clicked.mean()), 4),
        "creative_effects": {
            str(b.item_ids[i]): [round(float(x), 4) for x in creative_effect[i]] for i in range(n_items)
        },
    }
    (b.out / TRUTH_FILE).write_text(json.dumps(truth, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    return path, len(item)


def oracle_auc(clicked: np.ndarray, p_click: np.ndarray) -> float:
    """AUC of the true probabilities against the clicks (Mann-Whitney, ties counted half).

    Example:
        >>> oracle_auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8]))
        1.0
    """
    y = np.asarray(clicked, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Average ranks of tied scores, in numpy (importing scipy.stats costs the generator 2 s).
    _, inverse, counts = np.unique(np.asarray(p_click), return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
