"""Store-bound batch stages that fan out, here or on Ray, through one code path.

Each stage splits its work into chunks and hands a plain module-level function to
:func:`shoplm.fanout.map_chunks`: without ``ray_address`` the chunks run one after another in
this process, with it (``"local"``, or a cluster's address) each chunk is a Ray task running the
*same* function. So a stage's result does not depend on where it ran:

- :class:`FannedOutEncoder` encodes texts (item titles, review texts) in chunks; each worker
  process loads the encoder once and keeps it for the next chunks (``shoplm encode --ray``).
- :func:`precompute_candidates` scores every user's home candidate list with the live model
  version and stores it where serving reads it (``shoplm precompute --ray``); each worker loads
  the models once per job.
- :func:`prepare_interactions` builds the training interactions from the events, chunked by
  user (``shoplm train --ray``).

The per-SKU forecast fans out the same way in :func:`shoplm.app.analytics.run_forecast`.

Example:
    >>> import pandas as pd
    >>> events = pd.DataFrame({"user_id": ["b", "a", "b"], "item_id": ["x", "y", "z"],
    ...                        "event_type": ["view", "purchase", "view"], "ts_ms": [3, 2, 1]})
    >>> prepare_interactions(events, n_tasks=2).sequences()
    {'a': ['y'], 'b': ['z', 'x']}
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoplm.config import EncoderSettings, Settings
from shoplm.errors import InputError
from shoplm.fanout import LOCAL, chunked, connect_ray, map_chunks
from shoplm.interactions import Interactions
from shoplm.lm.encoder import Mode, TextEncoder, check_mode, check_texts
from shoplm.store import Store

__all__ = [
    "FannedOutEncoder",
    "ScoringJob",
    "catalog_encoder",
    "encode_chunk",
    "interactions_chunk",
    "precompute_candidates",
    "prepare_interactions",
    "score_users",
]

Progress = Callable[[int, int], None]

# What a worker process keeps between the chunks it runs: one encoder per encoder setting, and
# the engine of the scoring job it last ran. In the driver (no Ray) these serve the local run.
_WORKER_ENCODERS: dict[str, TextEncoder] = {}
_WORKER_ENGINE: dict[str, Any] = {}


# -- encoding ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncodeChunk:
    """One task of batch encoding: which encoder, how many threads it may use, which texts."""

    encoder: EncoderSettings
    texts: list[str]
    mode: Mode = "passage"
    threads: int = 1


def _worker_encoder(settings: EncoderSettings, threads: int) -> TextEncoder:
    from shoplm.lm import load_encoder

    key = f"{settings.model_dump_json()}|{threads}"
    encoder = _WORKER_ENCODERS.get(key)
    if encoder is None:
        encoder = _WORKER_ENCODERS[key] = load_encoder(settings, cache=False, threads=threads)
    return encoder


def encode_chunk(chunk: EncodeChunk) -> np.ndarray:
    """The vectors of one chunk of texts, by the worker's encoder (loaded on its first chunk)."""
    return _worker_encoder(chunk.encoder, chunk.threads).encode(chunk.texts, mode=chunk.mode)


