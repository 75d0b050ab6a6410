"""The one registry of candidate sources: name -> how to fit it, the scenes it serves, what it needs.

Everything that handles sources by name reads this registry: training fits the sources whose
needs the data meets, the scheduled refresh refits the ``refresh`` ones, the engine takes its
fusion weights per scene and its item-to-item sources from it, the ranker its feature order,
the seqrec bench its baselines, and a serving process loads the model directories named here.
So a new candidate source is one :class:`~shoplm.recommend.base.CandidateSource` class plus
one :class:`SourceComponent` entry in :data:`SOURCES`.

It lives on the domain floor (not in ``shoplm.app``) because the engine, a pure domain object,
reads it; the application floor reads it too.

Example:
    >>> [name for name in SOURCES]
    ['sequential', 'cooccurrence', 'als', 'text', 'popularity', 'bought_together']
    >>> SOURCES["text"].scenes["search"], SOURCES["cooccurrence"].anchored
    (1.0, True)
    >>> scene_weights()["cart"]["cooccurrence"]
    1.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

import numpy as np

from shoplm.interactions import Interactions
from shoplm.recommend.bought_together import BoughtTogetherRecommender

if TYPE_CHECKING:
    from shoplm.recommend.base import CandidateSource

#: What a source can need to be fitted: events, each item's category, item text vectors.
Need = Literal["interactions", "categories", "item_embeddings"]
SCENES: tuple[str, ...] = ("home", "item_detail", "cart", "search", "post_purchase")


@dataclass(frozen=True)
class TrainingInputs:
    """Everything a source's factory may read; which parts it reads is its ``needs``.

    Attributes:
        interactions: user-item events (bot bursts left out).
        categories: item id -> category path.
        item_ids, vectors: the item text embeddings (``None`` before ``shoplm encode``).
        seed: random seed.
        minutes: the training budget of time-capped (``budgeted``) sources.
        threads: CPU threads a source may use while training.
    """

    interactions: Interactions
    categories: Mapping[str, str] = field(default_factory=dict)
    item_ids: np.ndarray | None = None
    vectors: np.ndarray | None = None
    seed: int = 0
    minutes: float = 3.0
    threads: int = 1

    def has(self, need: Need) -> bool:
        """True if these inputs hold ``need``."""
        if need == "interactions":
            return len(self.interactions) > 0
        if need == "categories":
            return bool(self.categories)
        return self.item_ids is not None and self.vectors is not None and len(self.item_ids) > 0


@dataclass(frozen=True)
class SourceComponent:
    """One candidate source of the registry.

    Attributes:
        name: the source's name (its model directory, its key in fusion and in reasons).
        fit: builds and fits the source from :class:`TrainingInputs`.
        scenes: scene -> weight of the source in that scene's fusion (absent scenes: not used).
        needs: what ``fit`` reads; training skips the source when the data lacks any of it.
        anchored: an item-to-item source: in scenes with anchor items (item page, cart, after a
            purchase) it scores the anchors, not the whole history.
        searchable: scores items by text vectors, so it answers search queries and recommends
            items no other source knows yet (new items).
        refresh: cheap to refit: the service refits it from the store on a schedule.
        budgeted: its training is capped by ``settings.recommend.sequential_minutes``.
        personalized: False for sources that ignore the history (popularity): an item they
            put first is explained as popular, not as related to what the user viewed.
    """

    name: str
    fit: Callable[[TrainingInputs], CandidateSource]
    scenes: Mapping[str, float]
    needs: frozenset[Need] = frozenset({"interactions"})
    anchored: bool = False
    searchable: bool = False
    refresh: bool = False
    budgeted: bool = False
    personalized: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.scenes) - set(SCENES)
        if unknown:
            raise ValueError(f"source {self.name!r}: unknown scenes {sorted(unknown)}")

    def can_fit(self, inputs: TrainingInputs) -> bool:
        """True if ``inputs`` hold everything this source needs."""
        return all(inputs.has(need) for need in self.needs)


class SourceRegistry(Mapping[str, SourceComponent]):
    """An ordered, read-only name -> :class:`SourceComponent` mapping; :meth:`register` adds entries.

    Example:
        >>> registry = SourceRegistry()
        >>> registry.register(SourceComponent("dummy", fit=lambda inputs: None, scenes={"home": 0.5}))
        >>> list(registry), registry.weights("home")
        (['dummy'], {'dummy': 0.5})
    """

    def __init__(self) -> None:
        self._entries: dict[str, SourceComponent] = {}

    def register(self, component: SourceComponent) -> None:
        """Add a source; its name must be new."""
        if component.name in self._entries:
            raise ValueError(f"a source named {component.name!r} is registered already")
        self._entries[component.name] = component

    def __getitem__(self, name: str) -> SourceComponent:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def weights(self, scene: str) -> dict[str, float]:
        """Source -> fusion weight in ``scene`` (only sources that serve it)."""
        return {name: c.scenes[scene] for name, c in self._entries.items() if c.scenes.get(scene, 0.0) > 0}

    def anchored(self) -> frozenset[str]:
        """Names of the item-to-item sources."""
        return frozenset(name for name, c in self._entries.items() if c.anchored)

    def impersonal(self) -> frozenset[str]:
        """Names of the sources that ignore the history (see ``SourceComponent.personalized``)."""
        return frozenset(name for name, c in self._entries.items() if not c.personalized)

    def searchable(self) -> tuple[str, ...]:
        """Names of the sources that answer search queries from text vectors, in registry order."""
        return tuple(name for name, c in self._entries.items() if c.searchable)


# -- the sources ------------------------------------------------------------------------------
def _fit_sequential(inputs: TrainingInputs) -> CandidateSource:
    # torch is imported only by training (and by serving processes that score on torch).
    from shoplm.recommend.sequential import SequentialRecommender

    # Whitened text vectors learn faster (benchmarks/seqrec/README.md), given enough items to
    # estimate their covariance.
    vectors = inputs.vectors
    whiten = vectors is not None and vectors.ndim == 2 and len(vectors) >= 4 * vectors.shape[1]
    model = SequentialRecommender(
        max_minutes=inputs.minutes, seed=inputs.seed, num_threads=max(1, inputs.threads), whiten_text=whiten
    )
    return model.fit(inputs.interactions, item_text_embeddings=inputs.vectors, item_ids=inputs.item_ids)


def _fit_cooccurrence(inputs: TrainingInputs) -> CandidateSource:
    from shoplm.recommend.cooccurrence import CooccurrenceRecommender

    return CooccurrenceRecommender().fit(inputs.interactions)


def _fit_als(inputs: TrainingInputs) -> CandidateSource:
    from shoplm.recommend.matrix_factorization import ALSRecommender

    return ALSRecommender(random_state=inputs.seed).fit(inputs.interactions)


def _fit_text(inputs: TrainingInputs) -> CandidateSource:
    from shoplm.recommend.text_similarity import TextSimilarityRecommender

    interactions = inputs.interactions if len(inputs.interactions) else None
    return TextSimilarityRecommender().fit(interactions, item_ids=inputs.item_ids, embeddings=inputs.vectors)


def _fit_popularity(inputs: TrainingInputs) -> CandidateSource:
    from shoplm.recommend.popularity import PopularityRecommender

    return PopularityRecommender(by_category=True).fit(inputs.interactions, item_category=dict(inputs.categories))


SOURCES = SourceRegistry()
SOURCES.register(
    SourceComponent(
        "sequential",
        fit=_fit_sequential,
        scenes=MappingProxyType({"home": 1.0, "item_detail": 0.5, "cart": 0.8, "search": 0.25, "post_purchase": 0.8}),
        budgeted=True,
    )
)
SOURCES.register(
    SourceComponent(
        "cooccurrence",
        fit=_fit_cooccurrence,
        scenes=MappingProxyType({"home": 0.6, "item_detail": 1.0, "cart": 1.0, "search": 0.1, "post_purchase": 1.0}),
        anchored=True,
        refresh=True,
    )
)
SOURCES.register(
    SourceComponent(
        "als",
        fit=_fit_als,
        scenes=MappingProxyType({"home": 0.6, "item_detail": 0.2, "cart": 0.4, "search": 0.25, "post_purchase": 0.4}),
    )
)
SOURCES.register(
    SourceComponent(
        "text",
        fit=_fit_text,
        scenes=MappingProxyType({"home": 0.3, "item_detail": 0.8, "cart": 0.2, "search": 1.0, "post_purchase": 0.1}),
        needs=frozenset({"item_embeddings"}),
        anchored=True,
        searchable=True,
    )
)
SOURCES.register(
    SourceComponent(
        "popularity",
        fit=_fit_popularity,
        scenes=MappingProxyType({"home": 0.2, "item_detail": 0.1, "cart": 0.1, "search": 0.1, "post_purchase": 0.2}),
        needs=frozenset({"interactions", "categories"}),
        refresh=True,
        personalized=False,
    )
)

# Basket rules (FP-growth): what completes the newest basket; benchmarks/basket/README.md.
SOURCES.register(
    SourceComponent(
        "bought_together",
        fit=lambda inputs: BoughtTogetherRecommender().fit(inputs.interactions),
        scenes=MappingProxyType({"home": 0.4, "item_detail": 0.6, "cart": 1.0, "post_purchase": 1.0}),
        anchored=True,
        refresh=True,
    )
)


def scene_weights(registry: SourceRegistry = SOURCES) -> dict[str, dict[str, float]]:
    """Scene -> source -> fusion weight, for every scene.

    Args:
        registry: the sources (default: :data:`SOURCES`).

    Returns:
        A fresh dict the caller may change.
    """
    return {scene: registry.weights(scene) for scene in SCENES}


def fit_sources(
    inputs: TrainingInputs,
    *,
    registry: SourceRegistry = SOURCES,
    include: Callable[[SourceComponent], bool] = lambda component: not component.budgeted,
) -> dict[str, CandidateSource]:
    """Fit every registered source that ``include`` admits and the inputs can feed.

    Args:
        inputs: the training data.
        registry: the sources (default: :data:`SOURCES`).
        include: which components to fit; by default the cheap ones (not time-capped), which
            is what the ranker's leave-last-out training refits.

    Returns:
        Name -> fitted source, in registry order.
    """
    return {name: c.fit(inputs) for name, c in registry.items() if include(c) and c.can_fit(inputs)}
