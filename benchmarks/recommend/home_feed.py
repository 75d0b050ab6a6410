"""The home feed as a shopper sees it: items already seen against new ones, with and without the cap.

On a shop's store (the demo store: it holds views, which the Amazon files lack), each sampled
user's newest event is held out and every source and the ranker are fitted on the rest, as
`shoplm train` would. Then the home feed of ``k`` items is asked for each user under each cap
(``recommend.max_seen_share``: none, the default 0.34, 0) and measured:

- ``seen_share``: the share of feed items the user already viewed or bought (re-views);
- ``HR@k`` / ``NDCG@k``: the held-out next item in the feed (accuracy); ``HR@k_new_targets`` the
  same over the users whose next item was new to them (a discovery);
- ``novelty``: mean self-information ``-log2(share of users who touched the item)`` of the feed's items;
- ``coverage``: distinct items over all feeds / catalog size.

Example:
    shoplm demo --small --data-dir /tmp/fa
    python benchmarks/recommend/home_feed.py --data-dir /tmp/fa --users 1000 --k 6 --out home_feed.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from shoplm.app.jobs import read_training_inputs
from shoplm.app.recommender import business_rules
from shoplm.config import Settings
from shoplm.recommend.catalog import CatalogView
from shoplm.recommend.components import fit_sources
from shoplm.recommend.engine import RecommendationEngine
from shoplm.recommend.ranker import HybridRanker
from shoplm.store import Store


def _share(text: str) -> float | None:
    return None if text == "none" else float(text)


def measure(data_dir: Path, *, users: int, k: int, shares: list[float | None], seed: int = 0) -> dict[str, Any]:
    """Fit on everything but each sampled user's newest event, then measure the home feed per cap."""
    settings = Settings(data_dir=data_dir)
    store = Store.open(settings.database_url)
    try:
        everything, catalog_frame = read_training_inputs(store, settings)
    finally:
        store.close()
    interactions = everything.interactions
    sequences = interactions.sequences()
    eligible = sorted(u for u, items in sequences.items() if len(items) > 3)
    rng = np.random.default_rng(seed)
    chosen = [str(u) for u in rng.choice(eligible, min(users, len(eligible)), replace=False)]
    train, targets = interactions.hold_out_last(set(chosen))
    inputs = dataclasses.replace(everything, interactions=train)
    catalog = CatalogView.from_frame(catalog_frame)
    started = time.perf_counter()
    sources = fit_sources(inputs, include=lambda component: True)
    ranker = HybridRanker(seed=seed).fit(
        train,
        catalog=catalog,
        source_factory=lambda part: fit_sources(dataclasses.replace(inputs, interactions=part)),
    )
    fit_seconds = time.perf_counter() - started
    engine = RecommendationEngine(catalog, sources, ranker=ranker)
    histories = train.sequences()
    touched: dict[str, int] = {}
    for items in histories.values():
        for item in set(items):
            touched[item] = touched.get(item, 0) + 1
    n_users = max(len(histories), 1)
    target_seen = float(np.mean([targets[u] in set(histories.get(u, [])) for u in chosen]))
    rows: dict[str, Any] = {}
    for share in shares:
        hits, gains, seen, information, shown, new_hits = [], [], [], [], set(), []
        for user in chosen:
            history = histories.get(user, [])
            rules = dataclasses.replace(business_rules(settings), max_seen_share=share)
            feed = [r.item_id for r in engine.recommend(history, scene="home", k=k, rules=rules)]
            if not feed:
                continue
            known = set(history)
            seen.append(sum(i in known for i in feed) / len(feed))
            rank = feed.index(targets[user]) if targets[user] in feed else None
            hits.append(rank is not None)
            if targets[user] not in known:  # the next item is a discovery: did the feed offer it?
                new_hits.append(rank is not None)
            gains.append(0.0 if rank is None else 1.0 / math.log2(rank + 2))
            information.extend(-math.log2(max(touched.get(i, 0), 1) / n_users) for i in feed)
            shown.update(feed)
        rows["none" if share is None else f"{share:g}"] = {
            "seen_share": round(float(np.mean(seen)), 4),
            f"HR@{k}": round(float(np.mean(hits)), 4),
            f"NDCG@{k}": round(float(np.mean(gains)), 4),
            f"HR@{k}_new_targets": round(float(np.mean(new_hits)), 4) if new_hits else None,
            "novelty_bits": round(float(np.mean(information)), 3),
            "coverage": round(len(shown) / max(len(catalog), 1), 4),
            "users": len(hits),
        }
    return {
        "protocol": f"newest event of {len(chosen)} sampled users held out; sources and ranker fitted on the rest",
        "k": k,
        "held_out_target_already_seen": round(target_seen, 4),
        "fit_seconds": round(fit_seconds, 1),
        "caps": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="a trained shop (e.g. the demo store)")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--k", type=int, default=6, help="feed length (the dashboard's home feed shows 6)")
    parser.add_argument("--shares", default="none,0.34,0", help="caps to compare; none: no cap")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = measure(args.data_dir, users=args.users, k=args.k, shares=[_share(s) for s in args.shares.split(",")])
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
