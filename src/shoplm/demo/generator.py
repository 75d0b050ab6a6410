"""A deterministic, bilingual demo store: catalog, users, behaviour, orders, reviews, chats, policies.

The files are written in exactly the input formats of :mod:`shoplm.ingest.schemas`, with raw
(realistic, invented) PII, so they go through the normal ingestion path. A hidden ground truth
(user tastes, churners, fraud, bots, promotions, item quality, review sentiment) is written next
to them; ``GROUND_TRUTH.md`` documents every field.

Everything is drawn from one ``numpy.random.default_rng(seed)`` and the end date is fixed, so the
same seed and sizes give byte-identical files. The event simulation is vectorised: sessions,
view slots and funnel steps are numpy arrays, never per-event Python objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shoplm.demo import vocab as V
from shoplm.demo.impressions import write_impressions
from shoplm.demo.policies import POLICIES

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MIN_MS = 60_000
CURRENCY = "CNY"
# A fixed end (not "now") keeps the output byte-identical; it is in the past, as ingest requires.
DEFAULT_END = datetime(2026, 6, 30, tzinfo=UTC)
BANDS = ("budget", "mid", "premium")
EVENT_TYPE_NAMES = ("view", "click", "add_to_cart", "purchase", "search", "rate")
SCENES = ("home", "item_detail", "cart", "search")
ORDER_STATUS_NAMES = ("pending", "paid", "shipped", "delivered", "cancelled", "refunded", "returned")
# Used only to size the fraud share before the events exist; measured on full-size runs.
_ORDERS_PER_EVENT = 0.024
# (name, start and end as fractions of the window, session traffic multiplier)
_PROMOS = (("Spring Festival Sale", 0.18, 0.23), ("Spring Sale", 0.52, 0.56), ("Mid-year Sale 618", 0.86, 0.93))
PROMO_TRAFFIC = 1.5  # sessions per day during a promotion, relative to an ordinary day
PROMO_ANCHOR_P = 0.35  # share of promotion-time sessions that start in a promoted category
PROMO_BUY_BOOST = 0.2  # added to the add-to-cart -> purchase probability of promoted items
_HOUR_W = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.4, 2, 2.2, 2.3, 2.5, 2.8, 2.5, 2.3, 2.3, 2.4, 2.6, 3, 3.6, 4.2, 4.4, 3.6, 2.2]
)


@dataclass
class DemoSizes:
    """How big the demo store is. Defaults are the full demo; tests use a few hundred rows.

    Example:
        >>> DemoSizes(n_items=200, n_users=300, n_events=5_000).n_categories
        20
    """

    n_items: int = 2000
    n_users: int = 5000
    n_events: int = 200_000
    n_categories: int = 20
    months: int = 6
    #: impression-log requests (``impressions.parquet``); None: 4 per user (see shoplm.demo.impressions)
    n_requests: int | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` for sizes the generator cannot honour."""
        if not 1 <= self.n_categories <= len(V.CATEGORIES):
            raise ValueError(f"n_categories must be 1..{len(V.CATEGORIES)}, got {self.n_categories}")
        if self.n_items < 3 * self.n_categories:
            raise ValueError(f"n_items must be at least 3 per category ({3 * self.n_categories})")
        if self.n_users < 50 or self.n_events < 500 or self.months < 3:
            raise ValueError("need at least 50 users, 500 events and 3 months")


@dataclass
class DemoManifest:
    """What :func:`generate_demo_store` wrote.

    ``files`` maps each input kind (items, users, events, orders, reviews, conversations) to its
    file; ``counts`` holds row counts per kind (orders: order lines) plus ``order_ids``.
    """

    out_dir: Path
    files: dict[str, Path]
    policies_dir: Path
    ground_truth: Path
    counts: dict[str, int]
    seed: int
    start: datetime
    end: datetime
    policy_files: list[Path] = field(default_factory=list)


