"""Opinion monitoring: daily sentiment per item, category and brand, and spikes of complaints.

Every review is negative or not (the stored sentiment model's polarity, or a rating of 1-2 where
no model scored it). For each level (item, category, brand) and each key, reviews are counted
per UTC day. A (level, key, day) cell with at least ``min_negative`` negative reviews is tested
against the key's trailing ``baseline_days`` days (that day excluded), two ways:

- **negative share**: today's negatives among today's reviews against a beta-binomial whose
  Beta comes from the key's baseline reviews plus ``prior_strength`` pseudo-reviews at the
  shop's trailing negative share (so a key with little history borrows the shop's);
- **negative volume**: today's count of negatives against a gamma-Poisson (negative binomial)
  whose Gamma comes from the key's baseline negatives per day plus ``prior_days`` days at the
  level's trailing average per key.

Benjamini-Hochberg (``statsmodels.stats.multitest.multipletests``) runs within each family of
tests at ``fdr`` divided by the number of families, so the false discovery rate of all alerts
of one run stays at most ``fdr``. The share family holds every day with at least
``min_negative`` reviews (a day with fewer could never reach the minimum: Tarone's rule); the
volume family holds every day of every key in the tested range, days below the minimum counting
as p = 1, so looking only at busy days does not fool it. Flagged days of the same key at most
``merge_gap_days`` apart form one alert (an episode) with the reviews that caused it.

Two baselines run through the same counting and episode code: a 3-sigma z-score of today's
negatives against the trailing mean and standard deviation, and a fixed rule (at least N
negatives and a negative share of at least one half).

Example:
    >>> import pandas as pd
    >>> day = 86_400_000
    >>> quiet = [(f"r{i}", i % 40 * day, i % 7 == 0, "I1", "Shoes", "Acme") for i in range(80)]
    >>> loud = [(f"x{i}", 40 * day + i, True, "I1", "Shoes", "Acme") for i in range(6)]
    >>> reviews = pd.DataFrame(quiet + loud, columns=["review_id", "ts_ms", "negative", "item", "category", "brand"])
    >>> alerts = detect_spikes(reviews, levels=("item",))
    >>> [(a.level, a.key, a.start, a.negative) for a in alerts]
    [('item', 'I1', '1970-02-10', 6)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shoplm.errors import InputError

DAY_MS = 86_400_000
LEVELS = ("item", "category", "brand")
METHODS = ("fdr", "zscore", "rule")
REVIEW_COLUMNS = ("review_id", "ts_ms", "negative")


@dataclass(frozen=True)
class OpinionConfig:
    """How spikes are found.

    Attributes:
        baseline_days: trailing days a day is compared with (the day itself excluded).
        min_negative: fewest negative reviews in a day for it to be tested at all.
        fdr: the false-discovery rate kept over all tests of a run (Benjamini-Hochberg).
        prior_strength: pseudo-reviews at the shop's negative share added to each key's baseline.
        prior_days: pseudo-days at the level's average negatives per key added to each key's baseline.
        tests: ``("share", "volume")`` or either one alone.
        merge_gap_days: flagged days of one key at most this far apart are one alert.
        min_history_days: days the reviews must span before a day is tested (no baseline before).
        z: the z-score baseline's threshold (``method="zscore"``).
        rule_negatives: the fixed rule's count (``method="rule"``: that many negatives, share >= 0.5).
        max_reviews: reviews listed per alert (the negative ones of its flagged days, newest first).
    """

    baseline_days: int = 28
    min_negative: int = 3
    fdr: float = 0.1
    prior_strength: float = 20.0
    prior_days: float = 7.0
    tests: tuple[str, ...] = ("share", "volume")
    merge_gap_days: int = 2
    min_history_days: int = 7
    z: float = 3.0
    rule_negatives: int = 3
    max_reviews: int = 20

    def validate(self) -> None:
        """Raise InputError for settings no test can run with."""
        if self.baseline_days < 1 or self.min_negative < 1 or self.max_reviews < 1:
            raise InputError("baseline_days, min_negative and max_reviews must be at least 1")
        if not 0 < self.fdr < 1:
            raise InputError(f"fdr must be between 0 and 1, got {self.fdr}")
        if not self.tests or set(self.tests) - {"share", "volume"}:
            raise InputError(f"tests must be 'share', 'volume' or both, got {self.tests}")


@dataclass
class OpinionAlert:
    """One spike of complaints about one key.

    Attributes:
        level, key: what it is about (``item`` and an item id, ``category`` and a path, ``brand``).
        start, end: first and last flagged UTC day (``YYYY-MM-DD``).
        days: every flagged day.
        p_value, q_value: the smallest raw and BH-adjusted p-value of its days (the z-score for
            ``zscore``; None for ``rule``).
        reviews, negative: reviews and negative reviews on its flagged days.
        baseline_share: the key's negative share over the baseline before ``start``.
        review_ids: the negative reviews of its flagged days (at most ``max_reviews``).
        topics: the top complaint topics of those reviews (filled in by the caller).
        keywords: what sets those reviews apart from the other complaints (filled in by the caller).
    """

    level: str
    key: str
    start: str
    end: str
    days: list[str]
    p_value: float | None
    q_value: float | None
    reviews: int
    negative: int
    baseline_share: float
    review_ids: list[str]
    topics: list[dict[str, Any]] = field(default_factory=list)
    keywords: str = ""

    @property
    def alert_id(self) -> str:
        """Stable id: the same episode found again is the same alert."""
        return f"opinion:{self.level}:{self.key}:{self.start}"

    def to_dict(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, **asdict(self)}


def _check(reviews: pd.DataFrame, levels: Sequence[str]) -> None:
    unknown = [lv for lv in levels if lv not in LEVELS]
    if unknown:
        raise InputError(f"unknown level(s) {unknown}: use {', '.join(LEVELS)}")
    missing = [c for c in (*REVIEW_COLUMNS, *levels) if c not in reviews.columns]
    if missing:
        raise InputError(f"reviews need the column(s) {missing}")


def day_string(day: int | np.integer) -> str:
    """A day number (days since 1970-01-01) as ``YYYY-MM-DD``."""
    return str(np.datetime64(int(day), "D"))


def parse_day(text: str) -> int:
    """``YYYY-MM-DD`` (or any date pandas reads) as a day number; InputError otherwise."""
    try:
        return int(pd.Timestamp(text).value // (DAY_MS * 1_000_000))
    except (ValueError, TypeError) as exc:
        raise InputError(f"not a date: {text!r} (write 2026-06-01)", field="since") from exc


def daily_sentiment(reviews: pd.DataFrame, level: str, *, key: str | None = None) -> pd.DataFrame:
    """Reviews and negative reviews per key and UTC day.

    Args:
        reviews: one row per review with ``ts_ms``, ``negative`` and a column named ``level``
            holding the key (empty keys are left out).
        level: ``item``, ``category`` or ``brand``.
        key: only this key.

    Returns:
        Columns ``key, day (YYYY-MM-DD), reviews, negative, negative_share``, by key then day.

    Example:
        >>> frame = pd.DataFrame({"review_id": ["a", "b"], "ts_ms": [0, 1], "negative": [True, False],
        ...                       "item": ["I1", "I1"]})
        >>> daily_sentiment(frame, "item").to_dict("records")
        [{'key': 'I1', 'day': '1970-01-01', 'reviews': 2, 'negative': 1, 'negative_share': 0.5}]
    """
    _check(reviews, [level])
    frame = reviews[reviews[level].fillna("").astype(str) != ""]
    if key is not None:
        frame = frame[frame[level].astype(str) == key]
    grouped = (
        pd.DataFrame(
            {
                "key": frame[level].astype(str),
                "day": frame["ts_ms"].to_numpy(dtype=np.int64) // DAY_MS,
                "negative": frame["negative"].astype(bool).astype(int),
            }
        )
        .groupby(["key", "day"], sort=True)["negative"]
        .agg(reviews="size", negative="sum")
        .reset_index()
    )
    grouped["negative_share"] = (grouped["negative"] / grouped["reviews"]).round(4)
    grouped["day"] = [day_string(d) for d in grouped["day"]]
    return grouped.astype({"reviews": int, "negative": int})


@dataclass
class _Cells:
    """Every (key, day) with reviews at one level, sorted by key then day, with trailing sums."""

    key: np.ndarray
    day: np.ndarray
    n: np.ndarray
    neg: np.ndarray
    base_n: np.ndarray
    base_neg: np.ndarray
    base_neg_sq: np.ndarray


def _cells(frame: pd.DataFrame, level: str, window: int) -> _Cells:
    counted = (
        pd.DataFrame(
            {
                "key": frame[level].astype(str).to_numpy(),
                "day": frame["ts_ms"].to_numpy(dtype=np.int64) // DAY_MS,
                "neg": frame["negative"].to_numpy(dtype=bool).astype(np.int64),
            }
        )
        .groupby(["key", "day"], sort=True)["neg"]
        .agg(n="size", neg="sum")
        .reset_index()
    )
    key_codes, keys = pd.factorize(counted["key"], sort=True)
    day = counted["day"].to_numpy(dtype=np.int64)
    n, neg = counted["n"].to_numpy(np.int64), counted["neg"].to_numpy(np.int64)
    # Trailing sums over days [d - window, d - 1] of the same key, from per-key cumulative sums
    # looked up by binary search on (key, day) packed in one sortable number.
    span = int(day.max() - day.min() + window + 2) if len(day) else 1
    packed = key_codes.astype(np.int64) * span + (day - (day.min() if len(day) else 0))
    sums = {}
    for name, values in (("n", n), ("neg", neg), ("neg_sq", neg * neg)):
        cumulative = np.r_[0, np.cumsum(values)]
        upto_yesterday = np.searchsorted(packed, packed, side="left")  # cells before today (any key)
        upto_window = np.searchsorted(packed, packed - window, side="left")
        key_start = np.searchsorted(packed, key_codes.astype(np.int64) * span, side="left")
        upto_window = np.maximum(upto_window, key_start)
        sums[name] = cumulative[upto_yesterday] - cumulative[upto_window]
    return _Cells(
        key=np.asarray(keys)[key_codes],
        day=day,
        n=n,
        neg=neg,
        base_n=sums["n"],
        base_neg=sums["neg"],
        base_neg_sq=sums["neg_sq"],
    )


def _shop_trailing(frame: pd.DataFrame, window: int) -> tuple[dict[int, float], dict[int, float], int]:
    """Per day: the shop's trailing negative share and negatives per day; and the first day."""
    day = frame["ts_ms"].to_numpy(dtype=np.int64) // DAY_MS
    first, last = int(day.min()), int(day.max())
    n = np.bincount(day - first, minlength=last - first + 1).astype(np.float64)
    neg = np.bincount(day - first, weights=frame["negative"].to_numpy(dtype=bool), minlength=last - first + 1)
    cn, cneg = np.r_[0.0, np.cumsum(n)], np.r_[0.0, np.cumsum(neg)]
    share, per_day = {}, {}
    overall = float(neg.sum() / max(n.sum(), 1.0))
    for offset in range(last - first + 1):
        lo = max(0, offset - window)
        reviews, negatives = cn[offset] - cn[lo], cneg[offset] - cneg[lo]
        share[first + offset] = float(negatives / reviews) if reviews > 0 else overall
        per_day[first + offset] = float(negatives / max(offset - lo, 1))
    return share, per_day, first


