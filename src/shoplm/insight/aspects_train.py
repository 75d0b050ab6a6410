"""Train the shipped :class:`~shoplm.insight.aspects.AspectExtractor`, its settings chosen on development sentences.

Training data:

- the hand-labelled development sentences (``benchmarks/aspects/aspects_dev.jsonl``: never the
  reported ``aspects_eval.jsonl``);
- the seed phrases shipped with the package (few-shot);
- optionally weakly labelled review texts for the polarity head: sentence sentiment labels of
  ``custrev.all`` (English, ``label sentence`` lines) and review labels of
  ``online_shopping_10_cats.csv`` (Chinese, ``cat,label,review``). Any text containing (or
  equal to) a sentence of an ``exclude`` file is dropped first, so the reported set never
  leaks into training.

Settings (the amount of weak data, the category threshold) are chosen by k-fold cross-validation
over the development sentences: each fold is scored by a model trained on the other folds.

Example:
    >>> model, selection = train_aspect_extractor(Path("aspects_dev.jsonl"))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shoplm.errors import InputError
from shoplm.insight.aspects import AspectExtractor
from shoplm.insight.aspects_bench import load_aspect_file, score_system

__all__ = ["read_weak_polarity", "train_aspect_extractor"]

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
#: zero-shot grids: cosine similarity to a category prototype, positive-minus-negative similarity
ZERO_SHOT_THRESHOLDS = (0.84, 0.86, 0.88, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95)
ZERO_SHOT_MARGINS = (0.0, 0.005, 0.01, 0.02)


def read_weak_polarity(
    path: str | Path, *, exclude: Sequence[str] = (), limit: int = 1000, seed: int = 0, max_chars: int = 120
) -> list[tuple[str, str]]:
    """``(text, "positive"|"negative")`` pairs from a ``label sentence`` file or a ``cat,label,review`` CSV.

    Texts longer than ``max_chars`` and texts containing any ``exclude`` sentence are dropped;
    then ``limit`` are drawn at random (``seed``), balanced between the two labels.

    Raises:
        InputError: the file is missing or has neither layout.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    pairs: list[tuple[str, str]] = []
    if path.suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"label", "review"} <= set(reader.fieldnames):
                raise InputError("a CSV needs the columns label and review", path=path)
            pairs = [(row["review"] or "", row["label"]) for row in reader]
    else:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            label, _, text = line.partition(" ")
            pairs.append((text, label))
    blocked = [s for s in exclude if s]
    kept: dict[str, list[str]] = {"positive": [], "negative": []}
    for text, label in pairs:
        text = text.strip()
        polarity = {"1": "positive", "0": "negative"}.get(str(label).strip())
        if polarity is None or not text or len(text) > max_chars:
            continue
        if any(s in text or text in s for s in blocked):
            continue
        kept[polarity].append(text)
    rng = random.Random(seed)
    out = []
    for polarity, texts in kept.items():
        rng.shuffle(texts)
        out += [(t, polarity) for t in texts[: limit // 2]]
    rng.shuffle(out)
    return out


def _folds(n: int, k: int, seed: int) -> list[int]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    fold = [0] * n
    for rank, i in enumerate(order):
        fold[i] = rank % k
    return fold


def train_aspect_extractor(
    dev: str | Path,
    *,
    weak_files: Sequence[str | Path] = (),
    exclude: Sequence[str | Path] = (),
    weak_sizes: Sequence[int] = (0, 1000),
    folds: int = 4,
    cache_dir: str | Path | None = None,
    threads: int | None = 1,
    seed: int = 0,
) -> tuple[AspectExtractor, dict[str, Any]]:
    """Choose settings by cross-validation on ``dev``, then fit on all of it; returns (model, selection report).

    Args:
        dev: labelled development sentences (JSONL or SemEval XML).
        weak_files: weakly labelled polarity files (see :func:`read_weak_polarity`), per language.
        exclude: labelled files whose sentences must never be trained on (the reported set).
        weak_sizes: candidate numbers of weak texts per file.
        folds: cross-validation folds over ``dev``.
        cache_dir: the embedding cache; threads: encoder threads.
        seed: folds and sampling.
    """
    sentences = load_aspect_file(dev)
    blocked = [row["text"] for path in (*exclude, dev) for row in load_aspect_file(path)]
    weak_pool = {size: [] for size in weak_sizes}
    for size in weak_sizes:
        for path in weak_files:
            weak_pool[size] += read_weak_polarity(path, exclude=blocked, limit=size, seed=seed) if size else []
    assignment = _folds(len(sentences), folds, seed)
    trials = []
    for size in weak_sizes:
        held_scores: dict[float, list[dict[str, Any]]] = {t: [] for t in THRESHOLDS}
        for f in range(folds):
            train = [s for s, a in zip(sentences, assignment, strict=True) if a != f]
            held = [s for s, a in zip(sentences, assignment, strict=True) if a == f]
            model = AspectExtractor(seed=seed).use(cache_dir, threads=threads).fit(train, weak=weak_pool[size])
            for threshold in THRESHOLDS:
                model.category_threshold = threshold
                held_scores[threshold].append(score_system(model, held))
            print(f"weak {size}: fold {f + 1}/{folds} done", file=sys.stderr, flush=True)
        for threshold, scores in held_scores.items():
            trial = {
                "weak_per_file": size,
                "category_threshold": threshold,
                "accuracy": sum(s["accuracy"] for s in scores) / len(scores),
                "macro_f1": sum(s["macro_f1"] for s in scores) / len(scores),
                "category_f1": sum(s["category_f1"] or 0.0 for s in scores) / len(scores),
            }
            trials.append(trial)
    # Polarity and categories are chosen apart: the weak data only feeds the polarity head and the
    # threshold only the category decision.
    best_weak = max(
        weak_sizes, key=lambda s: max(t["macro_f1"] + t["accuracy"] for t in trials if t["weak_per_file"] == s)
    )
    best_threshold = max((t for t in trials if t["weak_per_file"] == best_weak), key=lambda t: t["category_f1"])[
        "category_threshold"
    ]
    model = AspectExtractor(category_threshold=best_threshold, seed=seed).use(cache_dir, threads=threads)
    model.fit(sentences, weak=weak_pool[best_weak])
    # The zero-shot path learns nothing from dev: its two settings are picked on all of it.
    zero_shot = []
    for threshold in ZERO_SHOT_THRESHOLDS:
        for margin in ZERO_SHOT_MARGINS:
            model.zero_shot_threshold, model.zero_shot_margin = threshold, margin
            scores = score_system(model, sentences, "zero_shot")
            zero_shot.append(
                {
                    "threshold": threshold,
                    "margin": margin,
                    **{k: scores[k] for k in ("accuracy", "macro_f1", "category_f1")},
                }
            )
    model.zero_shot_threshold = max(zero_shot, key=lambda z: z["category_f1"] or 0.0)["threshold"]
    model.zero_shot_margin = max(zero_shot, key=lambda z: z["accuracy"] + z["macro_f1"])["margin"]
    selection = {
        "dev": str(dev),
        "folds": folds,
        "trials": trials,
        "zero_shot_trials": zero_shot,
        "chosen": {
            "weak_per_file": best_weak,
            "category_threshold": best_threshold,
            "zero_shot_threshold": model.zero_shot_threshold,
            "zero_shot_margin": model.zero_shot_margin,
        },
        "n_weak": len(weak_pool[best_weak]),
        # The data sets by name (folder/file), not where this machine keeps them: the report ships.
        "weak_files": [f"{Path(p).parent.name}/{Path(p).name}" for p in weak_files],
        "excluded_files": [str(p) for p in exclude],
    }
    return model, selection