def generate_demo_store(
    out_dir: Path,
    *,
    seed: int = 0,
    sizes: DemoSizes | None = None,
    end: datetime | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> DemoManifest:
    """Write a complete demo shop into ``out_dir`` and return what was written.

    The same ``seed``, ``sizes`` and ``end`` always give byte-identical files.

    Example:
        >>> from pathlib import Path
        >>> m = generate_demo_store(Path("/tmp/demo"), seed=1, sizes=DemoSizes(200, 300, 5_000))
        >>> sorted(m.files)
        ['conversations', 'events', 'impressions', 'items', 'orders', 'reviews', 'users']
    """
    sizes = sizes or DemoSizes()
    sizes.validate()
    end = end or DEFAULT_END
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return _Builder(out_dir, seed, sizes, end, progress or (lambda _s, _f: None)).run()


# ---------------------------------------------------------------------------------------------
# helpers


def _choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """Draw ``size`` indices with probability proportional to ``weights``."""
    cum = np.cumsum(weights, dtype=np.float64)
    idx = np.searchsorted(cum, rng.random(size) * cum[-1], side="right")
    return np.minimum(idx, len(weights) - 1)


def _segments(keys: np.ndarray, weights: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Build a table to draw, for many keys at once, a member weighted by ``weights``.

    Members are sorted by key; segment ``k`` holds cumulative values in ``(k, k+1]``, so a draw of
    ``k + u`` (u uniform in [0, 1)) lands in segment ``k``. Returns (members sorted, cumulative).
    """
    order = np.argsort(keys, kind="stable")
    k, w = keys[order], weights[order].astype(np.float64)
    totals = np.bincount(k, weights=w, minlength=n_keys)
    cum = np.cumsum(w)
    starts = np.r_[0, np.cumsum(np.bincount(k, minlength=n_keys))[:-1]]
    before = np.r_[0.0, cum][starts]  # cumulative weight before each segment
    local = (cum - before[k]) / totals[k]
    local[np.r_[k[1:] != k[:-1], True]] = 1.0  # exact segment ends despite rounding
    return order, k + local


def _draw(rng: np.random.Generator, table: tuple[np.ndarray, np.ndarray], keys: np.ndarray) -> np.ndarray:
    members, cum = table
    idx = np.searchsorted(cum, keys + rng.random(len(keys)), side="right")
    return members[np.minimum(idx, len(members) - 1)]


def _iso(ms: np.ndarray) -> np.ndarray:
    """Epoch milliseconds -> ISO-8601 UTC strings like ``2026-03-01T12:00:00Z``."""
    return np.char.add(np.datetime_as_string(np.asarray(ms, dtype="int64").astype("datetime64[ms]"), unit="s"), "Z")


def _ids(prefix: str, n: int, width: int) -> list[str]:
    width = max(width, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def _pick(rng: np.random.Generator, seq: tuple[Any, ...] | list[Any]) -> Any:
    return seq[int(rng.integers(len(seq)))]


# ---------------------------------------------------------------------------------------------


class _Builder:
    """Builds the store step by step; each step adds numpy arrays to ``self``."""

    def __init__(
        self, out: Path, seed: int, sizes: DemoSizes, end: datetime, progress: Callable[[str, float], None]
    ) -> None:
        self.out, self.seed, self.sizes, self.progress = out, seed, sizes, progress
        self.rng = np.random.default_rng(seed)
        self.end_ms = int(end.timestamp() * 1000)
        self.n_days = round(sizes.months * 30.44)
        self.start_ms = self.end_ms - self.n_days * DAY_MS
        self.end, self.start = end, datetime.fromtimestamp(self.start_ms / 1000, tz=UTC)
        self.cats = V.CATEGORIES[: sizes.n_categories]
        self.churn_cutoff_ms = self.end_ms - 60 * DAY_MS

    def run(self) -> DemoManifest:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("items", self._items),
            ("users", self._users),
            ("events", self._events),
            ("orders", self._orders),
            ("reviews", self._reviews),
            ("rate_events", self._rate_events),
            ("opinion_spikes", self._opinion_spikes),
            ("conversations", self._conversations),
            ("write", self._write),
        ]
        for i, (name, fn) in enumerate(steps):
            self.progress(name, i / len(steps))
            fn()
        self.progress("done", 1.0)
        return self.manifest

    # -- catalog -------------------------------------------------------------------------------
    def _items(self) -> None:
        rng, n, nc = self.rng, self.sizes.n_items, len(self.cats)
        self.cat_share = rng.dirichlet(np.full(nc, 6.0))
        counts = 3 + rng.multinomial(n - 3 * nc, self.cat_share)
        cat = rng.permutation(np.repeat(np.arange(nc), counts))
        self.item_cat = cat
        self.item_ids = np.array(_ids("I", n, 5), dtype=object)
        self.item_lang = np.where(rng.random(n) < 0.5, "zh", "en")
        n_brands = np.array([len(c.brands) for c in self.cats])
        self.max_brands = int(n_brands.max())
        self.item_brand = (rng.random(n) * n_brands[cat]).astype(np.int64)
        lo = np.log([c.price[0] for c in self.cats])[cat]
        hi = np.log([c.price[1] for c in self.cats])[cat]
        raw = np.exp(np.clip(rng.normal((lo + hi) / 2, (hi - lo) / 5), lo, hi))
        # Shop-style prices: 39.9, 199, 1299 ...
        self.item_price = np.where(raw < 100, np.floor(raw) + 0.9, np.maximum(np.round(raw / 10) * 10 - 1, 99))
        # Price band = price tercile within the category (every band non-empty: >= 3 items each).
        rank = np.empty(n, dtype=np.int64)
        order = np.lexsort((self.item_price, cat))
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        rank[order] = np.arange(n) - np.repeat(starts, counts)
        self.item_band = (3 * rank // counts[cat]).astype(np.int64)
        self.item_stock = np.where(rng.random(n) < 0.07, 0, np.maximum(1, np.round(np.exp(rng.normal(3.5, 1.0, n)))))
        self.item_stock = self.item_stock.astype(np.int64)
        self.item_quality = rng.beta(4.0, 1.8, n)
        # Long-tailed popularity: Zipf over a random global rank, nudged by quality.
        self.item_pop = (1.0 / (rng.permutation(n) + 1.0) ** 0.9) * (0.5 + self.item_quality)

        titles, descs, colors, materials, sizes_, nouns = [], [], [], [], [], []
        for i in range(n):
            c = self.cats[cat[i]]
            zh = int(self.item_lang[i] == "zh")
            brand = c.brands[self.item_brand[i]]
            noun = _pick(rng, c.nouns)[zh]
            adj = _pick(rng, V.ADJECTIVES)[zh]
            feat = _pick(rng, c.features)[zh]
            color = _pick(rng, V.COLORS)[zh] if c.has_color else ""
            mat = _pick(rng, c.materials)[zh] if c.materials else ""
            size = _pick(rng, c.sizes)[zh] if c.sizes else ""
            use = _pick(rng, V.USES)[zh]
            extra = [x for x in (color, size) if x]
            if zh:
                title = f"{brand} {adj}{feat}{noun}" + (f" {' '.join(extra)}" if extra else "")
                tmpl = V.DESC_ZH
            else:
                title = f"{brand} {adj} {feat} {noun}" + (f" - {', '.join(extra)}" if extra else "")
                tmpl = V.DESC_EN
            avail = [t for t in tmpl if mat or "{material}" not in t]
            picks = np.sort(rng.choice(len(avail), size=int(rng.integers(1, 4)), replace=False))
            sentences = [avail[j] for j in picks]
            sep = "" if zh else " "
            desc = sep.join(s.format(brand=brand, noun=noun, feature=feat, material=mat, use=use) for s in sentences)
            titles.append(title)
            descs.append(desc or title)
            colors.append(color)
            materials.append(mat)
            sizes_.append(size)
            nouns.append(noun)
        self.item_title, self.item_noun = titles, nouns
        self.items_df = pd.DataFrame(
            {
                "item_id": self.item_ids,
                "title": titles,
                "description": descs,
                "category": [self.cats[c].path for c in cat],
                "brand": [self.cats[cat[i]].brands[self.item_brand[i]] for i in range(n)],
                "price": self.item_price,
                "currency": CURRENCY,
                "stock": self.item_stock,
                "language": self.item_lang,
                "color": colors,
                "material": materials,
                "size": sizes_,
            }
        )
        # Draw tables: (category, band) and (category, brand) segments weighted by popularity.
        self.cb_table = _segments(cat * 3 + self.item_band, self.item_pop, nc * 3)
        self.brand_table = _segments(cat * self.max_brands + self.item_brand, self.item_pop, nc * self.max_brands)

    # -- users ---------------------------------------------------------------------------------
    def _users(self) -> None:
        rng, n, nc = self.rng, self.sizes.n_users, len(self.cats)
        self.user_ids = np.array(_ids("U", n, 5), dtype=object)
        codes = [c for c, _ in V.COUNTRIES]
        self.user_country = np.array(codes, dtype=object)[_choice(rng, np.array([w for _, w in V.COUNTRIES]), n)]
        cn = self.user_country == "CN"
        self.user_lang = np.where(rng.random(n) < np.where(cn, 0.95, 0.12), "zh", "en")
        old = rng.random(n) < 0.72
        span = self.end_ms - self.start_ms
        self.user_signup = np.where(
            old,
            self.start_ms - rng.integers(DAY_MS, 730 * DAY_MS, n),
            self.start_ms + (rng.random(n) * 0.85 * span).astype(np.int64),
        ).astype(np.int64)
        # Tastes: 1-3 preferred categories (Gumbel top-k, weighted by category share), a price band
        # and a favourite brand inside the first preferred category.
        self.n_pref = rng.choice([1, 2, 3], size=n, p=[0.35, 0.45, 0.2])
        keys = np.log(self.cat_share)[None, :] + rng.gumbel(size=(n, nc))
        top = np.argsort(-keys, axis=1)[:, :3]
        self.pref = np.where(np.arange(3)[None, :] < self.n_pref[:, None], top, -1)
        self.user_band = rng.choice(3, size=n, p=[0.35, 0.45, 0.2])
        first = self.pref[:, 0]
        starts = np.r_[0, np.cumsum(np.bincount(self.item_cat, minlength=nc))[:-1]]
        by_cat = np.argsort(self.item_cat, kind="stable")
        cnt = np.bincount(self.item_cat, minlength=nc)
        some_item = by_cat[starts[first] + (rng.random(n) * cnt[first]).astype(np.int64)]
        self.fav_brand = self.item_brand[some_item]
        self.activity = rng.lognormal(0.0, 0.8, n)

        # Roles. Fraud accounts are fresh sign-ups with one fraudulent session and nothing else.
        est_orders = self.sizes.n_events * _ORDERS_PER_EVENT
        self.n_fraud = max(2, round(0.015 * est_orders))
        n_fraud_new = int(np.ceil(0.6 * self.n_fraud))
        perm = rng.permutation(n)
        self.fraud_new_users = np.sort(perm[:n_fraud_new])
        rest = perm[n_fraud_new:]
        rest_old = rest[old[rest]]
        n_churn = max(2, round(0.05 * n))
        self.churners = np.sort(rest_old[:n_churn])
        n_bots = max(1, round(0.002 * n))
        self.bots = np.sort(rest_old[n_churn : n_churn + n_bots])
        self.takeover_pool = rest_old[n_churn + n_bots :]
        self.role = np.full(n, "normal", dtype=object)
        self.role[self.churners] = "churner"
        self.role[self.bots] = "bot"
        self.role[self.fraud_new_users] = "fraud_account"
        # Churners stop 60-90 days before the end; everyone else may be active up to the end.
        self.user_hi = np.full(n, self.end_ms - 3 * HOUR_MS, dtype=np.int64)
        self.user_hi[self.churners] = self.churn_cutoff_ms - rng.integers(0, 30, len(self.churners)) * DAY_MS
        self.user_lo = np.maximum(self.user_signup + 10 * MIN_MS, self.start_ms)
        self.activity[self.churners] *= 2.0  # "active early"

        self.user_email, self.user_phone = [], []
        for i in range(n):
            is_cn = self.user_country[i] == "CN"
            name = _pick(rng, V.NAMES_CN if is_cn else V.NAMES_INTL)
            domain = _pick(rng, V.EMAIL_DOMAINS_CN if is_cn else V.EMAIL_DOMAINS_INTL)
            style = int(rng.integers(3))
            num = int(rng.integers(1, 9999))
            local = (f"{name}{num}", f"{name}.{num}", f"{name}_{1970 + num % 40}")[style]
            if is_cn and rng.random() < 0.3:
                local = str(int(rng.integers(10_000_000, 2_000_000_000)))  # QQ-number style
            self.user_email.append(f"{local}@{domain}")
            self.user_phone.append("" if rng.random() < 0.08 else _phone(rng, self.user_country[i]))
        self.user_address = [_address(rng, self.user_country[i]) for i in range(n)]

    # -- events --------------------------------------------------------------------------------
    def _day_weights(self) -> np.ndarray:
        days = np.arange(self.n_days)
        weekday = (datetime.fromtimestamp(self.start_ms / 1000, tz=UTC).weekday() + days) % 7
        w = np.where(weekday >= 5, 1.35, 1.0) * (1 + 0.15 * days / self.n_days)
        self.promos = []
        nc = len(self.cats)
        self.day_promo = np.full(self.n_days, -1)
        for p, (name, a, b) in enumerate(_PROMOS):
            d0, d1 = int(a * self.n_days), max(int(b * self.n_days), int(a * self.n_days) + 2)
            k = int(self.rng.integers(2, 4))
            cats = np.sort(self.rng.choice(nc, size=min(k, nc), replace=False))
            self.promos.append({"name": name, "d0": d0, "d1": d1, "cats": cats})
            w[d0:d1] *= PROMO_TRAFFIC
            self.day_promo[d0:d1] = p
        self.promo_cat = np.zeros((len(self.promos) + 1, nc), dtype=bool)  # row -1 = no promotion
        for p, pr in enumerate(self.promos):
            self.promo_cat[p, pr["cats"]] = True
        return w

    def _events(self) -> None:
        rng, sz = self.rng, self.sizes
        n_users, n_items = sz.n_users, sz.n_items
        day_w = self._day_weights()
        day_cdf = np.r_[0.0, np.cumsum(day_w)]

        # Budget: bots, fraud sessions and rate events are planned first; normal sessions fill the rest.
        bot_user = np.repeat(self.bots, rng.integers(1, 3, len(self.bots)))
        bot_len = rng.integers(50, 111, len(bot_user))
        self.n_rate_target = round(0.004 * sz.n_events)
        fraud_lines = np.where(rng.random(self.n_fraud) < 0.75, 1, 2)
        budget = sz.n_events - int(bot_len.sum()) - int(4 * fraud_lines.sum()) - self.n_rate_target

        # ---- normal sessions (15% over-drawn, trimmed to the budget below)
        lo_day = (self.user_lo - self.start_ms) // DAY_MS
        hi_day = np.maximum((self.user_hi - self.start_ms + DAY_MS - 1) // DAY_MS, lo_day + 1)  # exclusive
        span = (day_cdf[hi_day] - day_cdf[lo_day]) / day_cdf[-1]
        w = self.activity * span
        w[self.fraud_new_users] = 0.0
        n_s0 = int(budget / 6.3 * 1.15)
        n_sess = rng.poisson(n_s0 * w / w.sum())
        n_sess[self.churners] = np.maximum(n_sess[self.churners], 4)
        s_user = np.repeat(np.arange(n_users), n_sess)
        S = len(s_user)
        u = day_cdf[lo_day[s_user]] + rng.random(S) * (day_cdf[hi_day[s_user]] - day_cdf[lo_day[s_user]])
        s_day = np.clip(np.searchsorted(day_cdf, u, side="right") - 1, lo_day[s_user], hi_day[s_user] - 1)
        s_start = self.start_ms + s_day * DAY_MS + _choice(rng, _HOUR_W, S) * HOUR_MS + rng.integers(0, HOUR_MS, S)
        s_start = np.clip(s_start, self.user_lo[s_user], self.user_hi[s_user] - HOUR_MS)
        s_promo = self.day_promo[np.clip((s_start - self.start_ms) // DAY_MS, 0, self.n_days - 1)]
        s_search = rng.random(S) < 0.3
        s_len = np.minimum(rng.geometric(0.25, S), 20)

        # Anchor category: mostly a preferred one; during promotions often a promoted one.
        pw = np.where(np.arange(3)[None, :] < self.n_pref[:, None], np.array([0.55, 0.3, 0.15]), 0.0)
        pcum = np.cumsum(pw / pw.sum(1, keepdims=True), axis=1)

        def pref_draw(users: np.ndarray) -> np.ndarray:
            j = (rng.random(len(users))[:, None] > pcum[users]).sum(1)
            # clip: float round-off must never step past the user's last preference (-1 padding)
            return self.pref[users, np.minimum(j, self.n_pref[users] - 1)]

        anchor = np.where(rng.random(S) < 0.8, pref_draw(s_user), _choice(rng, self.cat_share, S))
        in_promo = s_promo >= 0
        pcats = np.zeros((len(self.promos) + 1, 3), dtype=np.int64)  # padded; last row = no promotion
        pn = np.ones(len(self.promos) + 1, dtype=np.int64)
        for i, pr in enumerate(self.promos):
            pcats[i, : len(pr["cats"])], pn[i] = pr["cats"], len(pr["cats"])
        promo_pick = pcats[s_promo, (rng.random(S) * pn[s_promo]).astype(np.int64)]
        anchor = np.where(in_promo & (rng.random(S) < PROMO_ANCHOR_P), promo_pick, anchor)

        # ---- view slots: stay in the session's category (sequential signal) or drift
        Vn = int(s_len.sum())
        v_sess = np.repeat(np.arange(S), s_len)
        v_pos = np.arange(Vn) - np.repeat(np.cumsum(s_len) - s_len, s_len)
        v_user = s_user[v_sess]
        drift = (v_pos > 0) & (rng.random(Vn) < 0.2)
        other = np.where(rng.random(Vn) < 0.5, pref_draw(v_user), _choice(rng, self.cat_share, Vn))
        v_cat = np.where(drift, other, anchor[v_sess])
        band = np.where(rng.random(Vn) < 0.75, self.user_band[v_user], rng.integers(0, 3, Vn))
        v_item = _draw(rng, self.cb_table, v_cat * 3 + band)
        fav = (v_cat == self.pref[v_user, 0]) & (rng.random(Vn) < 0.35)
        if fav.any():
            keys = v_cat[fav] * self.max_brands + self.fav_brand[v_user[fav]]
            v_item[fav] = _draw(rng, self.brand_table, keys)
        v_scene = np.where(
            s_search[v_sess] & (v_pos < 3),
            3,
            np.where(v_pos == 0, 0, np.where(rng.random(Vn) < 0.4, 0, 1)),
        )
        # ---- funnel: taste match raises click / cart, quality and promotions raise purchase
        in_pref = (self.pref[v_user] == v_cat[:, None]).any(1)
        band_ok = self.item_band[v_item] == self.user_band[v_user]
        promo_ok = self.promo_cat[s_promo[v_sess], v_cat] & in_promo[v_sess]
        p_click = 0.22 + 0.12 * in_pref + 0.06 * band_ok
        p_cart = (0.18 + 0.12 * band_ok + 0.08 * in_pref) * (self.item_stock[v_item] > 0)
        p_buy = np.clip(0.35 + 0.3 * (self.item_quality[v_item] - 0.6) + PROMO_BUY_BOOST * promo_ok, 0.05, 0.95)
        click = rng.random(Vn) < p_click
        cart = click & (rng.random(Vn) < p_cart)
        buy = cart & (rng.random(Vn) < p_buy)
        n_ev = 1 + click.astype(np.int64) + cart + buy

        # ---- expand to events (slot events + one leading search event per search session)
        E1 = int(n_ev.sum())
        e_slot = np.repeat(np.arange(Vn), n_ev)
        step = np.arange(E1) - np.repeat(np.cumsum(n_ev) - n_ev, n_ev)  # 0 view, 1 click, 2 cart, 3 buy
        srch = np.flatnonzero(s_search)
        ev_sess = np.r_[v_sess[e_slot], srch]
        ev_order = np.r_[1 + v_pos[e_slot] * 4 + step, np.zeros(len(srch), dtype=np.int64)]
        ev_type = np.r_[step, np.full(len(srch), 4)]
        ev_item = np.r_[v_item[e_slot], np.full(len(srch), -1)]
        ev_scene = np.r_[np.where(step <= 1, v_scene[e_slot], np.where(step == 2, 1, 2)), np.full(len(srch), 3)]
        qty = np.where(step == 3, rng.choice([1, 2, 3], size=E1, p=[0.85, 0.11, 0.04]), 0)
        ev_qty = np.r_[qty, np.zeros(len(srch), dtype=np.int64)]
        ev_query_cat = np.r_[np.full(E1, -1), anchor[srch]]
        o = np.lexsort((ev_order, ev_sess))
        ev_sess, ev_type, ev_item, ev_scene, ev_qty, ev_query_cat = (
            a[o] for a in (ev_sess, ev_type, ev_item, ev_scene, ev_qty, ev_query_cat)
        )
        # gaps (ms) before each event, by type: browsing, clicking, deciding, paying
        gap_mean = np.array([40_000, 4_000, 60_000, 90_000, 0])[ev_type]
        gaps = (rng.exponential(1.0, len(ev_type)) * gap_mean + 1_000).astype(np.int64)
        first = np.r_[True, ev_sess[1:] != ev_sess[:-1]]
        gaps[first] = 0
        cs = np.cumsum(gaps)
        ev_ts = s_start[ev_sess] + cs - cs[np.maximum.accumulate(np.where(first, np.arange(len(cs)), 0))]

        # ---- trim whole sessions to the budget (churners' first sessions always kept)
        per = np.bincount(ev_sess, minlength=S)
        prio = rng.random(S)
        churn_s = np.isin(s_user, self.churners)
        prio[churn_s] -= 1.0
        o = np.argsort(prio)
        keep = np.zeros(S, dtype=bool)
        keep[o[np.cumsum(per[o]) <= budget]] = True
        m = keep[ev_sess]
        ev = {
            "sess": ev_sess[m],
            "user": s_user[ev_sess[m]],
            "type": ev_type[m],
            "item": ev_item[m],
            "scene": ev_scene[m],
            "qty": ev_qty[m],
            "ts": ev_ts[m],
            "qcat": ev_query_cat[m],
            "kind": np.zeros(int(m.sum()), dtype=np.int8),  # 0 normal, 1 bot, 2 fraud, 3 rate
        }
        n_sessions = S

        # ---- bot bursts: 50-110 views of random items within one minute
        B = len(bot_user)
        b_sess = n_sessions + np.arange(B)
        n_sessions += B
        b_day = rng.integers(0, self.n_days - 1, B)
        b_start = np.clip(self.start_ms + b_day * DAY_MS + rng.integers(0, DAY_MS, B), self.user_lo[bot_user], None)
        b_start = np.minimum(b_start, self.end_ms - 2 * HOUR_MS)
        bl = int(bot_len.sum())
        b_idx = np.repeat(np.arange(B), bot_len)
        # Sorting burst * 100_000 + offset sorts the offsets within each burst in one call.
        offs = rng.integers(0, 58_000, bl)
        b_ts = b_start[b_idx] + np.sort(b_idx * 100_000 + offs) - b_idx * 100_000
        self.bot_bursts = [
            {"user": int(bot_user[i]), "sess": int(b_sess[i]), "start": int(b_start[i]), "n": int(bot_len[i])}
            for i in range(B)
        ]
        bot_ev = {
            "sess": b_sess[b_idx],
            "user": bot_user[b_idx],
            "type": np.zeros(bl, dtype=np.int64),
            "item": rng.integers(0, n_items, bl),
            "scene": np.zeros(bl, dtype=np.int64),
            "qty": np.zeros(bl, dtype=np.int64),
            "ts": b_ts,
            "qcat": np.full(bl, -1),
            "kind": np.ones(bl, dtype=np.int8),
        }

        # ---- fraud sessions: new account or taken-over account, expensive items, many units
        F = self.n_fraud
        n_new = len(self.fraud_new_users)
        takeover = rng.choice(self.takeover_pool, size=F - n_new, replace=False)
        f_user = np.r_[self.fraud_new_users, takeover]
        f_start = self.start_ms + (rng.uniform(0.1, 0.97, F) * self.n_days * DAY_MS).astype(np.int64)
        f_start[n_new:] = np.clip(f_start[n_new:], self.user_lo[takeover], self.user_hi[takeover] - HOUR_MS)
        # A fraud account signs up minutes to hours before its only order.
        self.user_signup[self.fraud_new_users] = f_start[:n_new] - rng.integers(5 * MIN_MS, 6 * HOUR_MS, n_new)
        pricey = np.flatnonzero((self.item_price >= np.quantile(self.item_price, 0.9)) & (self.item_stock > 0))
        if len(pricey) == 0:
            pricey = np.argsort(-self.item_price)[:5]
        f_sess = n_sessions + np.arange(F)
        n_sessions += F
        rows = []
        for f in range(F):
            t = int(f_start[f])
            for line in range(int(fraud_lines[f])):
                item = int(_pick(rng, pricey))
                q = int(rng.integers(3, 11)) if line == 0 else int(rng.integers(1, 4))
                for st, scene in ((0, 0), (1, 1), (2, 1), (3, 2)):
                    t += int(rng.integers(3_000, 20_000))
                    rows.append((f_sess[f], f_user[f], st, item, scene, q if st == 3 else 0, t))
        fr = np.array(rows, dtype=np.int64).reshape(-1, 7)
        fraud_ev = {
            "sess": fr[:, 0],
            "user": fr[:, 1],
            "type": fr[:, 2],
            "item": fr[:, 3],
            "scene": fr[:, 4],
            "qty": fr[:, 5],
            "ts": fr[:, 6],
            "qcat": np.full(len(fr), -1),
            "kind": np.full(len(fr), 2, dtype=np.int8),
        }
        self.fraud_sessions = {int(s): (int(f_user[i]), i < n_new) for i, s in enumerate(f_sess)}
        self.ev = {k: np.concatenate([ev[k], bot_ev[k], fraud_ev[k]]) for k in ev}
        self.n_sessions = n_sessions

    # -- orders --------------------------------------------------------------------------------
    def _orders(self) -> None:
        rng, ev = self.rng, self.ev
        p = np.flatnonzero(ev["type"] == 3)
        p = p[np.lexsort((ev["ts"][p], ev["sess"][p]))]
        sess = ev["sess"][p]
        first = np.r_[True, sess[1:] != sess[:-1]]
        order_no = np.cumsum(first) - 1
        n_orders = int(first.sum())
        created = ev["ts"][p][first]
        # Order ids follow creation time, as a shop's sequence would.
        rank = np.empty(n_orders, dtype=np.int64)
        rank[np.argsort(created, kind="stable")] = np.arange(n_orders)
        oid = np.array(_ids("O", n_orders, 7), dtype=object)[rank]
        o_user = ev["user"][p][first]
        o_sess = sess[first]
        fraud = np.array([int(s) in self.fraud_sessions for s in o_sess])
        age = self.end_ms - created
        status = np.empty(n_orders, dtype=np.int64)
        r = rng.random(n_orders)
        # status by age: fresh orders are pending/paid, recent ones shipped, old ones mostly delivered
        young, mid = age < DAY_MS, (age >= DAY_MS) & (age < 4 * DAY_MS)
        status[young] = np.where(r[young] < 0.3, 0, 1)
        status[mid] = np.select([r[mid] < 0.2, r[mid] < 0.95], [1, 2], 4)
        old = age >= 4 * DAY_MS
        status[old] = np.select([r[old] < 0.82, r[old] < 0.88, r[old] < 0.92, r[old] < 0.97], [3, 4, 5, 6], 2)
        status[fraud] = np.select([r[fraud] < 0.35, r[fraud] < 0.6, r[fraud] < 0.8], [4, 5, 1], 2)
        delay = {
            0: (0, 1),
            1: (1 * MIN_MS, 30 * MIN_MS),
            2: (12 * HOUR_MS, 2 * DAY_MS),
            3: (2 * DAY_MS, 7 * DAY_MS),
            4: (10 * MIN_MS, 12 * HOUR_MS),
            5: (5 * DAY_MS, 20 * DAY_MS),
            6: (8 * DAY_MS, 25 * DAY_MS),
        }
        lo = np.array([delay[s][0] for s in range(7)])[status]
        hi = np.array([delay[s][1] for s in range(7)])[status]
        updated = np.minimum(created + lo + (rng.random(n_orders) * (hi - lo)).astype(np.int64), self.end_ms - MIN_MS)
        ship_country = self.user_country[o_user].copy()
        address = [self.user_address[u] for u in o_user]
        self.fraud_orders = []
        codes = [c for c, _ in V.COUNTRIES]
        qty = ev["qty"][p]
        value = qty * self.item_price[ev["item"][p]]
        totals = np.bincount(order_no, weights=value, minlength=n_orders)
        p99 = float(np.quantile(totals[~fraud], 0.99)) if (~fraud).any() else 0.0
        for j in np.flatnonzero(fraud):
            u, is_new = self.fraud_sessions[int(o_sess[j])]
            reasons = ["new_account"] if is_new else ["account_takeover"]
            if not is_new or rng.random() < 0.6:
                ship_country[j] = _pick(rng, [c for c in codes if c != self.user_country[u]])
                address[j] = _address(rng, ship_country[j])
                reasons.append("country_mismatch")
            if totals[j] > p99:
                reasons.append("high_value")
            if qty[order_no == j].max() >= 3:
                reasons.append("many_units")
            self.fraud_orders.append({"order_id": oid[j], "user_id": self.user_ids[u], "reasons": reasons})
        self.fraud_orders.sort(key=lambda d: d["order_id"])
        line_no = np.arange(len(p)) - np.repeat(np.flatnonzero(first), np.diff(np.r_[np.flatnonzero(first), len(p)]))
        o = order_no
        df = pd.DataFrame(
            {
                "order_id": oid[o],
                "user_id": self.user_ids[o_user][o],
                "status": np.array(ORDER_STATUS_NAMES, dtype=object)[status][o],
                "item_id": self.item_ids[ev["item"][p]],
                "quantity": qty,
                "unit_price": self.item_price[ev["item"][p]],
                "created_at": _iso(created)[o],
                "updated_at": _iso(updated)[o],
                "line_no": line_no,
                "currency": CURRENCY,
                "country": ship_country[o],
                "shipping_address": np.array(address, dtype=object)[o],
            }
        )
        self.orders_df = df.sort_values(["order_id", "line_no"], kind="stable").reset_index(drop=True)
        # The purchase event's value is the line amount.
        self.ev["value"] = np.full(len(ev["type"]), np.nan)
        self.ev["value"][p] = value
        self.o = {
            "id": oid,
            "user": o_user,
            "status": status,
            "created": created,
            "updated": updated,
            "fraud": fraud,
            "line_order": order_no,
            "line_item": ev["item"][p],
        }

    # -- reviews -------------------------------------------------------------------------------
    def _reviews(self) -> None:
        rng, o = self.rng, self.o
        lo_ = o["line_order"]
        ok = (o["status"][lo_] == 3) & ~o["fraud"][lo_] & (rng.random(len(lo_)) < 0.35)
        idx = np.flatnonzero(ok)
        ts = o["updated"][lo_[idx]] + rng.integers(HOUR_MS, 10 * DAY_MS, len(idx))
        users = o["user"][lo_[idx]]
        alive = ts < np.minimum(self.end_ms - MIN_MS, self.user_hi[users])  # not yet reviewed / churned
        idx, ts, users = idx[alive], ts[alive], users[alive]
        items = o["line_item"][idx]
        o2 = np.argsort(ts, kind="stable")
        idx, ts, users, items = idx[o2], ts[o2], users[o2], items[o2]
        n = len(idx)
        rating = np.clip(np.round(1 + 4 * self.item_quality[items] + rng.normal(0, 0.9, n)), 1, 5).astype(np.int64)
        rid = _ids("R", n, 6)
        # ~3% of reviews quote the author's email or phone (at least one, so masking is always testable).
        pii_set = set(rng.choice(n, size=max(1, round(0.03 * n)), replace=False).tolist()) if n else set()
        rows, self.review_truth = [], {}
        self.review_pii = []
        for k in range(n):
            lang = str(self.item_lang[items[k]])
            sent = "positive" if rating[k] >= 4 else ("negative" if rating[k] <= 2 else "neutral")
            n_asp = int(rng.choice([1, 2, 3], p=[0.4, 0.45, 0.15]))
            if sent == "neutral":
                n_asp = max(n_asp, 2)
            aspects = [V.ASPECTS[a] for a in rng.choice(4, size=n_asp, replace=False)]
            pol = {}
            for j, a in enumerate(aspects):
                pos = sent == "positive" or (sent == "neutral" and j == 0)
                pol[a] = "positive" if pos else "negative"
            parts = []
            opener = _pick(rng, V.REVIEW_OPENERS[lang])
            if opener:
                parts.append(opener.format(noun=self.item_noun[items[k]]))
            for a in aspects:
                parts.append(_pick(rng, V.ASPECT_PHRASES[lang][a]["pos" if pol[a] == "positive" else "neg"]))
            parts.append(_pick(rng, V.OVERALL[lang][sent]))
            pii = k in pii_set
            if pii:
                u = users[k]
                tmpl = _pick(rng, V.REVIEW_PII[lang])
                if "{phone}" in tmpl and not self.user_phone[u]:
                    tmpl = V.REVIEW_PII[lang][0] if "{email}" in V.REVIEW_PII[lang][0] else V.REVIEW_PII[lang][1]
                parts.append(tmpl.format(email=self.user_email[u], phone=self.user_phone[u]))
                self.review_pii.append(rid[k])
            text = ("" if lang == "zh" else " ").join(parts)
            rows.append(
                {
                    "review_id": rid[k],
                    "item_id": self.item_ids[items[k]],
                    "user_id": self.user_ids[users[k]],
                    "rating": int(rating[k]),
                    "text": text,
                    "language": lang,
                    "timestamp": str(_iso(np.array([ts[k]]))[0]),
                }
            )
            self.review_truth[rid[k]] = {
                "rating": int(rating[k]),
                "sentiment": sent,
                "aspects": pol,
                "aspects_zh": [V.ASPECTS_ZH[a] for a in aspects],
                "order_id": o["id"][lo_[idx[k]]],
                "has_pii": bool(pii),
            }
        self.reviews = rows
        self.rv = {"ts": ts, "user": users, "item": items, "rating": rating}

    def _opinion_spikes(self) -> None:
        # After the rate events, on its own random stream: the spikes only append reviews.
        from shoplm.demo.opinion_spikes import inject_opinion_spikes

        self.opinion_spikes = inject_opinion_spikes(self)

    def _rate_events(self) -> None:
        rng, rv = self.rng, self.rv
        n = min(self.n_rate_target, len(rv["ts"]))
        pick = np.sort(rng.choice(len(rv["ts"]), size=n, replace=False)) if n else np.zeros(0, dtype=np.int64)
        add = {
            "sess": np.full(n, -1),
            "user": rv["user"][pick],
            "type": np.full(n, 5),
            "item": rv["item"][pick],
            "scene": np.full(n, 1),
            "qty": np.zeros(n, dtype=np.int64),
            "ts": rv["ts"][pick],
            "qcat": np.full(n, -1),
            "kind": np.full(n, 3, dtype=np.int8),
            "value": rv["rating"][pick].astype(np.float64),
        }
        self.ev = {k: np.concatenate([self.ev[k], add[k]]) for k in self.ev}

    # -- support conversations -----------------------------------------------------------------
    def _conversations(self) -> None:
        rng, o = self.rng, self.o
        n_conv = max(10, round(0.3 * self.sizes.n_users))
        names = list(V.INTENTS)
        w = np.array([V.INTENTS[k][0] for k in names])
        intents = _choice(rng, w, n_conv)
        fit = {  # which order statuses each order-bound intent is plausible for
            "track_order": (1, 2),
            "cancel_order": (0, 1),
            "get_refund": (3, 5, 6),
            "change_shipping_address": (0, 1),
            "complaint": (2, 3, 6),
        }
        real = np.flatnonzero(~o["fraud"])
        by_fit = {k: real[np.isin(o["status"][real], v)] for k, v in fit.items()}
        valid_users = np.flatnonzero(self.role != "fraud_account")
        rows, self.conv_truth, self.message_pii = [], {}, []
        cids = _ids("C", n_conv, 5)
        # ~6% of conversations open with the customer's email or phone (at least one).
        pii_set = set(rng.choice(n_conv, size=max(1, round(0.06 * n_conv)), replace=False).tolist())
        msg_no = 0
        # Popular items per (category, language), for recommendation answers.
        order = np.lexsort((-self.item_pop, self.item_cat))
        for c_i in range(n_conv):
            intent = names[intents[c_i]]
            _, needs_order, opens, replies = V.INTENTS[intent]
            order_id = None
            if needs_order and len(real):
                pool = by_fit[intent] if len(by_fit[intent]) else real
                j = int(_pick(rng, pool))
                u, order_id = int(o["user"][j]), str(o["id"][j])
                # Some time after the order, before the end of the window.
                c0 = int(o["created"][j])
                t = c0 + 5 * MIN_MS + int(rng.random() * max(min(6 * DAY_MS, self.end_ms - HOUR_MS - c0), 0))
            else:
                u = int(_pick(rng, valid_users))
                lo = int(max(self.user_lo[u], self.start_ms))
                t = lo + int(rng.random() * max(self.user_hi[u] - lo, HOUR_MS))
            t = min(t, self.end_ms - HOUR_MS)
            lang = str(self.user_lang[u])
            zh = int(lang == "zh")
            cat = int(self.pref[u, 0])
            items_c = order[self.item_cat[order] == cat]
            same = items_c[self.item_lang[items_c] == lang]
            rec_item = int((same if len(same) else items_c)[0])
            any_same = np.flatnonzero(self.item_lang == lang)
            item = int(_pick(rng, any_same)) if intent == "product_question" else rec_item
            fill = {
                "order_id": order_id or "",
                "item": self.item_title[item],
                "category": _pick(rng, self.cats[cat].nouns)[zh],
                "days": "2-5",
                "address": _address(rng, str(self.user_country[u])),
                "country": V.COUNTRY_NAMES[str(self.user_country[u])][zh],
            }
            turns = [("customer", _pick(rng, opens[lang]).format(**fill))]
            pii = c_i in pii_set
            if pii:
                tmpl = _pick(rng, V.CHAT_PII[lang])
                if "{phone}" in tmpl and not self.user_phone[u]:
                    tmpl = next(x for x in V.CHAT_PII[lang] if "{email}" in x)
                turns[0] = (
                    "customer",
                    turns[0][1] + ("" if zh else " ") + tmpl.format(email=self.user_email[u], phone=self.user_phone[u]),
                )
            turns.append(("agent", _pick(rng, replies[lang]).format(**fill)))
            if rng.random() < 0.55:
                q, a = _pick(rng, V.FOLLOW_UPS[lang])
                turns += [("customer", q), ("agent", a)]
            channel = _pick(rng, ("web", "app", "wechat", "email") if zh else ("web", "app", "email", "web"))
            cid = cids[c_i]
            first_msg = msg_no + 1  # the PII sentence is in the opening customer message
            for role, text in turns:
                msg_no += 1
                mid = f"M{msg_no:07d}"
                if pii and msg_no == first_msg:
                    self.message_pii.append(mid)
                rows.append(
                    {
                        "conversation_id": cid,
                        "message_id": mid,
                        "role": role,
                        "text": text,
                        "timestamp": str(_iso(np.array([t]))[0]),
                        "user_id": self.user_ids[u],
                        "channel": channel,
                        "intent": intent,
                    }
                )
                t += int(rng.integers(15_000, 180_000))
            self.conv_truth[cid] = {"intent": intent, "language": lang, "order_id": order_id, "has_pii": bool(pii)}
        self.conversations = rows

    # -- output --------------------------------------------------------------------------------
    def _write(self) -> None:
        out, ev = self.out, self.ev
        # Final event order is by time; event ids and session ids follow it.
        o = np.lexsort((ev["type"], ev["sess"], ev["ts"]))
        ev = {k: v[o] for k, v in ev.items()}
        E = len(o)
        # session ids in order of first appearance (rate events have none)
        has = ev["sess"] >= 0
        bot_session_names = {}
        sess_ids = np.full(E, None, dtype=object)
        s_vals = ev["sess"]
        uniq, first_idx = np.unique(s_vals[has], return_index=True)
        ranks = np.empty(len(uniq), dtype=np.int64)
        ranks[np.argsort(first_idx, kind="stable")] = np.arange(len(uniq))
        width = max(7, len(str(len(uniq))))
        names = np.array([f"S{i + 1:0{width}d}" for i in range(len(uniq))], dtype=object)
        sess_ids[has] = names[ranks[np.searchsorted(uniq, s_vals[has])]]
        for b in self.bot_bursts:
            bot_session_names[b["sess"]] = names[ranks[np.searchsorted(uniq, b["sess"])]]
        item_col = np.where(ev["item"] >= 0, self.item_ids[np.maximum(ev["item"], 0)], None)
        # Search queries: drawn from a per-(category, language) pool; a few are pasted emails.
        query = np.full(E, None, dtype=object)
        srch = np.flatnonzero(ev["type"] == 4)
        self.query_pii_rows = []
        if len(srch):
            pools = _query_pools(self.cats)
            for i in srch:
                lang = str(self.user_lang[ev["user"][i]])
                query[i] = _pick(self.rng, pools[(int(ev["qcat"][i]), lang)])
            n_pii = max(1, len(srch) // 1000)
            for i in np.sort(self.rng.choice(srch, size=n_pii, replace=False)):
                query[i] = self.user_email[ev["user"][i]]
                self.query_pii_rows.append(int(i))
        event_ids = np.array(_ids("E", E, 7), dtype=object)
        table = pa.table(
            {
                "event_id": pa.array(event_ids, pa.string()),
                "user_id": pa.array(self.user_ids[ev["user"]], pa.string()),
                "item_id": pa.array(item_col, pa.string()),
                "event_type": pa.array(np.array(EVENT_TYPE_NAMES, dtype=object)[ev["type"]], pa.string()),
                "timestamp": pa.array(ev["ts"].astype(np.int64), pa.int64()),
                "session_id": pa.array(sess_ids, pa.string()),
                "scene": pa.array(np.array(SCENES, dtype=object)[ev["scene"]], pa.string()),
                "query": pa.array(query, pa.string()),
                "value": pa.array(np.round(ev["value"], 2), pa.float64(), from_pandas=True),
            }
        )
        files = {k: out / f for k, f in _FILE_NAMES.items()}
        pq.write_table(table, files["events"], compression="zstd")
        self.items_df.to_csv(files["items"], index=False, lineterminator="\n", float_format="%.2f")
        users_df = pd.DataFrame(
            {
                "user_id": self.user_ids,
                "email": self.user_email,
                "phone": self.user_phone,
                "country": self.user_country,
                "created_at": _iso(self.user_signup),
                "preferred_language": self.user_lang,
            }
        )
        users_df.to_csv(files["users"], index=False, lineterminator="\n")
        self.orders_df.to_csv(files["orders"], index=False, lineterminator="\n", float_format="%.2f")
        _write_jsonl(files["reviews"], self.reviews)
        _write_jsonl(files["conversations"], self.conversations)
        pol_dir = out / "policies"
        pol_dir.mkdir(exist_ok=True)
        pol_files = []
        for name, text in POLICIES.items():
            (pol_dir / name).write_text(text, encoding="utf-8")
            pol_files.append(pol_dir / name)

        truth = self._truth(ev, event_ids, sess_ids, bot_session_names)
        gt = out / "ground_truth.json"
        gt.write_text(json.dumps(truth, ensure_ascii=False, sort_keys=True, indent=1) + "\n", encoding="utf-8")
        counts = {
            "items": len(self.items_df),
            "users": len(users_df),
            "events": E,
            "orders": len(self.orders_df),
            "order_ids": len(self.o["id"]),
            "reviews": len(self.reviews),
            "conversations": len(self.conversations),
            "conversation_ids": len(self.conv_truth),
        }
        # Last, on its own random stream ([seed, 47]): every other file stays as it was.
        files["impressions"], counts["impressions"] = write_impressions(self, self.sizes.n_requests, _HOUR_W)
        self.manifest = DemoManifest(
            out_dir=out,
            files=files,
            policies_dir=pol_dir,
            ground_truth=gt,
            counts=counts,
            seed=self.seed,
            start=self.start,
            end=self.end,
            policy_files=pol_files,
        )

    def _truth(
        self, ev: dict[str, np.ndarray], event_ids: np.ndarray, sess_ids: np.ndarray, bot_sess: dict[int, str]
    ) -> dict[str, Any]:
        users = {}
        for u in range(self.sizes.n_users):
            prefs = [self.cats[c].path for c in self.pref[u] if c >= 0]
            users[str(self.user_ids[u])] = {
                "preferred_categories": prefs,
                "price_band": BANDS[int(self.user_band[u])],
                "favourite_brand": self.cats[self.pref[u, 0]].brands[int(self.fav_brand[u])],
                "language": str(self.user_lang[u]),
                "role": str(self.role[u]),
                "activity": round(float(self.activity[u]), 4),
            }
        items = {
            str(self.item_ids[i]): {
                "quality": round(float(self.item_quality[i]), 4),
                "price_band": BANDS[int(self.item_band[i])],
                "popularity": round(float(self.item_pop[i]), 6),
            }
            for i in range(self.sizes.n_items)
        }
        # Measured promotion uplift: share of views / purchases in the promoted categories
        # inside the window, divided by the same share outside it.
        day = np.clip((ev["ts"] - self.start_ms) // DAY_MS, 0, self.n_days - 1)
        normal = ev["kind"] == 0
        promos = []
        for pr in self.promos:
            inside = (day >= pr["d0"]) & (day < pr["d1"])
            in_cat = np.isin(self.item_cat[np.maximum(ev["item"], 0)], pr["cats"]) & (ev["item"] >= 0)
            measured = {}
            for name, t in (("views", 0), ("purchases", 3)):
                m = normal & (ev["type"] == t)
                a = in_cat[m & inside].mean() if (m & inside).any() else 0.0
                b = in_cat[m & ~inside].mean() if (m & ~inside).any() else 0.0
                measured[name] = round(float(a / b), 3) if b > 0 else None
            promos.append(
                {
                    "name": pr["name"],
                    "start": str(_iso(np.array([self.start_ms + pr["d0"] * DAY_MS]))[0]),
                    "end": str(_iso(np.array([self.start_ms + pr["d1"] * DAY_MS]))[0]),
                    "categories": [self.cats[c].path for c in pr["cats"]],
                    "traffic_multiplier": PROMO_TRAFFIC,
                    "anchor_share": PROMO_ANCHOR_P,
                    "purchase_prob_boost": PROMO_BUY_BOOST,
                    "measured_share_uplift": measured,
                }
            )
        bursts = []
        for b in self.bot_bursts:
            m = ev["sess"] == b["sess"]
            bursts.append(
                {
                    "user_id": str(self.user_ids[b["user"]]),
                    "session_id": str(bot_sess[b["sess"]]),
                    "start": str(_iso(np.array([ev["ts"][m].min()]))[0]),
                    "end": str(_iso(np.array([ev["ts"][m].max()]))[0]),
                    "n_events": int(m.sum()),
                }
            )
        return {
            "seed": self.seed,
            "sizes": {
                "n_items": self.sizes.n_items,
                "n_users": self.sizes.n_users,
                "n_events": self.sizes.n_events,
                "n_categories": self.sizes.n_categories,
                "months": self.sizes.months,
            },
            "window": {
                "start": str(_iso(np.array([self.start_ms]))[0]),
                "end": str(_iso(np.array([self.end_ms]))[0]),
                "churn_cutoff": str(_iso(np.array([self.churn_cutoff_ms]))[0]),
            },
            "currency": CURRENCY,
            "categories": [
                {"path": c.path, "price_range": list(c.price), "brands": list(c.brands), "share": round(float(s), 4)}
                for c, s in zip(self.cats, self.cat_share, strict=True)
            ],
            "users": users,
            "churners": [str(self.user_ids[u]) for u in self.churners],
            "bot_users": [str(self.user_ids[u]) for u in self.bots],
            "bot_bursts": bursts,
            "fraud_orders": self.fraud_orders,
            "fraud_accounts": [str(self.user_ids[u]) for u in self.fraud_new_users],
            "promotions": promos,
            "items": items,
            "reviews": self.review_truth,
            "opinion_spikes": self.opinion_spikes,
            "conversations": self.conv_truth,
            "pii": {
                "reviews": self.review_pii,
                "messages": self.message_pii,
                "search_events": [str(event_ids[i]) for i in sorted(self.query_pii_rows)],
            },
        }


_FILE_NAMES = {
    "items": "items.csv",
    "users": "users.csv",
    "events": "events.parquet",
    "orders": "orders.csv",
    "reviews": "reviews.jsonl",
    "conversations": "conversations.jsonl",
}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _phone(rng: np.random.Generator, country: str) -> str:
    """A phone number in one of the formats people actually type for ``country``."""
    d = lambda k: "".join(str(x) for x in rng.integers(0, 10, k))  # noqa: E731
    if country == "CN":
        body = f"1{_pick(rng, '3456789')}{d(9)}"
        fmt = int(rng.integers(4))
        return (
            body,
            f"+86 {body}",
            f"+86 {body[:3]} {body[3:7]} {body[7:]}",
            f"+86-{body[:3]}-{body[3:7]}-{body[7:]}",
        )[fmt]
    formats = {
        "US": lambda: f"+1 ({_pick(rng, ('415', '212', '512', '206'))}) 555-{d(4)}",
        "CA": lambda: f"+1 {_pick(rng, ('604', '416'))} 555 {d(4)}",
        "GB": lambda: f"+44 7700 9{d(5)}",
        "DE": lambda: f"+49 15{d(1)} {d(8)}",
        "JP": lambda: f"+81 90-{d(4)}-{d(4)}",
        "SG": lambda: f"+65 {_pick(rng, '89')}{d(3)} {d(4)}",
        "AU": lambda: f"+61 4{d(2)} {d(3)} {d(3)}",
        "FR": lambda: f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
    }
    return formats[country]()


def _address(rng: np.random.Generator, country: str) -> str:
    """A shipping address in the local format of ``country``."""
    if country == "CN":
        city, district = _pick(rng, V.CN_CITIES)
        road = _pick(rng, V.CN_ROADS)
        n, b, r = int(rng.integers(1, 999)), int(rng.integers(1, 30)), int(rng.integers(101, 2808))
        return f"{city}{district}{road}{n}号{b}栋{r}室"
    city, post = _pick(rng, V.INTL_CITIES[country])
    return f"{int(rng.integers(1, 2000))} {_pick(rng, V.INTL_STREETS)}, {city} {post}, {country}"


def _query_pools(cats: tuple[V.Category, ...]) -> dict[tuple[int, str], list[str]]:
    """All search queries a shopper may type for each (category index, language)."""
    pools: dict[tuple[int, str], list[str]] = {}
    for ci, c in enumerate(cats):
        for zh, lang in ((0, "en"), (1, "zh")):
            qs = []
            for tmpl in V.QUERY_MODIFIERS[lang]:
                for noun in c.nouns:
                    for j in range(2):
                        q = tmpl.format(
                            noun=noun[zh] if zh else noun[0].lower(),
                            brand=c.brands[j % len(c.brands)],
                            feature=c.features[j % len(c.features)][zh],
                            color=V.COLORS[j][zh].lower() if zh == 0 else V.COLORS[j][zh],
                        )
                        if q not in qs:
                            qs.append(q)
            pools[(ci, lang)] = qs
    return pools
