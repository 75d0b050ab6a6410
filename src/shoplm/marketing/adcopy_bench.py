"""``shoplm bench adcopy``: every item x channel, N template variants, each constraint's pass rate.

Per item and channel, :func:`~shoplm.marketing.adcopy.write_ad_variants` writes ``n``
variants that must mention the brand and the price. Reported, for the variants and for the
baseline (the single ``ad_copy`` template the shop had, rendered once per item and channel and
checked the same way):

- the pass rate of each constraint and of all of them, and the share of (item, channel) pairs
  with at least one variant meeting every constraint;
- the distinct-variant rate: distinct texts / ``n`` asked (the baseline has one text);
- the claim checker's catch rate: each passing variant gets one invented claim injected (a
  wrong price, a percentage, a delivery period, a superlative, free shipping / 包邮), and the
  share the ``claims`` check flags is reported per kind, with its false-alarm rate on the clean
  variants; apart, free-form claims it has no pattern for ("Ships tomorrow", "获奖设计"), to
  show what it cannot catch.

Example:
    >>> report = run_adcopy_benchmark(Path("demo/items.csv"), n=5)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shoplm.lm.generator import TemplateGenerator
from shoplm.marketing.adcopy import DEFAULT_LIMITS, AdItem, check_ad, write_ad_variants

__all__ = ["CHECKS", "inject_claim", "read_items", "run_adcopy_benchmark"]

CHECKS = ("length", "banned", "must_mention", "language", "claims")
MUST_MENTION = ("brand", "price")
BANNED = ("cheap", "便宜")  # a shop's typical ban: words that cheapen the brand
_INJECTIONS = {
    "price": ("Now only ¥{low}!", "现价仅¥{low}！"),
    "percent": ("Save 30% today.", "今日立减30%。"),
    "period": ("Delivered in 2 days.", "2天送达。"),
    "superlative": ("The best choice.", "同类第一。"),
    "free_shipping": ("Free shipping.", "全场包邮。"),
}
# Invented claims in words the checker has no pattern for: measured apart, to show its limit.
_FREE_FORM = {
    "free_form": (
        ("Ships tomorrow.", "明天发货。"),
        ("Loved by millions.", "千万人的选择。"),
        ("Award-winning design.", "获奖设计。"),
        ("Doctor recommended.", "医生推荐。"),
    )
}


def read_items(items_csv: Path) -> list[AdItem]:
    """The items of a demo store's ``items.csv`` (extra columns ``color``, ``material``, ``size`` as attributes)."""
    import pandas as pd

    frame = pd.read_csv(items_csv, dtype={"item_id": str})
    out = []
    for row in frame.to_dict("records"):
        attributes = {k: row[k] for k in ("color", "material", "size") if isinstance(row.get(k), str) and row[k]}
        text = {k: row[k] if isinstance(row.get(k), str) else "" for k in ("description", "category", "brand")}
        price = row.get("price")
        out.append(
            AdItem(
                str(row["item_id"]),
                str(row["title"]),
                text["description"],
                text["category"],
                text["brand"],
                None if price is None or price != price else float(price),
                str(row.get("currency") or ""),
                str(row.get("language") or ""),
                attributes,
            )
        )
    return out


def inject_claim(text: str, kind: str, item: AdItem, language: str) -> str:
    """``text`` with one invented claim of ``kind`` appended (see the module docstring).

    Example:
        >>> inject_claim("Flexa bands.", "percent", AdItem("I1", "Bands"), "en")
        'Flexa bands. Save 30% today.'
    """
    en, zh = _INJECTIONS[kind]
    low = f"{(item.price or 100) * 0.7:.0f}"
    claim = (zh if language == "zh" else en).format(low=low)
    return text + ("" if language == "zh" else " ") + claim


