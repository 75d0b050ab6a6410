"""``shoplm bench basket``: basket rules against popularity and co-occurrence, next item in the basket.

Protocol (any Online Retail-layout file):

1. Return lines (and so cancelled invoices) are left out; a basket is an invoice's distinct items.
2. Invoices are split by time: the last ``test_fraction`` of the time span is the test set,
   the rest trains. Settings are chosen on validation data carved from training the same way
   (the last ``test_fraction`` of the training span): ``min_support`` and ``max_len`` from
   :data:`SUPPORT_GRID` (unless ``min_support`` is given) and how a consequent is scored (confidence, lift or
   both), by HR@k of the rules backed by popularity; the co-occurrence peer's normalization
   is chosen on the same validation cases. The chosen settings are refitted on all training
   invoices.
3. Each test invoice with two or more items gives one case: one item, drawn at random, is
   hidden, and every method ranks items for the others (items in the basket excluded).
   A hit is the hidden item in the top ``k``; precision@k is hits / k; ``coverage`` is the
   share of cases where the method proposes anything.

Methods, all fitted on the same training invoices in the same run:

- ``rules``: :class:`~shoplm.segments.basket.BasketRules` alone (it may propose fewer than k);
- ``rules+popularity``: the rules' items first, the best sellers fill the rest;
- ``co-occurrence``: item-to-item co-occurrence counts of the training invoices, summed over
  the basket's items, normalized either as P(item | basket item) or as the cosine
  (count / sqrt(count_a × count_b)), whichever validation prefers; best sellers break ties;
- ``popularity``: the items in the most training invoices.

Example:
    >>> run_basket_benchmark("online_retail.csv.gz", "basket.json")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.errors import InputError
from shoplm.segments.basket import SCORINGS, BasketRules, sale_baskets

#: (min_support, max_len) tried on validation. Below 0.005, itemsets of three cost minutes and
#: hundreds of thousands of rules (0.0025: 147 s, 468,276 rules on Online Retail's training
#: part), so the lower support mines pairs only. Lower still does not pay: pairs at 0.001 took
#: 300 s for 340,804 rules and scored below 0.002 on validation (HR@10 0.258 against 0.263).
SUPPORT_GRID = ((0.02, 3), (0.01, 3), (0.005, 3), (0.002, 2))
METHODS = ("rules", "rules+popularity", "co-occurrence", "popularity")
Ranker = Callable[[list[str]], list[str]]


def split_by_time(frame: pd.DataFrame, test_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Invoice lines before and after the time that leaves the last ``test_fraction`` of the span."""
    invoice_time = frame.groupby("invoice_id")["timestamp"].transform("min")
    start, end = invoice_time.min(), invoice_time.max()
    cutoff = start + (end - start) * (1.0 - test_fraction)
    return frame[invoice_time < cutoff], frame[invoice_time >= cutoff], pd.Timestamp(cutoff)


def hide_one(baskets: pd.DataFrame, seed: int) -> list[tuple[list[str], str]]:
    """(other items, hidden item) per invoice of two or more distinct items; the hidden one drawn at random."""
    rng = np.random.default_rng(seed)
    cases = []
    for _, items in baskets.groupby("invoice_id", sort=True)["item_id"]:
        distinct = sorted(set(items))
        if len(distinct) >= 2:
            hidden = distinct[int(rng.integers(len(distinct)))]
            cases.append(([i for i in distinct if i != hidden], hidden))
    return cases


class _Peers:
    """Popularity and co-occurrence counts of training invoices, ranking items for a basket."""

    def __init__(self, baskets: pd.DataFrame) -> None:
        from scipy import sparse

        invoices, rows = np.unique(baskets["invoice_id"].to_numpy(), return_inverse=True)
        self.items, cols = np.unique(baskets["item_id"].to_numpy(), return_inverse=True)
        self.index = {item: i for i, item in enumerate(self.items.tolist())}
        table = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(invoices), len(self.items)))
        self.counts = np.asarray(table.sum(axis=0)).ravel()
        # P(b | a) for every pair (co-occurring invoices over a's invoices), and the cosine.
        together = (table.T @ table).tocsr()
        together.setdiag(0)
        together.eliminate_zeros()
        inverse = sparse.diags(1.0 / np.maximum(self.counts, 1.0))
        root = sparse.diags(1.0 / np.sqrt(np.maximum(self.counts, 1.0)))
        self.similarities = {"conditional": (inverse @ together).tocsr(), "cosine": (root @ together @ root).tocsr()}
        self.by_popularity = [str(i) for i in self.items[np.argsort(-self.counts, kind="stable")]]

    def popular(self, basket: Sequence[str], k: int, skip: set[str] | None = None) -> list[str]:
        taken = set(basket) | (skip or set())
        found = []
        for item in self.by_popularity:
            if item not in taken:
                found.append(item)
                if len(found) == k:
                    break
        return found

    def cooccurring(self, basket: Sequence[str], k: int, similarity: str = "conditional") -> list[str]:
        known = [self.index[i] for i in basket if i in self.index]
        if not known:
            return self.popular(basket, k)
        scores = np.asarray(self.similarities[similarity][known].sum(axis=0)).ravel()
        scores = scores + 1e-9 * self.counts / max(self.counts.max(), 1.0)  # best sellers break ties
        scores[known] = -np.inf
        top = np.argpartition(-scores, min(k, len(scores) - 1))[: k + 1]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [str(self.items[i]) for i in top if np.isfinite(scores[i])][:k]


