"""Cold users: recommendations for a user whose only signal is a first item or a first search query.

Two cases, both ranked against every item of the catalog (ties against the model, the history's
items removed first, as in the sequential benchmark):

``games``  Amazon Games users never seen in training (a random 20% of the users with at least
           three items are held out whole), cut to their first 1 or 2 items; the target is the
           next item. Sources are fitted on the other users' full sequences.
``demo``   The demo store's search sessions: for each user's first search, the query alone is the
           signal and the target is the first item viewed after it in that session. Popularity
           counts every other user's events.

Models: ``popularity`` (the peer a shop without a language model falls back to); ``text`` (the
engine's text source: e5 vectors of the item titles, and of the query in the search case);
``cooccurrence`` (item-to-item counts: collaborative, no text); ``engine`` (the engine's
reciprocal-rank fusion of its sources for the scene, ``home`` after items, ``search`` after a
query; business rules off).

    python benchmarks/seqrec/prepare_amazon_games.py ../shared/data/amazon-games /tmp/amazon-games-seq
    python benchmarks/seqrec/cold_users.py games --data /tmp/amazon-games-seq --out cold_users_games.json
    python benchmarks/seqrec/cold_users.py demo --out cold_users_demo.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.evaluate.metrics import ranking_metrics
from shoplm.interactions import Interactions
from shoplm.recommend import PopularityRecommender, TextSimilarityRecommender
from shoplm.recommend.bench import encode_item_texts, read_items, target_ranks
from shoplm.recommend.catalog import CatalogView
from shoplm.recommend.cooccurrence import CooccurrenceRecommender
from shoplm.recommend.engine import RecommendationEngine
from shoplm.recommend.sequential import SequentialRecommender

KS = (5, 10, 20)


def summarize(ranks: np.ndarray) -> dict[str, float]:
    return {k: round(v, 4) for k, v in ranking_metrics(ranks, KS).items() if not k.startswith("MRR")}


def rank_all(
    score: Callable[[Sequence[str]], np.ndarray], cases: Sequence[tuple[Sequence[str], str]], catalog: CatalogView
) -> np.ndarray:
    """Full-catalog ranks (history excluded) of each case's target under ``score(history)``."""
    ranks = []
    for start in range(0, len(cases), 512):
        chunk = cases[start : start + 512]
        scores = np.stack([score(history) for history, _ in chunk])
        targets = np.array([catalog.index.get(t, -1) for _, t in chunk])
        ranks.append(target_ranks(scores, targets, [catalog.positions(h) for h, _ in chunk]).exclude_history)
    return np.concatenate(ranks)


def engine_scores(engine: RecommendationEngine, scene: str, **context: Any) -> Callable[[Sequence[str]], np.ndarray]:
    """The engine's fused score over the catalog (-inf outside its candidates) for a history."""

    def score(history: Sequence[str]) -> np.ndarray:
        out = np.full(len(engine.catalog), -np.inf)
        candidates, _ranks, fused = engine.fuse(list(history), scene=scene, **context)
        out[candidates] = fused
        return out

    return score


def games(args: argparse.Namespace) -> dict[str, Any]:
    from shoplm.ingest.sequences import read_sequences

    sequences = {u: list(s) for u, s in read_sequences(args.data / "sequences.txt").items()}
    item_ids, texts = read_items(args.data / "items.tsv")
    vectors = encode_item_texts(texts, args.cache_dir, progress=True)
    rng = np.random.default_rng(args.seed)
    eligible = [u for u, s in sequences.items() if len(s) >= 3]
    held_out = set(rng.choice(eligible, int(len(eligible) * args.held_out_share), replace=False).tolist())
    users, items, stamps = [], [], []
    for user, seq in sequences.items():
        if user not in held_out:
            users += [user] * len(seq)
            items += seq
            stamps += list(range(len(seq)))
    train = Interactions.from_arrays(users, items, stamps)
    catalog = CatalogView.from_frame(pd.DataFrame({"item_id": item_ids, "title": texts}))
    started = time.process_time()
    sources: dict[str, Any] = {
        "popularity": PopularityRecommender().fit(train),
        "cooccurrence": CooccurrenceRecommender().fit(train),
        "text": TextSimilarityRecommender().fit(train, item_ids=item_ids, embeddings=vectors),
    }
    if args.sequential_minutes > 0:
        sources["sequential"] = SequentialRecommender(
            max_minutes=args.sequential_minutes, budget_clock="cpu", seed=args.seed
        ).fit(train, item_text_embeddings=vectors, item_ids=item_ids)
    fit_seconds = round(time.process_time() - started, 1)
    engine = RecommendationEngine(catalog, sources)
    cases_of = {k: [(sequences[u][:k], sequences[u][k]) for u in sorted(held_out)] for k in (1, 2)}
    if args.max_users:
        cases_of = {k: c[: args.max_users] for k, c in cases_of.items()}
    report: dict[str, Any] = {
        "case": "amazon-games users never seen in training, cut to their first 1 or 2 items; target: the next item",
        "protocol": f"full ranking over {len(catalog):,} items, history excluded, ties against the model",
        "data": {
            "users": len(sequences),
            "held_out_users": len(held_out),
            "training_events": len(train),
            "fit_cpu_seconds": fit_seconds,
        },
        "cuts": {},
    }
    for k, cases in cases_of.items():
        rows = {
            name: summarize(rank_all(lambda h, n=name: engine.catalog_scores(n, h), cases, catalog)) for name in sources
        }
        rows["engine"] = summarize(rank_all(engine_scores(engine, "home"), cases, catalog))
        report["cuts"][f"first_{k}"] = {"cases": len(cases), "models": rows}
        print(f"first {k} item(s), {len(cases):,} users:", json.dumps(rows))
    return report