def run_adcopy_benchmark(
    items_csv: Path,
    out: Path | None = None,
    *,
    n: int = 5,
    seed: int = 0,
    limits: Mapping[str, Mapping[str, int]] | None = None,
) -> dict[str, Any]:
    """Write and check ``n`` variants of every item on every channel; JSON and a PNG of the pass rates.

    Args:
        items_csv: a demo store's ``items.csv``.
        out: write the JSON here and the chart beside it (``.png``).
        n: variants per item and channel.
        seed: picks which claim kind each passing variant gets.
        limits: channel limits (default :data:`~shoplm.marketing.adcopy.DEFAULT_LIMITS`).

    Returns:
        ``{"variants": {...}, "baseline": {...}, "checker": {...}, "protocol": {...}}``.
    """
    limits = limits or DEFAULT_LIMITS
    items = read_items(items_csv)
    rng = np.random.default_rng(seed)
    template = TemplateGenerator()
    passed: Counter[str] = Counter()
    base_passed: Counter[str] = Counter()
    n_variants = n_pairs = pairs_ok = base_pairs_ok = distinct = 0
    caught: Counter[str] = Counter()
    injected: Counter[str] = Counter()
    false_alarms = clean = 0
    kinds = list(_INJECTIONS)
    by_channel: dict[str, dict[str, float]] = {}
    for channel in limits:
        channel_ok = 0
        for item in items:
            result = write_ad_variants(item, channel, n, must_mention=MUST_MENTION, banned=BANNED, limits=limits)
            n_pairs += 1
            pairs_ok += result.ok
            channel_ok += result.ok
            distinct += len({v.text for v in result.variants})
            for variant in result.variants:
                n_variants += 1
                passed.update(name for name, check in variant.checks.items() if check.ok)
                passed["all"] += variant.ok
                clean += 1
                false_alarms += not variant.checks["claims"].ok
                if variant.ok:
                    kind = kinds[int(rng.integers(len(kinds)))]
                    faked = inject_claim(variant.text, kind, item, result.language)
                    checks = check_ad(faked, item, limit=10_000, language=result.language)
                    injected[kind] += 1
                    caught[kind] += not checks["claims"].ok
                    en, zh = _FREE_FORM["free_form"][int(rng.integers(len(_FREE_FORM["free_form"])))]
                    free = variant.text + (zh if result.language == "zh" else " " + en)
                    injected["free_form"] += 1
                    caught["free_form"] += not check_ad(free, item, limit=10_000, language=result.language)["claims"].ok
            # The baseline: the one ad_copy template, once per item and channel.
            text = template.generate("ad_copy", item.facts(), language=result.language).text
            checks = check_ad(
                text,
                item,
                limit=result.limit,
                language=result.language,
                must_mention=MUST_MENTION,
                banned=BANNED,
            )
            base_passed.update(name for name, check in checks.items() if check.ok)
            ok = all(check.ok for check in checks.values())
            base_passed["all"] += ok
            base_pairs_ok += ok
        by_channel[channel] = {"pairs_with_a_passing_variant": round(channel_ok / len(items), 4)}
        print(f"{channel}: {channel_ok}/{len(items)} items with a variant meeting every constraint", file=sys.stderr)
    report = {
        "protocol": {
            "items": len(items),
            "channels": {name: dict(limit) for name, limit in limits.items()},
            "n": n,
            "must_mention": list(MUST_MENTION),
            "banned": list(BANNED),
            "generator": "template",
        },
        "variants": {
            "count": n_variants,
            "pass_rate": {name: round(passed[name] / n_variants, 4) for name in (*CHECKS, "all")},
            "pairs_with_a_passing_variant": round(pairs_ok / n_pairs, 4),
            "distinct_variant_rate": round(distinct / (n * n_pairs), 4),
            "by_channel": by_channel,
        },
        "baseline": {
            "name": "the single ad_copy template",
            "count": n_pairs,
            "pass_rate": {name: round(base_passed[name] / n_pairs, 4) for name in (*CHECKS, "all")},
            "pairs_with_a_passing_variant": round(base_pairs_ok / n_pairs, 4),
            "distinct_variant_rate": round(1 / n, 4),
        },
        "checker": {
            "injected": sum(injected[k] for k in kinds),
            "catch_rate": round(sum(caught[k] for k in kinds) / max(sum(injected[k] for k in kinds), 1), 4),
            "catch_rate_by_kind": {k: round(caught[k] / injected[k], 4) for k in kinds if injected[k]},
            "free_form_injected": injected["free_form"],
            "free_form_catch_rate": round(caught["free_form"] / max(injected["free_form"], 1), 4),
            "false_alarm_rate": round(false_alarms / max(clean, 1), 4),
        },
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
        _chart(report, out.with_suffix(".png"))
    return report


def _chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [*CHECKS, "all"]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ours = [report["variants"]["pass_rate"][k] for k in names]
    base = [report["baseline"]["pass_rate"][k] for k in names]
    ax.bar(x - 0.2, ours, 0.4, label=f"{report['protocol']['n']} variants (styles, shortened to fit)", color="#3b5bdb")
    ax.bar(x + 0.2, base, 0.4, label="baseline: the single ad_copy template", color="#adb5bd")
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of ads passing")
    ax.set_title(
        f"Ad copy constraints, {report['protocol']['items']} demo items x {len(report['protocol']['channels'])} "
        f"channels\ninjected claims caught: {report['checker']['catch_rate']:.0%} of patterned, "
        f"{report['checker'].get('free_form_catch_rate', 0):.0%} of free-form",
        fontsize=10,
    )
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