def _rules_rankers(rules: BasketRules, peers: _Peers, k: int) -> dict[str, Ranker]:
    def alone(basket: list[str]) -> list[str]:
        return [item for item, _ in rules.recommend(basket, k)]

    def backed(basket: list[str]) -> list[str]:
        found = alone(basket)
        return found + peers.popular(basket, k - len(found), skip=set(found))

    return {"rules": alone, "rules+popularity": backed}


def score_cases(rankers: dict[str, Ranker], cases: list[tuple[list[str], str]], k: int) -> dict[str, dict[str, float]]:
    """HR@5, HR@k, precision@k and coverage of every ranker over the cases."""
    out = {}
    for name, rank in rankers.items():
        hits5 = hits = covered = 0
        for basket, hidden in cases:
            found = rank(basket)[:k]
            covered += bool(found)
            if hidden in found:
                hits += 1
                hits5 += found.index(hidden) < 5
        n = max(len(cases), 1)
        out[name] = {
            "HR@5": round(hits5 / n, 5),
            f"HR@{k}": round(hits / n, 5),
            f"precision@{k}": round(hits / n / k, 5),
            "coverage": round(covered / n, 5),
        }
    return out


def _choose(
    train: pd.DataFrame, test_fraction: float, grid: Sequence[tuple[float, int]], k: int, seed: int, say: Any
) -> dict:
    """The (min_support, max_len, scoring) with the best validation HR@k of rules+popularity."""
    fit_part, valid_part, _ = split_by_time(train, test_fraction)
    fit_baskets, _ = sale_baskets(fit_part)
    cases = hide_one(sale_baskets(valid_part)[0], seed)
    peers = _Peers(fit_baskets)
    table = []
    for support, max_len in grid:
        say(f"validation: mining rules at min_support {support}, itemsets of up to {max_len}")
        started = time.monotonic()
        model = BasketRules(min_support=support, max_len=max_len).fit(fit_part)
        seconds = time.monotonic() - started
        for scoring in SCORINGS:
            model.scoring = scoring
            found = score_cases(_rules_rankers(model, peers, k), cases, k)
            table.append(
                {
                    "min_support": support,
                    "max_len": max_len,
                    "scoring": scoring,
                    "rules": model.n_rules,
                    "fit_seconds": round(seconds, 2),
                    **{f"{m} {key}": v for m, row in found.items() for key, v in row.items()},
                }
            )
    key = f"rules+popularity HR@{k}"
    best = max(table, key=lambda row: (row[key], row[f"rules HR@{k}"]))
    # The co-occurrence peer gets the same care: its similarity is chosen on the same cases.
    peer_rankers: dict[str, Ranker] = {
        name: (lambda basket, name=name: peers.cooccurring(basket, k, name)) for name in peers.similarities
    }
    peer_table = {name: row[f"HR@{k}"] for name, row in score_cases(peer_rankers, cases, k).items()}
    chosen = {
        "min_support": best["min_support"],
        "max_len": best["max_len"],
        "scoring": best["scoring"],
        "cooccurrence_similarity": max(peer_table, key=lambda name: peer_table[name]),
    }
    return {"cases": len(cases), "table": table, "cooccurrence_HR": peer_table, "chosen": chosen}