def _p_values(
    cells: _Cells, frame: pd.DataFrame, config: OpinionConfig, since_day: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Share and volume p-values of every cell (NaN: not a test) and the number of volume tests.

    Share tests are the days with at least ``min_negative`` reviews: a day with fewer could not
    reach the minimum whatever its reviews said (Tarone's rule for discrete tests), and given its
    count of reviews the test is exact. Volume tests are every day of every key in the tested
    range, with or without reviews; those below the minimum count as p = 1 (they are not
    computed, only counted), so BH is not fooled by looking at busy days only.
    """
    from scipy.stats import betabinom, nbinom

    share_by_day, per_day_by_day, first = _shop_trailing(frame, config.baseline_days)
    begin = first + config.min_history_days if since_day is None else max(first + config.min_history_days, since_day)
    in_range = cells.day >= begin
    n_keys = len(np.unique(cells.key))
    p_share = np.full(len(cells.day), np.nan)
    p_volume = np.full(len(cells.day), np.nan)
    if "share" in config.tests:
        rows = np.flatnonzero(in_range & (cells.n >= config.min_negative))
        shop_share = np.clip(np.array([share_by_day[int(d)] for d in cells.day[rows]]), 1e-3, 1 - 1e-3)
        alpha = config.prior_strength * shop_share + cells.base_neg[rows]
        beta = config.prior_strength * (1 - shop_share) + (cells.base_n[rows] - cells.base_neg[rows])
        p = betabinom.sf(cells.neg[rows] - 1, cells.n[rows], alpha, beta)
        p_share[rows] = np.where(cells.neg[rows] >= config.min_negative, p, 1.0)
    n_volume = 0
    if "volume" in config.tests:
        rows = np.flatnonzero(in_range & (cells.neg >= config.min_negative))
        day = cells.day[rows]
        level_rate = np.array([per_day_by_day[int(d)] for d in day]) / max(n_keys, 1)
        days_seen = np.minimum(config.baseline_days, np.maximum(day - first, 0)).astype(np.float64)
        shape = config.prior_days * np.maximum(level_rate, 1e-4) + cells.base_neg[rows]
        rate = config.prior_days + days_seen
        p_volume[rows] = nbinom.sf(cells.neg[rows] - 1, shape, rate / (rate + 1.0))
        last = int(cells.day.max())
        n_volume = n_keys * max(last - begin + 1, 0)
    return p_share, p_volume, n_volume


def detect_spikes(
    reviews: pd.DataFrame,
    *,
    levels: Sequence[str] = LEVELS,
    config: OpinionConfig | None = None,
    method: str = "fdr",
    since_day: int | None = None,
) -> list[OpinionAlert]:
    """Find spikes of negative reviews per level and key.

    Args:
        reviews: one row per review: ``review_id``, ``ts_ms`` (epoch ms), ``negative`` (bool) and
            one key column per level (``item``, ``category``, ``brand``; empty = unknown).
        levels: the levels to monitor.
        config: the test settings (default :class:`OpinionConfig`).
        method: ``fdr`` (the tests with Benjamini-Hochberg), or a baseline: ``zscore`` (3-sigma
            on negatives per day) or ``rule`` (fixed count and share).
        since_day: only days from this day number on are tested (earlier ones are baseline).

    Returns:
        The alerts, most significant first (the strongest evidence first for the baselines).

    Raises:
        InputError: a missing column, unknown level or method, or bad settings.
    """
    config = config or OpinionConfig()
    config.validate()
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}: use {', '.join(METHODS)}")
    _check(reviews, levels)
    if reviews.empty:
        return []
    found: list[tuple[str, _Cells, np.ndarray, np.ndarray]] = []  # level, cells, tested, score
    volume_tests = 0
    for level in levels:
        frame = reviews[reviews[level].fillna("").astype(str) != ""]
        if frame.empty:
            continue
        cells = _cells(frame, level, config.baseline_days)
        if method == "fdr":
            p_share, p_volume, n_volume = _p_values(cells, reviews, config, since_day)
            tested = np.flatnonzero(~np.isnan(p_share) | ~np.isnan(p_volume))
            found.append((level, cells, tested, np.vstack([p_share[tested], p_volume[tested]])))
            volume_tests += n_volume
            continue
        begin = int(reviews["ts_ms"].min() // DAY_MS) + config.min_history_days
        tested = np.flatnonzero((cells.neg >= config.min_negative) & (cells.day >= max(begin, since_day or begin)))
        if method == "zscore":
            days_seen = float(config.baseline_days)
            mean = cells.base_neg[tested] / days_seen
            var = np.maximum(cells.base_neg_sq[tested] / days_seen - mean**2, 0.0)
            # A key without history has no spread: a floor of one review per window keeps z finite.
            sd = np.sqrt(np.maximum(var, 1.0 / days_seen))
            score = (cells.neg[tested] - mean) / sd
        else:
            score = (cells.neg[tested] >= config.rule_negatives) & (cells.neg[tested] * 2 >= cells.n[tested])
            score = score.astype(np.float64)
        found.append((level, cells, tested, score))
    q_cells: list[np.ndarray] = []
    if method == "fdr":
        # BH within each family of tests (share; volume with p = 1 for each key-day below the
        # minimum count), each at fdr / families: the run's FDR stays at most fdr, since the
        # false share of the union is at most the sum of the families' false shares.
        from statsmodels.stats.multitest import multipletests

        stacked = np.hstack([pair for *_, pair in found]) if found else np.zeros((2, 0))
        families = [row for row, name in enumerate(("share", "volume")) if name in config.tests]
        q_stacked = np.full(stacked.shape, np.inf)
        for row in families:
            computed = ~np.isnan(stacked[row])
            padding = max(volume_tests - int(computed.sum()), 0) if row == 1 else 0
            p_family = np.r_[stacked[row][computed], np.ones(padding)]
            if len(p_family):
                q_family = multipletests(p_family, method="fdr_bh")[1][: int(computed.sum())]
                q_stacked[row][computed] = np.minimum(q_family * len(families), 1.0)
        raw = np.where(np.isnan(stacked), np.inf, stacked).min(axis=0)
        q_min = q_stacked.min(axis=0)
        offsets = np.cumsum([0] + [pair.shape[1] for *_, pair in found])
        for i in range(len(found)):
            level, cells, tested, _pair = found[i]
            found[i] = (level, cells, tested, raw[offsets[i] : offsets[i + 1]])
            q_cells.append(q_min[offsets[i] : offsets[i + 1]])
    alerts: list[OpinionAlert] = []
    for i, (level, cells, tested, score) in enumerate(found):
        q = q_cells[i] if method == "fdr" else None
        if q is not None:
            flagged = q <= config.fdr
        else:
            flagged = score >= config.z if method == "zscore" else score > 0
        rows = tested[flagged]
        alerts.extend(
            _episodes(
                reviews,
                level,
                cells,
                rows,
                raw=score[flagged] if method != "rule" else None,
                adjusted=q[flagged] if q is not None else None,
                config=config,
                method=method,
            )
        )
    alerts.sort(key=lambda a: (-a.negative if a.q_value is None else a.q_value, a.level, a.key, a.start))
    return alerts


def _episodes(
    reviews: pd.DataFrame,
    level: str,
    cells: _Cells,
    rows: np.ndarray,
    *,
    raw: np.ndarray | None,
    adjusted: np.ndarray | None,
    config: OpinionConfig,
    method: str,
) -> list[OpinionAlert]:
    """Merge flagged cells of one level into episodes per key and attach their reviews."""
    if len(rows) == 0:
        return []
    order = np.lexsort((cells.day[rows], cells.key[rows]))
    rows = rows[order]
    raw = raw[order] if raw is not None else None
    adjusted = adjusted[order] if adjusted is not None else None
    groups: list[list[int]] = []
    for j in range(len(rows)):
        r, previous = rows[j], rows[groups[-1][-1]] if groups else None
        if (
            previous is not None
            and cells.key[r] == cells.key[previous]
            and cells.day[r] - cells.day[previous] <= config.merge_gap_days
        ):
            groups[-1].append(j)
        else:
            groups.append([j])
    keyed = reviews[level].astype(str).to_numpy()
    review_day = reviews["ts_ms"].to_numpy(dtype=np.int64) // DAY_MS
    negative = reviews["negative"].to_numpy(dtype=bool)
    alerts = []
    for members in groups:
        cell_rows = rows[members]
        key = str(cells.key[cell_rows[0]])
        days = cells.day[cell_rows]
        caused = np.flatnonzero((keyed == key) & negative & np.isin(review_day, days))
        caused = caused[np.argsort(-reviews["ts_ms"].to_numpy()[caused], kind="stable")][: config.max_reviews]
        first = cell_rows[0]
        base_n, base_neg = int(cells.base_n[first]), int(cells.base_neg[first])
        p_value = None
        q_value = None
        if method == "fdr" and raw is not None and adjusted is not None:
            p_value = float(np.min(raw[members]))
            q_value = float(np.min(adjusted[members]))
        elif method == "zscore" and raw is not None:
            p_value = float(np.max(raw[members]))
        alerts.append(
            OpinionAlert(
                level=level,
                key=key,
                start=day_string(days.min()),
                end=day_string(days.max()),
                days=[day_string(d) for d in days],
                p_value=p_value,
                q_value=q_value,
                reviews=int(cells.n[cell_rows].sum()),
                negative=int(cells.neg[cell_rows].sum()),
                baseline_share=round(base_neg / base_n, 4) if base_n else 0.0,
                review_ids=[str(x) for x in reviews["review_id"].to_numpy()[caused]],
            )
        )
    return alerts