class FannedOutEncoder(TextEncoder):
    """A :class:`TextEncoder` whose :meth:`encode` splits the texts into chunks encoded by workers.

    Its ``model_id`` is the inner encoder's, so its vectors share the embedding cache with a
    plain encoder of the same model (they are the same vectors, within float tolerance).

    Args:
        encoder: the encoder's settings (name, batch size, ONNX directory).
        ray_address: None to encode here, chunk after chunk; ``"local"`` or an address for Ray.
        chunk_size: texts per task.
        threads: threads each worker's encoder uses (a Ray task reserves one CPU).
        connect_timeout: seconds to wait for a Ray cluster.

    Example:
        >>> FannedOutEncoder(EncoderSettings(name="minilm")).encode(["red dress", "blue mug"]).shape
        (2, 384)
    """

    def __init__(
        self,
        encoder: EncoderSettings,
        *,
        ray_address: str | None = None,
        chunk_size: int = 512,
        threads: int = 1,
        connect_timeout: float = 10.0,
    ) -> None:
        if chunk_size < 1:
            raise InputError(f"chunk_size must be at least 1, not {chunk_size}")
        self.settings = encoder
        self.ray_address = ray_address
        self.chunk_size = chunk_size
        self.threads = threads
        self.connect_timeout = connect_timeout
        if ray_address and ray_address != LOCAL:
            # A wrong cluster address is refused now, even when the cache leaves nothing to encode.
            connect_ray(ray_address, connect_timeout=connect_timeout)
        probe = _worker_encoder(encoder, threads)  # models load lazily: this reads names only
        self.model_id = probe.model_id
        self.symmetric = probe.symmetric
        self.batch_size = probe.batch_size

    @property
    def dim(self) -> int:
        return _worker_encoder(self.settings, self.threads).dim

    def encode(
        self,
        texts: Sequence[str],
        *,
        mode: Mode = "passage",
        batch_size: int | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        texts = check_texts(texts)
        mode = check_mode(mode)
        chunks = [
            EncodeChunk(self.settings, texts[start : start + self.chunk_size], mode, self.threads)
            for start in range(0, len(texts), self.chunk_size)
        ]
        if not chunks:
            return np.empty((0, self.dim), dtype=np.float32)
        parts = map_chunks(encode_chunk, chunks, ray_address=self.ray_address, connect_timeout=self.connect_timeout)
        return np.concatenate(parts).astype(np.float32, copy=False)


def catalog_encoder(settings: Settings, ray_address: str | None, *, chunk_size: int = 512) -> TextEncoder:
    """The shop's encoder fanned out to workers, behind the shop's embedding cache.

    Only texts the cache lacks reach the workers; they come back in rounds of 16 chunks, each
    round written to the cache, so an interrupted run keeps what it finished.
    """
    from shoplm.lm.cache import CachedEncoder

    inner = FannedOutEncoder(
        settings.encoder,
        ray_address=ray_address,
        chunk_size=chunk_size,
        connect_timeout=settings.ray.connect_timeout_seconds,
    )
    return CachedEncoder(inner, settings.cache_dir / "embeddings", flush_every=16 * chunk_size)


# -- batch scoring ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoringJob:
    """What every scoring task shares (shipped to Ray's object store once per job).

    Attributes:
        token: this job's id: a worker builds the engine once per token.
        version_dir: the model version directory (on a cluster: a path every node can read).
        catalog: the store's catalog frame.
        settings: the shop's settings (business rules, candidates per source).
        k: answer length.
        synced_ids, synced_vectors: catalog items newer than the models, with their text
            vectors, given to the text source as a serving process does at load.
    """

    token: str
    version_dir: str
    catalog: pd.DataFrame
    settings: Settings
    k: int = 10
    synced_ids: list[str] = field(default_factory=list)
    synced_vectors: np.ndarray | None = None


def _job_engine(job: ScoringJob) -> Any:
    from threadpoolctl import threadpool_limits

    from shoplm.app.recommender import load_engine

    engine = _WORKER_ENGINE.get(job.token)
    if engine is None:
        threadpool_limits(limits=1, user_api="blas")  # one task per CPU: BLAS threads would only wait
        _WORKER_ENGINE.clear()  # one job's models at a time
        engine, _versions = load_engine(Path(job.version_dir), job.catalog, job.settings)
        if job.synced_ids and engine.text_source is not None:
            engine.sources[engine.text_source].add_items(job.synced_ids, job.synced_vectors)
            engine.refresh_alignment()
        _WORKER_ENGINE[job.token] = engine
    return engine


def score_users(job: ScoringJob, users: list[tuple[str, list[str], list[str]]]) -> list[dict[str, Any]]:
    """Home answers of one chunk of users: ``(user_id, history, purchased)`` each.

    Returns:
        ``{"user_id", "basis", "items"}`` per user, ``items`` as :meth:`Recommendation.to_dict`.
    """
    from shoplm.app.recommender import history_basis

    engine = _job_engine(job)
    rows = []
    for user_id, history, purchased in users:
        answer = engine.recommend(history, scene="home", k=job.k, purchased=purchased)
        rows.append(
            {"user_id": user_id, "basis": history_basis(history, purchased), "items": [r.to_dict() for r in answer]}
        )
    return rows


def precompute_candidates(
    store: Store,
    settings: Settings,
    *,
    k: int = 10,
    users_per_task: int = 5_000,
    ray_address: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score every user's home candidate list with the live model version and store them all.

    Serving (:meth:`ShopRecommender.recommend`) answers a home request from the stored list
    while the user's history is the one it was scored from and the models are unchanged, so
    the lists are exactly what serving would compute.

    Args:
        store: the shop's store.
        settings: the shop's settings.
        k: answer length stored per user.
        users_per_task: users scored per task.
        ray_address: None to score here; ``"local"`` or an address to score on Ray.
        progress: called with (tasks done, tasks in all).

    Returns:
        ``{"users", "tasks", "version", "ran_on", "seconds"}``.

    Raises:
        InputError: ``k`` or ``users_per_task`` below 1, or no user has events.
        ModelFileError: no trained models yet (``shoplm train``).
    """
    from shoplm.app.recommender import ShopRecommender, split_history
    from shoplm.app.registry import ModelRegistry

    if k < 1 or users_per_task < 1:
        raise InputError(f"k and users_per_task must be at least 1, not {k} and {users_per_task}")
    started = time.perf_counter()
    shop = ShopRecommender.load(store, settings)  # the serving view: version, synced new items
    root = ModelRegistry(settings.models_dir).versions_dir / shop.version
    text = shop.engine.sources.get(shop.engine.text_source) if shop.engine.text_source else None
    synced_vectors = None
    if shop.synced_items and text is not None:
        index = text.item_index()
        synced_vectors = text.embeddings_[[index[i] for i in shop.synced_items]]
    users = store.events.frame(("user_id",), with_bots=False)["user_id"].drop_duplicates().astype(str).tolist()
    if not users:
        raise InputError("no user has events yet: ingest events first")
    limit = settings.recommend.history_length
    cases = [(user, *split_history(store.events.history(user, limit=limit))) for user in users]
    job = ScoringJob(
        token=uuid.uuid4().hex,
        version_dir=str(root),
        catalog=_catalog_frame(store),
        settings=settings,
        k=k,
        synced_ids=list(shop.synced_items),
        synced_vectors=synced_vectors,
    )
    chunks = chunked(cases, max(1, -(-len(cases) // users_per_task)))
    parts = map_chunks(
        score_users,
        chunks,
        shared=job,
        ray_address=ray_address,
        connect_timeout=settings.ray.connect_timeout_seconds,
        progress=progress,
    )
    written = store.candidates.replace(shop.version, (row for part in parts for row in part))
    return {
        "users": written,
        "tasks": len(chunks),
        "version": shop.version,
        "ran_on": "ray" if ray_address else "local",
        "seconds": round(time.perf_counter() - started, 2),
    }


def _catalog_frame(store: Store) -> pd.DataFrame:
    from shoplm.recommend.catalog import CATALOG_COLUMNS

    return store.items.catalog(CATALOG_COLUMNS)


# -- training-data preparation ---------------------------------------------------------------
def interactions_chunk(events: pd.DataFrame) -> Interactions:
    """The interactions of one chunk of users' events (what :meth:`Interactions.from_frame` builds)."""
    return Interactions.from_frame(events)


def prepare_interactions(
    events: pd.DataFrame,
    *,
    n_tasks: int = 8,
    ray_address: str | None = None,
    connect_timeout: float = 10.0,
    progress: Progress | None = None,
) -> Interactions:
    """:meth:`Interactions.from_frame` of ``events``, built in ``n_tasks`` chunks of whole users.

    The users are cut, in sorted order, into contiguous ranges of about equal event counts; each
    chunk keeps its events in their original order, so the chunks' results laid end to end are
    exactly the interactions built in one piece.

    Args:
        events: a store events frame (``user_id, item_id, ts_ms`` and optionally ``event_type``).
        n_tasks: how many chunks.
        ray_address: None to build them here; ``"local"`` or an address to build them on Ray.
        connect_timeout: seconds to wait for a Ray cluster.
        progress: called with (chunks done, chunks in all).

    Returns:
        The interactions, sorted by (user, time).
    """
    if n_tasks < 1:
        raise InputError(f"n_tasks must be at least 1, not {n_tasks}")
    if "user_id" not in events.columns:
        raise InputError("events frame lacks column(s) ['user_id']")
    codes, uniques = pd.factorize(events["user_id"].astype(str), sort=True)
    counts = np.bincount(codes, minlength=len(uniques))
    # The first user of each chunk after the first: where the running event count crosses k/n.
    cuts = np.searchsorted(np.cumsum(counts), np.arange(1, n_tasks) * len(events) / n_tasks, side="right")
    task_of_user = np.zeros(len(uniques), dtype=np.int64)
    for cut in np.unique(cuts[(cuts > 0) & (cuts < len(uniques))]):
        task_of_user[cut:] += 1
    task = task_of_user[codes]
    order = np.argsort(task, kind="stable")
    bounds = np.searchsorted(task[order], np.arange(task.max(initial=0) + 2))
    frames = [events.iloc[order[a:b]] for a, b in itertools.pairwise(bounds) if b > a]
    if not frames:
        return Interactions.from_frame(events)
    parts = map_chunks(
        interactions_chunk, frames, ray_address=ray_address, connect_timeout=connect_timeout, progress=progress
    )
    return Interactions(
        np.concatenate([p.user_id for p in parts]),
        np.concatenate([p.item_id for p in parts]),
        np.concatenate([p.ts_ms for p in parts]),
        np.concatenate([p.weight for p in parts]),
    )