def demo(args: argparse.Namespace) -> dict[str, Any]:
    from shoplm.demo.generator import generate_demo_store
    from shoplm.lm import load_encoder

    with tempfile.TemporaryDirectory() as tmp:
        manifest = generate_demo_store(Path(tmp), seed=args.seed)
        events = pd.read_parquet(manifest.files["events"])
        items = pd.read_csv(manifest.files["items"], dtype={"item_id": str})
    events = events.sort_values(["timestamp", "event_id"], kind="stable").reset_index(drop=True)
    searches = events[(events["event_type"] == "search") & events["query"].notna()]
    searches = searches[~searches["query"].str.contains("@")]  # a pasted email is no query
    first = searches.drop_duplicates("user_id")
    views = events[(events["event_type"] == "view") & events["item_id"].notna()]
    after = views.merge(first[["session_id", "timestamp", "query"]], on="session_id", suffixes=("", "_search"))
    after = after[after["timestamp"] >= after["timestamp_search"]].drop_duplicates("session_id")
    cases = list(zip(after["user_id"], after["query_search"], after["item_id"], strict=True))
    rng = np.random.default_rng(args.seed)
    if args.max_users and len(cases) > args.max_users:
        cases = [cases[i] for i in sorted(rng.choice(len(cases), args.max_users, replace=False))]
    test_users = {u for u, _, _ in cases}
    rest = events[~events["user_id"].isin(test_users) & events["item_id"].notna()]
    train = Interactions.from_arrays(rest["user_id"], rest["item_id"], rest["timestamp"])
    encoder = load_encoder("e5-onnx")
    item_text = items["title"].fillna("") + " " + items.get("category", pd.Series("", index=items.index)).fillna("")
    vectors = np.asarray(encoder.encode(item_text.tolist(), mode="passage"), dtype=np.float32)
    queries = np.asarray(encoder.encode([q for _, q, _ in cases], mode="query"), dtype=np.float32)
    catalog = CatalogView.from_frame(items)
    item_ids = items["item_id"].tolist()
    sources: dict[str, Any] = {
        "popularity": PopularityRecommender().fit(train),
        "text": TextSimilarityRecommender().fit(train, item_ids=item_ids, embeddings=vectors),
    }
    engine = RecommendationEngine(catalog, sources)
    targets = np.array([catalog.index.get(t, -1) for _, _, t in cases])
    no_history: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(cases)
    pop = np.tile(engine.catalog_scores("popularity", []), (len(cases), 1))
    text_scores = queries @ vectors.T
    fused = np.full((len(cases), len(catalog)), -np.inf)
    for r, q in enumerate(queries):
        candidates, _ranks, scores = engine.fuse([], scene="search", k=20, query_vector=q)
        fused[r, candidates] = scores
    rows = {
        name: summarize(target_ranks(s, targets, no_history).exclude_history)
        for name, s in (("popularity", pop), ("text", text_scores), ("engine", fused))
    }
    # how often the top 10 lies in the searched-for item's category (a softer reading of relevance)
    category = items.set_index("item_id")["category"]
    wanted = category.reindex([t for _, _, t in cases]).to_numpy()
    for name, s in (("popularity", pop), ("text", text_scores), ("engine", fused)):
        top = np.argsort(-s, axis=1)[:, :10]
        rows[name]["same_category@10"] = round(float((catalog.category[top] == wanted[:, None]).mean()), 4)
    print(json.dumps(rows))
    return {
        "case": "each demo user's first search: the query alone; target: the first item viewed after it in the session",
        "protocol": f"full ranking over {len(catalog):,} items, ties against the model",
        "data": {"cases": len(cases), "training_events": len(train)},
        "models": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=("games", "demo"))
    parser.add_argument("--data", type=Path, default=Path("/tmp/amazon-games-seq"), help="games: prepared directory")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/seqrec"))
    parser.add_argument("--held-out-share", type=float, default=0.2, help="games: share of users held out whole")
    parser.add_argument("--max-users", type=int, default=5000, help="cases per cut (0: all)")
    parser.add_argument(
        "--sequential-minutes", type=float, default=0.0, help="games: also a sequential model (CPU minutes)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report = games(args) if args.case == "games" else demo(args)
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