def run_basket_benchmark(
    path: str | Path,
    out: str | Path | None = None,
    *,
    min_support: float | None = None,
    max_len: int = 3,
    test_fraction: float = 0.2,
    k: int = 10,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the benchmark of the module docstring on an Online Retail-layout CSV(.gz).

    Args:
        path: the transactions file.
        out: write the results JSON here and the chart beside it (``.png``).
        min_support: fix the rules' min_support (None: it and max_len are chosen on validation
            from :data:`SUPPORT_GRID`).
        max_len: the largest itemset when ``min_support`` is given.
        test_fraction: the share of the time span held out (and carved from training for validation).
        k: the cut-off of HR and precision.
        seed: draws the hidden items.
        progress: called with a line of text per step.

    Returns:
        The results (see the JSON written).
    """
    from shoplm.ingest.transactions import read_retail_transactions

    if not 0 < test_fraction < 1:
        raise InputError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
    if min_support is not None and not 0 < min_support <= 1:
        raise InputError(f"--min-support must be in (0, 1], got {min_support}")
    say = progress or (lambda _line: None)
    started = time.monotonic()
    retail = read_retail_transactions(path)
    frame = retail.frame
    seconds: dict[str, float] = {"read": round(time.monotonic() - started, 2)}
    train, test, cutoff = split_by_time(frame, test_fraction)
    if train.empty or test.empty:
        raise InputError("the file spans too little time to hold out its last part", path=path)

    mark = time.monotonic()
    grid = ((min_support, max_len),) if min_support is not None else SUPPORT_GRID
    validation = _choose(train, test_fraction, grid, k, seed, say)
    seconds["validation"] = round(time.monotonic() - mark, 2)
    chosen = validation["chosen"]

    say(f"mining rules on the training invoices at min_support {chosen['min_support']}")
    mark = time.monotonic()
    rules = BasketRules(min_support=chosen["min_support"], max_len=chosen["max_len"], scoring=chosen["scoring"]).fit(
        train
    )
    seconds["fit_rules"] = round(time.monotonic() - mark, 2)
    train_baskets, return_lines = sale_baskets(train)
    mark = time.monotonic()
    peers = _Peers(train_baskets)
    seconds["fit_peers"] = round(time.monotonic() - mark, 2)
    test_baskets, test_returns = sale_baskets(test)
    cases = hide_one(test_baskets, seed)
    if not cases:
        raise InputError("no test invoice has two or more items: nothing to predict", path=path)
    say(f"ranking {len(cases):,} test baskets")
    mark = time.monotonic()
    rankers: dict[str, Ranker] = {
        **_rules_rankers(rules, peers, k),
        "co-occurrence": lambda basket: peers.cooccurring(basket, k, chosen["cooccurrence_similarity"]),
        "popularity": lambda basket: peers.popular(basket, k),
    }
    results = score_cases(rankers, cases, k)
    seconds["rank_test"] = round(time.monotonic() - mark, 2)
    seconds["total"] = round(time.monotonic() - started, 2)
    report = {
        "data": {
            "file": str(path),
            "lines": len(frame),
            "dropped_lines": retail.dropped,
            "return_lines_left_out": return_lines + test_returns,
            "invoices": int(frame["invoice_id"].nunique()),
            "sale_invoices_train": int(train_baskets["invoice_id"].nunique()),
            "sale_invoices_test": int(test_baskets["invoice_id"].nunique()),
            "items_train": int(train_baskets["item_id"].nunique()),
            "cutoff": cutoff.isoformat(),
            "test_cases": len(cases),
            "hidden_item_unseen_in_training": round(float(np.mean([h not in peers.index for _, h in cases])), 4),
        },
        "protocol": f"time split (last {test_fraction:.0%} of the span is test); one item hidden per test invoice "
        f"of 2+ items, predicted from the others; HR@{k} and precision@{k}; settings chosen on validation "
        "carved from training the same way",
        "settings": {"k": k, "seed": seed, **chosen},
        "validation": validation,
        "rules": {
            "baskets": rules.n_baskets_,
            "frequent_itemsets": rules.n_itemsets_,
            "rules": rules.n_rules,
            "antecedent_sizes": {
                str(size): int(count)
                for size, count in zip(*np.unique(np.diff(rules.antecedent_offsets_), return_counts=True), strict=True)
            },
            "top_by_lift": rules.top_rules(10, by="lift"),
            "top_by_confidence": rules.top_rules(5, by="confidence"),
        },
        "models": results,
        "seconds": seconds,
    }
    if out is not None:
        target = Path(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        write_chart(report, target.with_suffix(".png"), rules)
    return report


def write_chart(report: dict[str, Any], path: Path, rules: BasketRules) -> None:
    """HR@k of every method (left) and the rules' support against confidence, coloured by lift (right)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    k = report["settings"]["k"]
    names = list(report["models"])
    figure, (bars, scatter) = plt.subplots(1, 2, figsize=(11, 4.2))
    values = [report["models"][n][f"HR@{k}"] for n in names]
    drawn = bars.bar(names, values, color=["#2a6f97", "#61a5c2", "#f4a261", "#adb5bd"][: len(names)])
    bars.bar_label(drawn, fmt="%.3f")
    bars.set_ylabel(f"HR@{k} (hidden item in the top {k})")
    bars.set_title(f"next item in the basket, {report['data']['test_cases']:,} test invoices")
    bars.tick_params(axis="x", labelsize=8)
    if rules.n_rules:
        points = scatter.scatter(rules.support_, rules.confidence_, c=np.log10(rules.lift_), s=8, cmap="viridis")
        figure.colorbar(points, ax=scatter, label="log10 lift")
    scatter.set_xscale("log")
    scatter.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap
    scatter.set_xlabel("support")
    scatter.set_ylabel("confidence")
    settings = report["settings"]
    scatter.set_title(f"{rules.n_rules:,} rules (min_support {settings['min_support']}, max_len {settings['max_len']})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
