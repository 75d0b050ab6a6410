"""Train the review-sentiment model shipped with shoplm (``src/shoplm/insight/data/sentiment``).

    OPENBLAS_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/sentiment/train_default.py \
        --data ../shared/data --out src/shoplm/insight/data/sentiment

Polarity is learned from ChnSentiCorp's training split (9,600 Chinese reviews, Apache-2.0) and
custrev (3,775 English review sentences, MIT): frozen multilingual-e5-small embeddings plus
character 1-3-grams, one logistic-regression head (shoplm.lm.classify.TextClassifier). The
ChnSentiCorp dev split is held out and scored after training (printed, and written to
``--report``). online_shopping_10_cats is not used: it contains ChnSentiCorp's dev and test texts.

The rating mapping (p_positive -> expected stars) is an isotonic regression fitted on the
rated reviews of a generated demo store (``shoplm.demo``, seed 0): the only reviews with star
ratings at hand. They are synthetic, so the mapping is a prior; a shop refits it on its own
rated reviews with ``ReviewSentiment.fit_ratings``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from shoplm.insight.sentiment import ReviewSentiment, prepare_review
from shoplm.lm.classify.bench import evaluate_predictions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import read_chnsenticorp, read_custrev


def demo_rated_reviews(n_users: int, seed: int) -> pd.DataFrame:
    from shoplm.demo.generator import DemoSizes, generate_demo_store

    with tempfile.TemporaryDirectory() as tmp:
        sizes = DemoSizes(n_items=300, n_users=n_users, n_events=40 * n_users)
        manifest = generate_demo_store(Path(tmp), seed=seed, sizes=sizes)
        return pd.read_json(manifest.files["reviews"], lines=True)[["text", "rating", "language"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("src/shoplm/insight/data/sentiment"))
    parser.add_argument("--cache-dir", type=Path, default=Path("shoplm-data/cache/embeddings"))
    parser.add_argument("--report", type=Path, default=Path("benchmarks/sentiment/default_model.json"))
    parser.add_argument("--ngram-features", type=int, default=20_000)
    parser.add_argument("--demo-users", type=int, default=2000)
    parser.add_argument("--zh-rows", type=int, default=0, help="only the first N ChnSentiCorp training rows (0: all)")
    args = parser.parse_args()
    started = time.perf_counter()
    zh, en = read_chnsenticorp(args.data, "train"), read_custrev(args.data)
    if args.zh_rows:
        zh = zh.head(args.zh_rows)
    train = pd.concat([zh, en], ignore_index=True)
    model = ReviewSentiment(ngram_features=args.ngram_features).use(args.cache_dir, threads=1)
    print(f"training on {len(zh):,} ChnSentiCorp + {len(en):,} custrev reviews", file=sys.stderr)
    model.fit(train["text"].tolist(), train["label"].tolist(), progress=True)
    rated = demo_rated_reviews(args.demo_users, seed=0)
    print(f"fitting the rating mapping on {len(rated):,} rated demo reviews", file=sys.stderr)
    model.fit_ratings(rated["text"].tolist(), rated["rating"].tolist())
    model.save(args.out)

    dev = read_chnsenticorp(args.data, "dev")
    # The dev texts as the product reads them (prepare_review), scored by the classifier itself.
    proba = model.classifier_.predict_proba([prepare_review(t, model.max_chars).text for t in dev["text"]])
    scores = evaluate_predictions(dev["label"].tolist(), proba, model.classifier_.labels)
    demo = model.predict(rated["text"].tolist())
    truth = ["positive" if r >= 4 else "negative" if r <= 2 else "neutral" for r in rated["rating"]]
    demo_acc = sum(r.polarity == t for r, t in zip(demo, truth, strict=True)) / len(truth)
    report = {
        "model_version": model.model_version,
        "n_train": model.n_train_,
        "n_rated": model.n_rated_,
        "cv_accuracy": model.classifier_.cv_accuracy_,
        "chnsenticorp_dev": {k: scores[k] for k in ("accuracy", "macro_f1", "ece")},
        "demo_polarity_accuracy_3class": demo_acc,
        "rating_mapping": {"p": model.rating_x_.tolist(), "rating": model.rating_y_.tolist()},
        "size_bytes": sum(p.stat().st_size for p in args.out.iterdir()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
