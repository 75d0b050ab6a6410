"""``shoplm bench replies``: reply drafts for demo reviews per backend, and the faithfulness checker's own benchmark.

Part 1, drafts. A demo store (``--data DIR`` from ``shoplm demo``, else one generated with
``--seed``) is ingested into a temporary store with its policies; ``n`` reviews, stratified by
language (zh, en) and rating (1-5), are drafted by :class:`~shoplm.app.review_replies.ReviewReplies`
with the template generator, and also with an OpenAI-compatible endpoint (``--endpoint``) or a
local GGUF model (``--gguf``) when given. Per backend, for the backend's own drafts (before any
replacement): the checker's faithfulness rate, the language match rate (the reply is in the
review's reply language), the share with politeness markers (thanks or apology), the mean
length in characters, the outcomes, and seconds per draft.

Part 2, the checker. Each faithful template draft becomes labelled variants: an injected
error (an invented amount, date, period, percentage, policy promise from the checker's phrase
list, or a promise paraphrased outside that list), or a clean variant with a *grounded* sentence
added (the order's real id, amount and date). Detectors, in the same run: the checker
(:func:`~shoplm.lm.faithfulness.check_faithfulness`), the checker's number-only part (its
amount/date/period/percent/id claims, i.e. without policy promises), and the naive baseline
"any number in the draft is suspect". Reported: precision, recall, F1, recall per injected
kind, false alarms on clean drafts.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from shoplm.lm.faithfulness import CUSTOMER_TEXT_KEYS, POLICY_PROMISES, check_faithfulness, claims
from shoplm.lm.generator import Fact

log = logging.getLogger(__name__)

_POLITE = ("thank", "sorry", "apolog", "please", "感谢", "谢谢", "抱歉", "歉", "请")
_BENCH_SIZES = {"n_items": 400, "n_users": 2000, "n_events": 40_000}

# Injected errors, per language: a sentence template and the kind it adds.
_PROMISES_EN = {
    "free_return": "a free return",
    "full_refund": "a full refund",
    "compensation": "compensation for the trouble",
    "replacement": "a replacement",
    "coupon": "a coupon for your next order",
    "free_shipping": "free shipping on your next order",
    "lifetime": "a lifetime guarantee",
}
_PROMISES_ZH = {
    "free_return": "免费退货",
    "full_refund": "全额退款",
    "compensation": "赔偿",
    "replacement": "换新",
    "coupon": "一张优惠券",
    "free_shipping": "下单包邮",
    "lifetime": "终身保修",
}
# Promises in words the checker's phrase list does not have: its known blind spot.
_PARAPHRASES_EN = (
    "We will cover the cost of sending it back.",
    "We will send you a brand-new one at no cost.",
    "You will get all your money back.",
    "We will make it up to you with a gift.",
)
_PARAPHRASES_ZH = (
    "寄回的费用由我们来出。",
    "我们会免费给您重新发一个新的。",
    "钱会一分不少地还给您。",
    "我们会送您一份礼物作为弥补。",
)


def _polite(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in _POLITE)


def _sample(frame: Any, n: int, seed: int) -> list[str]:
    """Up to ``n`` review ids, round-robin over (language, rating) groups in a seeded order."""
    rng = random.Random(seed)
    groups: dict[tuple[str, int], list[str]] = {}
    for row in frame.itertuples(index=False):
        language = "zh" if str(row.language).startswith("zh") else "en"
        rating = int(row.rating) if row.rating == row.rating and row.rating is not None else 0
        groups.setdefault((language, rating), []).append(str(row.review_id))
    for ids in groups.values():
        rng.shuffle(ids)
    chosen: list[str] = []
    keys = sorted(groups)
    while len(chosen) < n and any(groups[k] for k in keys):
        for key in keys:
            if groups[key] and len(chosen) < n:
                chosen.append(groups[key].pop())
    return chosen


def _build_store(data: Path | None, seed: int, root: Path) -> tuple[Any, Any]:
    from shoplm.config import Settings
    from shoplm.demo.generator import DemoSizes, generate_demo_store
    from shoplm.ingest.pipeline import ingest
    from shoplm.store import Store

    if data is None:
        data = root / "demo"
        print(f"generating a demo store (seed {seed}) ...", file=sys.stderr)
        generate_demo_store(data, seed=seed, sizes=DemoSizes(**_BENCH_SIZES))
    settings = Settings(data_dir=root / "data", pseudonymization_key="bench-replies")
    store = Store.open(settings.database_url)
    for kind in ("items", "users", "orders", "reviews"):
        files = sorted(p for p in data.glob(f"{kind}.*") if p.suffix in {".csv", ".jsonl", ".parquet", ".gz"})
        if not files:
            raise FileNotFoundError(f"{data} has no {kind} file (expected a demo store: shoplm demo)")
        ingest(kind, files[0], store=store, settings=settings)
    if (data / "policies").is_dir():
        shutil.copytree(data / "policies", settings.data_dir / "policies")
    return store, settings


def _generators(endpoint: str | None, model: str, gguf: Path | None) -> list[tuple[str, Any]]:
    from shoplm.lm.generator import LlamaCppGenerator, OpenAIChatGenerator, TemplateGenerator

    out: list[tuple[str, Any]] = [("template", TemplateGenerator())]
    if endpoint:
        out.append((f"openai:{model or 'default'}", OpenAIChatGenerator(endpoint, model=model, timeout=120)))
    if gguf is not None:
        out.append((f"gguf:{gguf.name}", LlamaCppGenerator(gguf, n_threads=1)))
    return out


def _draft_metrics(name: str, generator: Any, store: Any, settings: Any, ids: list[str], index: Any) -> dict[str, Any]:
    from shoplm.app.review_replies import ReviewReplies
    from shoplm.insight.replies import language_matches

    service = ReviewReplies(store, settings, generator=generator, policy_index=index)
    rows, outcomes, seconds = [], Counter(), []
    for i, review_id in enumerate(ids, 1):
        started = time.perf_counter()
        result = service.draft_reply(review_id)
        seconds.append(time.perf_counter() - started)
        outcomes[result["outcome"]] += 1
        if result["skipped"]:
            continue
        own = result["rejected_draft"] or result["draft"]  # the backend's own text, before any replacement
        rows.append(
            {
                "review_id": review_id,
                "language": result["language"],
                "faithful": bool(result["faithful"]),
                "language_match": language_matches(own, result["language"]),
                "polite": _polite(own),
                "length": len(own),
                "final_faithful": check_faithfulness(result["draft"], [Fact(**g) for g in result["grounding"]]).ok,
                "draft": result["draft"],
                "grounding": result["grounding"],
            }
        )
        if i % 25 == 0 or i == len(ids):
            print(f"  {name}: {i}/{len(ids)} drafts", file=sys.stderr)
    n = len(rows)

    def rate(key: str, subset: list[dict[str, Any]] | None = None) -> float | None:
        chosen = rows if subset is None else subset
        return round(sum(r[key] for r in chosen) / len(chosen), 4) if chosen else None

    by_language = {
        lang: {
            "n": len(sub),
            "faithful_rate": rate("faithful", sub),
            "language_match_rate": rate("language_match", sub),
            "mean_length_chars": round(sum(r["length"] for r in sub) / len(sub), 1) if sub else None,
        }
        for lang in ("zh", "en")
        for sub in [[r for r in rows if r["language"] == lang]]
    }
    metrics = {
        "n": n,
        "faithful_rate": rate("faithful"),
        "language_match_rate": rate("language_match"),
        "politeness_rate": rate("polite"),
        "mean_length_chars": round(sum(r["length"] for r in rows) / n, 1) if n else None,
        "final_faithful_rate": rate("final_faithful"),
        "outcomes": dict(outcomes),
        "seconds_per_draft": round(sum(seconds) / len(seconds), 4) if seconds else None,
        "by_language": by_language,
    }
    return {"metrics": metrics, "rows": rows}


# -- the checker's benchmark ---------------------------------------------------------------------
def _shop_side(grounding: list[Fact]) -> str:
    return " ".join(f"{f.key} {f.value}" for f in grounding if f.key not in CUSTOMER_TEXT_KEYS)


def _numbers_in(grounding: list[Fact]) -> set[str]:
    import re

    return set(re.findall(r"\d+", " ".join(f.value for f in grounding)))


def _fresh_number(rng: random.Random, used: set[str], low: int, high: int) -> int:
    for _ in range(200):
        value = rng.randint(low, high)
        if str(value) not in used:
            return value
    return high + 7


def _inject(draft: str, grounding: list[Fact], zh: bool, kind: str, rng: random.Random) -> str | None:
    """``draft`` with one error of ``kind`` appended (None when this draft cannot take one)."""
    import re

    used = _numbers_in(grounding)
    if kind == "amount":
        x = _fresh_number(rng, used, 11, 499)
        sentence = f"该商品价格为{x}元。" if zh else f"The item cost ¥{x}.00."
    elif kind == "date":
        m, d = _fresh_number(rng, used, 1, 12), _fresh_number(rng, used, 13, 28)
        sentence = f"预计{m}月{d}日送达。" if zh else f"It will arrive on 2026-{m:02d}-{d}."
    elif kind == "period":
        k = _fresh_number(rng, used, 2, 72)
        sentence = f"我们会在{k}小时内回复您。" if zh else f"We will reply within {k} hours."
    elif kind == "percent":
        p = _fresh_number(rng, used, 5, 60)
        sentence = f"下次购物可享{p}%的优惠。" if zh else f"Enjoy {p}% off next time."
    elif kind == "policy":
        shop = _shop_side(grounding)
        table = _PROMISES_ZH if zh else _PROMISES_EN
        allowed = [c for c in table if not re.search("|".join(POLICY_PROMISES[c]), shop, re.IGNORECASE)]
        if not allowed:
            return None
        promise = table[rng.choice(allowed)]
        sentence = f"我们将为您提供{promise}。" if zh else f"We will give you {promise}."
    elif kind == "policy_paraphrase":
        sentence = rng.choice(_PARAPHRASES_ZH if zh else _PARAPHRASES_EN)
    else:  # pragma: no cover - the kinds are fixed below
        raise ValueError(kind)
    return draft + ("" if zh else " ") + sentence


def _grounded_sentence(grounding: list[Fact], zh: bool) -> str | None:
    by_key = {f.key: f.value for f in grounding}
    if not {"order_id", "amount", "order_date"} <= by_key.keys():
        return None
    order, amount, date = by_key["order_id"], by_key["amount"], by_key["order_date"]
    return (
        f"您的订单 {order}（{amount}）下单于{date}。" if zh else f"Your order {order} ({amount}) was placed on {date}."
    )


_ERROR_KINDS = ("amount", "date", "period", "percent", "policy", "policy_paraphrase")
_NUMBER_KINDS = {"amount", "date", "period", "percent", "order_id"}


def _detectors(text: str, grounding: list[Fact]) -> dict[str, bool]:
    """Whether each detector flags ``text``."""
    import re

    report = check_faithfulness(text, grounding)
    kinds = dict((span, kind) for kind, span in claims(text))
    return {
        "checker": not report.ok,
        "checker_numbers_only": any(kinds.get(span) in _NUMBER_KINDS for span in report.unsupported),
        "naive_any_number": re.search(r"\d", text) is not None,
    }


def checker_benchmark(rows: list[dict[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """Precision and recall of the detectors on labelled variants of faithful drafts (see the module docstring)."""
    rng = random.Random(seed)
    cases: list[tuple[str, bool, dict[str, bool]]] = []  # (kind, is_error, flags)
    for row in rows:
        if not row["final_faithful"]:
            continue
        grounding = [Fact(**g) for g in row["grounding"]]
        zh = row["language"] == "zh"
        cases.append(("clean", False, _detectors(row["draft"], grounding)))
        grounded = _grounded_sentence(grounding, zh)
        if grounded:
            text = row["draft"] + ("" if zh else " ") + grounded
            cases.append(("clean_grounded_numbers", False, _detectors(text, grounding)))
        for kind in _ERROR_KINDS:
            injected = _inject(row["draft"], grounding, zh, kind, rng)
            if injected is not None:
                cases.append((kind, True, _detectors(injected, grounding)))
    detectors = ("checker", "checker_numbers_only", "naive_any_number")
    summary: dict[str, Any] = {}
    for name in detectors:
        tp = sum(1 for _, err, f in cases if err and f[name])
        fp = sum(1 for _, err, f in cases if not err and f[name])
        fn = sum(1 for _, err, f in cases if err and not f[name])
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_kind = {}
        for kind in (*_ERROR_KINDS, "clean", "clean_grounded_numbers"):
            sub = [f[name] for k, _, f in cases if k == kind]
            per_kind[kind] = round(sum(sub) / len(sub), 4) if sub else None
        summary[name] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "flag_rate_by_kind": per_kind,
        }
    counts = Counter(kind for kind, _, _ in cases)
    return {"n_cases": len(cases), "cases_by_kind": dict(counts), "summary": summary}


def _chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    names = list(report["backends"])
    metrics = ("faithful_rate", "language_match_rate", "politeness_rate")
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        values = [report["backends"][name][m] or 0 for m in metrics]
        left.bar([j + i * width for j in range(len(metrics))], values, width, label=name)
    left.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(metrics))], ["faithful", "language", "polite"])
    left.set_ylim(0, 1.05)
    left.set_title(f"Reply drafts per backend (n={report['n_reviews']})")
    left.legend(fontsize=8)
    summary = report["checker"]["summary"]
    kinds = [*_ERROR_KINDS, "clean", "clean_grounded_numbers"]
    width = 0.27
    for i, name in enumerate(summary):
        values = [summary[name]["flag_rate_by_kind"][k] or 0 for k in kinds]
        right.bar([j + i * width for j in range(len(kinds))], values, width, label=name)
    right.set_xticks([j + width for j in range(len(kinds))], kinds, rotation=30, ha="right", fontsize=8)
    right.set_ylim(0, 1.05)
    right.set_ylabel("share flagged")
    right.set_title("Checker on injected errors (want 1) and clean drafts (want 0)")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_replies_benchmark(
    *,
    data: Path | None = None,
    seed: int = 7,
    n: int = 200,
    endpoint: str | None = None,
    model: str = "",
    gguf: Path | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Run both parts (see the module docstring); write ``out`` (JSON) and a PNG beside it.

    Args:
        data: a demo store's directory; None: generate one with ``seed``.
        seed: the demo's seed, and the seed of the sample and the injections.
        n: reviews drafted.
        endpoint, model: an OpenAI-compatible endpoint drafting too.
        gguf: a local GGUF model drafting too.
        out: where the JSON goes (the PNG gets the same name with ``.png``).

    Returns:
        The report.
    """
    from shoplm.app.review_replies import ReviewReplies

    root = Path(tempfile.mkdtemp(prefix="shoplm-bench-replies-"))
    try:
        store, settings = _build_store(Path(data) if data else None, seed, root)
        try:
            reviews = store.frame("reviews", ["review_id", "language", "rating"], order_by=["review_id"])
            ids = _sample(reviews, n, seed)
            index = ReviewReplies(store, settings).policy_index()
            backends, rows_by_backend = {}, {}
            for name, generator in _generators(endpoint, model, gguf):
                print(f"drafting {len(ids)} replies with {name} ...", file=sys.stderr)
                result = _draft_metrics(name, generator, store, settings, ids, index)
                backends[name], rows_by_backend[name] = result["metrics"], result["rows"]
        finally:
            store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    checker = checker_benchmark(rows_by_backend["template"], seed=seed)
    languages = Counter(r["language"] for r in rows_by_backend["template"])
    report = {
        "data": str(data) if data else f"demo seed {seed} ({_BENCH_SIZES})",
        "n_reviews": len(ids),
        "reviews_by_reply_language": dict(languages),
        "backends": backends,
        "checker": checker,
        "examples": [{k: r[k] for k in ("review_id", "language", "draft")} for r in rows_by_backend["template"][:4]],
    }
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        _chart(report, out.with_suffix(".png"))
    return report
