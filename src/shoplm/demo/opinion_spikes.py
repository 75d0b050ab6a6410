"""Opinion spikes injected into the demo store's reviews: the ground truth of opinion monitoring.

A spike is a burst of extra negative reviews about one item, one brand or one category over
2-5 consecutive days, all voicing one complaint (``battery dies``, ``漏液`` ...). Each extra review
is written by the buyer of a delivered order line of that item, brand or category that had no
review yet, in the item's language, with a rating of 1 or 2, the theme's sentence, a negative
phrase of the theme's aspect and a negative overall phrase (so it obeys every documented review
rule of the store).

The spikes draw from their own random stream (``default_rng([seed, 31])``) and only append
reviews (ids after the existing ones), so everything else the generator writes stays
byte-identical for a seed; ``ground_truth.json`` gains ``opinion_spikes``.

Example:
    >>> from pathlib import Path
    >>> from shoplm.demo import DemoSizes, generate_demo_store
    >>> import json
    >>> m = generate_demo_store(Path("/tmp/demo-spikes"), seed=1, sizes=DemoSizes(200, 300, 5_000))
    >>> spikes = json.loads(m.ground_truth.read_text())["opinion_spikes"]
    >>> sorted(spikes[0])
    ['end', 'key', 'level', 'per_day', 'review_ids', 'start', 'theme']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from shoplm.demo import vocab as V

if TYPE_CHECKING:
    from shoplm.demo.generator import _Builder

DAY_MS = 86_400_000
MIN_MS = 60_000
#: Levels a spike can be about, in the order spikes take them (then shuffled per seed).
LEVELS = ("item", "brand", "category", "item", "category")
#: days of history a spike needs before it (the monitor's trailing baseline)
BASELINE_DAYS = 28
#: extra negative reviews per spike day ~ Poisson(rate), rate drawn uniformly from this range
RATE_RANGE = (1.5, 4.0)

#: theme -> (aspect of the ground truth, English sentences, Chinese sentences)
THEMES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "battery dies": (
        "quality",
        (
            "The battery dies after an hour.",
            "Battery drains overnight, dead by morning.",
            "Battery life is terrible, it dies within hours.",
        ),
        ("电池不耐用，一小时就没电了。", "电池掉电太快，充满也撑不了多久。", "续航太差，电池很快就没电。"),
    ),
    "leaking": (
        "quality",
        (
            "It leaks everywhere, the cap does not seal.",
            "Leaking from the cap, made a mess in my bag.",
            "The seal is broken and it keeps leaking.",
        ),
        ("漏液了，瓶盖根本拧不紧。", "收到就漏液，弄得到处都是。", "密封不好，一直漏液。"),
    ),
    "wrong size": (
        "quality",
        (
            "Wrong size, runs two sizes small.",
            "The size is completely wrong, it does not fit.",
            "Sizing is off, far smaller than the size chart.",
        ),
        ("尺码不对，小了两个码。", "尺寸严重不符，根本穿不上。", "码数偏小很多，和尺码表不一样。"),
    ),
    "damaged packaging": (
        "shipping",
        (
            "The package arrived torn open and damaged.",
            "Packaging was broken and the item scratched in transit.",
            "The box was smashed and the packaging ripped.",
        ),
        ("包装破损，外盒都烂了。", "收到时包装破损严重，东西也有划痕。", "快递包装破损，里面东西磕坏了。"),
    ),
    "counterfeit": (
        "quality",
        (
            "Looks like a counterfeit, not the genuine brand.",
            "This is a fake, the logo is printed wrong.",
            "Pretty sure it is counterfeit, nothing like the original.",
        ),
        ("感觉是假货，和专柜的不一样。", "疑似假货，标志都印歪了。", "明显是假货，和正品差很多。"),
    ),
}


def inject_opinion_spikes(builder: _Builder) -> list[dict[str, Any]]:
    """Append the spikes' reviews to ``builder.reviews`` / ``builder.review_truth``; return the spikes.

    Args:
        builder: the generator's builder after its ``reviews`` step (reads its orders, items,
            users and reviews; never its random stream).

    Returns:
        One dict per spike: ``level`` (item, brand, category), ``key`` (item id, brand name or
        category path), ``start`` and ``end`` (first and last UTC day, ``YYYY-MM-DD``), ``theme``,
        ``per_day`` (extra reviews on each day) and ``review_ids``. A spike whose key has too
        few unreviewed delivered lines is left out, so small stores may have fewer.
    """
    b = builder
    rng = np.random.default_rng([b.seed, 31])
    o = b.o
    lines = o["line_order"]
    delivered = (o["status"][lines] == 3) & ~o["fraud"][lines]
    reviewed = {(t["order_id"], r["item_id"]) for r, t in zip(b.reviews, b.review_truth.values(), strict=True)}
    line_ids = np.flatnonzero(delivered)
    line_ids = np.array(
        [i for i in line_ids if (o["id"][lines[i]], b.item_ids[o["line_item"][i]]) not in reviewed], dtype=np.int64
    )
    first_day, last_day = BASELINE_DAYS, b.n_days - 6
    n_spikes = int(rng.integers(3, 6))
    if len(line_ids) == 0 or last_day <= first_day + n_spikes:
        return []
    levels = [LEVELS[i] for i in rng.permutation(len(LEVELS))[:n_spikes]]
    brand_of = b.items_df["brand"].to_numpy()
    category_of = b.items_df["category"].to_numpy()
    line_item = o["line_item"][line_ids]
    keys_by_level = {
        "item": b.item_ids[line_item],
        "brand": brand_of[line_item],
        "category": category_of[line_item],
    }
    # Each spike gets its own stretch of the window so spikes never overlap in time.
    bounds = np.linspace(first_day, last_day, n_spikes + 1).astype(int)
    themes = list(THEMES)
    used_lines: set[int] = set()
    used_keys: set[tuple[str, str]] = set()
    spikes: list[dict[str, Any]] = []
    next_no = len(b.reviews) + 1
    width = max(6, len(str(len(b.reviews))))
    for s, level in enumerate(levels):
        duration = int(rng.integers(2, 6))
        start = int(rng.integers(bounds[s], max(bounds[s] + 1, bounds[s + 1] - duration)))
        start_ms = b.start_ms + start * DAY_MS
        end_ms = start_ms + duration * DAY_MS
        # Lines of a key whose buyer can still write a review inside the spike (delivered before
        # its end, and not churned by its start).
        ready = (o["updated"][lines[line_ids]] < end_ms - DAY_MS) & (b.user_hi[o["user"][lines[line_ids]]] > end_ms)
        rate = float(rng.uniform(*RATE_RANGE))
        theme = themes[int(rng.integers(len(themes)))]
        keys = keys_by_level[level]
        candidates, counts = np.unique(keys[ready], return_counts=True)
        free = np.array([(level, str(k)) not in used_keys for k in candidates], dtype=bool) & (counts >= 3)
        if not free.any():
            continue
        # Keys with enough unreviewed lines for the whole spike, weighted by lines; else the fullest.
        enough = free & (counts >= np.ceil(rate * duration))
        if enough.any():
            weights = np.where(enough, counts, 0).astype(np.float64)
            key = str(candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))])
        else:
            key = str(candidates[int(np.argmax(np.where(free, counts, -1)))])
        used_keys.add((level, key))
        pool = [int(i) for i in np.flatnonzero(ready & (keys == key)) if int(line_ids[i]) not in used_lines]
        pool = [pool[i] for i in rng.permutation(len(pool))]
        ids: list[str] = []
        per_day: list[int] = []
        for day in range(duration):
            day_ms = start_ms + day * DAY_MS
            wanted = max(1, int(rng.poisson(rate)))
            written = 0
            while written < wanted and pool:
                line = int(line_ids[pool.pop()])
                lo = max(day_ms, int(o["updated"][lines[line]]) + MIN_MS)
                hi = min(day_ms + DAY_MS, int(b.user_hi[o["user"][lines[line]]]), b.end_ms - MIN_MS)
                if hi <= lo:
                    continue
                ts = lo + int(rng.random() * (hi - lo))
                review_id = f"R{next_no:0{width}d}"
                next_no += 1
                _append_review(b, rng, review_id, line, ts, theme)
                used_lines.add(line)
                ids.append(review_id)
                written += 1
            per_day.append(written)
        if not ids:
            continue
        while per_day[-1] == 0:  # the lines ran out: the spike ends on its last day with reviews
            per_day.pop()
        spikes.append(
            {
                "level": level,
                "key": key,
                "start": _day(start_ms),
                "end": _day(start_ms + (len(per_day) - 1) * DAY_MS),
                "theme": theme,
                "per_day": per_day,
                "review_ids": ids,
            }
        )
    return spikes


def _append_review(b: _Builder, rng: np.random.Generator, review_id: str, line: int, ts: int, theme: str) -> None:
    o = b.o
    item, user = int(o["line_item"][line]), int(o["user"][o["line_order"][line]])
    lang = str(b.item_lang[item])
    aspect, en, zh = THEMES[theme]
    sentences = [
        _pick(rng, zh if lang == "zh" else en),
        _pick(rng, V.ASPECT_PHRASES[lang][aspect]["neg"]),
        _pick(rng, V.OVERALL[lang]["negative"]),
    ]
    rating = int(rng.integers(1, 3))
    b.reviews.append(
        {
            "review_id": review_id,
            "item_id": b.item_ids[item],
            "user_id": b.user_ids[user],
            "rating": rating,
            "text": ("" if lang == "zh" else " ").join(sentences),
            "language": lang,
            "timestamp": _iso(ts),
        }
    )
    b.review_truth[review_id] = {
        "rating": rating,
        "sentiment": "negative",
        "aspects": {aspect: "negative"},
        "aspects_zh": [V.ASPECTS_ZH[aspect]],
        "order_id": o["id"][o["line_order"][line]],
        "has_pii": False,
    }


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _iso(ms: int) -> str:
    return str(np.datetime64(int(ms), "ms").astype("datetime64[s]")) + "Z"


def _day(ms: int) -> str:
    return str(np.datetime64(int(ms), "ms").astype("datetime64[D]"))
