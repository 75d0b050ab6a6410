"""The recommendation engine: candidate sources + ranker + business rules, per scene, with reasons.

One call, :meth:`RecommendationEngine.recommend`, serves every scene:

- ``home``: personalized from the live history;
- ``item_detail``: items similar to and bought together with ``item_id``;
- ``cart``: complements of the cart (other categories first);
- ``search``: items matching a query text (language-model embedding), re-ranked by the user;
- ``post_purchase``: complements of what was just bought, never the same kind again.

The history is read at request time, so events seconds old change the next answer; the
engine holds models, not users.

Example:
    >>> import numpy as np, pandas as pd
    >>> from shoplm.recommend import Interactions, CooccurrenceRecommender
    >>> catalog = CatalogView.from_frame(pd.DataFrame({"item_id": list("abc"), "title": ["A", "B", "C"]}))
    >>> data = Interactions.from_arrays(["u1", "u1", "u2", "u2"], ["a", "b", "a", "b"])
    >>> engine = RecommendationEngine(catalog, {"cooccurrence": CooccurrenceRecommender(min_count=1).fit(data)})
    >>> [r.item_id for r in engine.recommend(["a"], k=1)]
    ['b']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from shoplm.errors import InputError
from shoplm.recommend.base import CandidateSource
from shoplm.recommend.catalog import CatalogView, align
from shoplm.recommend.components import SCENES, SOURCES, SourceRegistry
from shoplm.recommend.components import scene_weights as default_weights
from shoplm.recommend.rules import BusinessRules, cap_seen, diversify
from shoplm.recommend.topk import top_positions

Scene = Literal["home", "item_detail", "cart", "search", "post_purchase"]
__all__ = ["SCENES", "Recommendation", "RecommendationEngine", "Scene"]

#: Reciprocal-rank-fusion constant: damps the difference between rank 1 and rank 5.
RRF_K = 60.0
SEARCH_RRF_K = 5.0


@dataclass(frozen=True)
class Recommendation:
    """One recommended item with its score and a short reason a shopper can read."""

    item_id: str
    score: float
    reason: str
    title: str = ""
    sources: dict[str, int] = field(default_factory=dict)  # source -> rank of the item there (1-based)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "score": round(self.score, 6),
            "reason": self.reason,
            "sources": self.sources,
        }


class RecommendationEngine:
    """Blends candidate sources for a scene and applies rules. Holds models, never user state.

    ``sources`` maps names of the source ``registry`` (:data:`~shoplm.recommend.components.SOURCES`
    by default) to fitted :class:`CandidateSource` objects; the registry gives each its fusion
    weight per scene and says which relate items to items (anchored) and which one answers search
    queries and new items from text vectors (searchable). ``ranker`` (optional) re-scores the
    fused candidates with learned weights; without it reciprocal-rank fusion decides.
    """

    def __init__(
        self,
        catalog: CatalogView,
        sources: dict[str, CandidateSource],
        *,
        rules: BusinessRules | None = None,
        ranker: Any = None,
        query_encoder: Callable[[str], np.ndarray] | None = None,
        candidates_per_source: int = 50,
        scene_weights: dict[str, dict[str, float]] | None = None,
        registry: SourceRegistry = SOURCES,
    ) -> None:
        if not sources:
            raise InputError("the engine needs at least one fitted candidate source")
        for name, source in sources.items():
            source.check_fitted()
            if not isinstance(source, CandidateSource):
                raise InputError(f"source {name!r} is not a CandidateSource")
        self.catalog = catalog
        self.sources = dict(sources)
        self.rules = rules or BusinessRules()
        self.ranker = ranker
        self.query_encoder = query_encoder
        self.candidates_per_source = candidates_per_source
        self.scene_weights = scene_weights or default_weights(registry)
        self.anchored = registry.anchored()
        self.impersonal = registry.impersonal()
        # The source that scores items by their text: search queries and new items go to it.
        self.text_source = next((name for name in registry.searchable() if name in self.sources), None)
        self._alignments: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.refresh_alignment()

    # -- catalog and sources ----------------------------------------------------------------
    def refresh_alignment(self) -> None:
        """Recompute how each source's items map onto the catalog (after items or models change)."""
        # Answers computed before a change are stale: caches key them by this number.
        self.generation = getattr(self, "generation", 0) + 1
        self._alignments = {name: align(source.item_ids_, self.catalog) for name, source in self.sources.items()}
        self._identity = {name: _is_identity(a, len(self.catalog)) for name, a in self._alignments.items()}
        self._text_only = self._positions_only_text_knows()
        self._text_catalog_index = np.zeros(0, dtype=np.int64)

    def _positions_only_text_knows(self) -> np.ndarray:
        """Catalog positions of items no source but the text source knows: new items, recommendable by text."""
        text = self.text_source
        if text is None or text not in self._alignments:
            return np.zeros(0, dtype=np.int64)
        others = [positions for name, (_, positions) in self._alignments.items() if name != text]
        known = np.unique(np.concatenate(others)) if others else np.zeros(0, dtype=np.int64)
        return np.setdiff1d(self._alignments[text][1], known)

    def replace_source(self, name: str, source: CandidateSource) -> None:
        """Swap one source for a refreshed one (atomic for readers: one dict assignment)."""
        source.check_fitted()
        sources = dict(self.sources)
        sources[name] = source
        alignments = dict(self._alignments)
        alignments[name] = align(source.item_ids_, self.catalog)
        identity = dict(self._identity)
        identity[name] = _is_identity(alignments[name], len(self.catalog))
        self.sources, self._alignments, self._identity = sources, alignments, identity
        self.generation += 1
        self._text_only = self._positions_only_text_knows()
        self._text_catalog_index = np.zeros(0, dtype=np.int64)

    def catalog_scores(self, name: str, history: Sequence[str]) -> np.ndarray:
        """Scores of source ``name`` over catalog positions; NaN where the source lacks the item."""
        source = self.sources[name]
        source_positions, catalog_positions = self._alignments[name]
        raw = np.asarray(source.score(history), dtype=np.float64)
        if self._identity.get(name) and len(raw) == len(self.catalog):
            return raw if raw.flags.writeable else raw.copy()  # the source lists the catalog as it is
        out = np.full(len(self.catalog), np.nan)
        out[catalog_positions] = raw[source_positions]
        return out

    # -- the one entry point --------------------------------------------------------------
    def recommend(
        self,
        history: Sequence[str],
        *,
        scene: str = "home",
        k: int = 10,
        item_id: str | None = None,
        cart: Sequence[str] = (),
        query: str | None = None,
        query_vector: np.ndarray | None = None,
        purchased: Sequence[str] = (),
        rules: BusinessRules | None = None,
    ) -> list[Recommendation]:
        """The ``k`` best items for the scene, best first, each with a reason.

        ``history`` is the shopper's item ids oldest first (it may be empty: cold start).
        ``item_detail`` and ``post_purchase`` read ``item_id`` (post_purchase falls back to the
        newest purchase), ``cart`` the ``cart``, ``search`` the ``query`` or ``query_vector``; a
        scene without what it reads answers like ``home``.
        """
        if scene not in SCENES:
            raise InputError(f"unknown scene {scene!r}: use one of {', '.join(SCENES)}")
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        rules = rules or self.rules
        history = [str(i) for i in history]
        scene, context, anchors, blocked = self._scene_context(scene, history, item_id, cart, purchased)
        if scene == "search" and query_vector is None and not (query or "").strip():
            scene, context = "home", history  # nothing to search for: the user's own picks
        if scene == "search" and query_vector is None:
            if self.query_encoder is None:
                raise InputError("search needs a text encoder: the engine has none")
            query_vector = self.query_encoder(query)
        candidates, ranks, fused = self.fuse(context, scene=scene, k=k, anchors=anchors, query_vector=query_vector)
        if len(candidates) == 0:
            return []
        if self.ranker is not None and scene == "home":
            fused = self.ranker.score_candidates(candidates, ranks, fused, self.catalog, history)
        if scene in ("cart", "post_purchase") and anchors:
            # Complements, not substitutes: another item of the anchors' category ranks lower.
            anchor_categories = set(self.catalog.top_category[self.catalog.positions(anchors)])
            same_kind = np.isin(self.catalog.top_category[candidates], list(anchor_categories))
            fused = np.where(same_kind, fused * (0.3 if scene == "cart" else 0.1), fused)
        keep = rules.allowed(candidates, self.catalog, purchased=purchased, seen=history, blocked=blocked)
        candidates, fused = candidates[keep], fused[keep]
        if len(candidates) == 0:
            return []
        fused = rules.adjust(candidates, fused, self.catalog)
        order = np.argsort(-fused, kind="stable")
        if scene == "home" and rules.max_seen_share is not None and (history or purchased):
            seen = np.isin(candidates, self.catalog.positions([*history, *purchased]))
            order = cap_seen(order, seen, k=k, max_share=rules.max_seen_share)
        chosen = diversify(order, self.catalog.top_category[candidates], k=k, max_per_category=rules.max_per_category)
        return [
            self._explain(int(candidates[i]), float(fused[i]), ranks, scene, history, anchors, query, purchased)
            for i in chosen
        ]

    def _scene_context(
        self,
        scene: str,
        history: list[str],
        item_id: str | None,
        cart: Sequence[str],
        purchased: Sequence[str],
    ) -> tuple[str, list[str], list[str], list[str]]:
        """(scene, the history the models read, anchor items, items never to show) for a request.

        A scene without its anchor (an item page without ``item_id``, an empty cart) answers like
        ``home``: with nothing to relate to, the user's own picks are the sensible default.
        """
        if scene == "item_detail":
            if not item_id:
                return "home", history, [], []
            return scene, [*history[-5:], str(item_id)], [str(item_id)], [str(item_id)]
        if scene == "cart":
            anchors = [str(i) for i in cart]
            if not anchors:
                return "home", history, [], []
            return scene, [*history, *anchors], anchors, anchors
        if scene == "post_purchase":
            anchor = item_id or (purchased[-1] if purchased else (history[-1] if history else None))
            if anchor is None:
                return "home", history, [], []
            return scene, [*history, str(anchor)], [str(anchor)], [str(anchor), *purchased]
        return scene, history, [], []

    def fuse(
        self,
        context: Sequence[str],
        *,
        scene: str = "home",
        k: int = 10,
        anchors: Sequence[str] = (),
        query_vector: np.ndarray | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """Candidates (catalog positions), each source's rank of every item, and the fused score.

        Reciprocal-rank fusion with the scene's source weights; the ranker (if any) and the
        rules act on what this returns.
        """
        weights = self.scene_weights.get(scene) or self.scene_weights["home"]
        ranks: dict[str, np.ndarray] = {}
        candidate_sets: list[np.ndarray] = []
        text = self.text_source
        # Scanning every item's text vector is the costliest score (20k x 384): where the history
        # drives the scene, text only re-scores the others' candidates plus the items only it knows.
        text_last = scene != "search" and not (anchors and text in self.anchored)
        names = sorted(self.sources, key=lambda n: n == text) if text_last else list(self.sources)
        for name in names:
            weight = weights.get(name, 0.0)
            if weight <= 0:
                continue
            if scene == "search" and name == text:
                scores = _relevant_only(self._search_scores(query_vector))  # type: ignore[arg-type]
            elif name in self.anchored and anchors:
                # Item-to-item sources answer about the anchor items only, not the whole history.
                scores = self.catalog_scores(name, anchors)
            elif name == text and text_last and candidate_sets:
                scores = self._text_scores_at(context, np.union1d(np.concatenate(candidate_sets), self._text_only))
            else:
                scores = self.catalog_scores(name, context)
            floor = self.sources[name].signal_floor
            if floor > 0:
                best = np.nanmax(scores) if np.isfinite(scores).any() else 0.0
                scores = np.where(scores > floor * best, scores, np.nan)
            # A search shows only strong matches; the user's taste re-orders them.
            limit = max(3 * k, 30) if scene == "search" and name == text else self.candidates_per_source
            top = top_positions(scores, limit)
            if len(top) == 0 or (len(top) > 1 and scores[top[0]] == scores[top[-1]]):
                continue  # nothing known, or no preference (e.g. a latent model with no history)
            rank = np.full(len(self.catalog), np.inf)
            rank[top] = np.arange(1, len(top) + 1)
            ranks[name] = rank
            # Personalization alone never adds candidates to a search: they must match the query.
            if scene != "search" or name == text:
                candidate_sets.append(top)
        if not candidate_sets:
            return np.zeros(0, dtype=np.int64), ranks, np.zeros(0)
        candidates = np.unique(np.concatenate(candidate_sets))
        fused = np.zeros(len(candidates))
        # Search keeps text relevance sharp (small constant): taste only reorders near-equal matches.
        rrf_k = SEARCH_RRF_K if scene == "search" else RRF_K
        for name, rank in ranks.items():
            fused += weights.get(name, 0.0) / (rrf_k + rank[candidates])
        return candidates, ranks, fused

    # -- helpers ----------------------------------------------------------------------
    def _text_scores_at(self, history: Sequence[str], positions: np.ndarray) -> np.ndarray:
        """Text-similarity scores of the history's taste vector at catalog ``positions`` only; NaN elsewhere."""
        text = self.sources[self.text_source]  # type: ignore[index]
        out = np.full(len(self.catalog), np.nan)
        vector = text.profile(history)  # type: ignore[attr-defined]
        if vector is None:
            return out
        if len(self._text_catalog_index) != len(self.catalog):
            source_positions, catalog_positions = self._alignments[self.text_source]  # type: ignore[index]
            lookup = np.full(len(self.catalog), -1, dtype=np.int64)
            lookup[catalog_positions] = source_positions
            self._text_catalog_index = lookup
        rows = self._text_catalog_index[positions]
        known = rows >= 0
        out[positions[known]] = text.embeddings_[rows[known]] @ vector  # type: ignore[attr-defined]
        return out

    def _search_scores(self, query_vector: np.ndarray) -> np.ndarray:
        if self.text_source is None:
            raise InputError("search needs the text source (item embeddings)")
        text = self.sources[self.text_source]
        source_positions, catalog_positions = self._alignments[self.text_source]
        vector = np.asarray(query_vector, dtype=np.float32).ravel()
        out = np.full(len(self.catalog), np.nan)
        out[catalog_positions] = (text.embeddings_ @ vector)[source_positions]  # type: ignore[attr-defined]
        return out

    def _explain(
        self,
        position: int,
        score: float,
        ranks: dict[str, np.ndarray],
        scene: str,
        history: Sequence[str],
        anchors: Sequence[str],
        query: str | None,
        purchased: Sequence[str],
    ) -> Recommendation:
        item_id = str(self.catalog.item_ids[position])
        sources = {name: int(rank[position]) for name, rank in ranks.items() if math.isfinite(rank[position])}
        reason = self._reason(item_id, sources, scene, history, anchors, query, purchased)
        return Recommendation(item_id, score, reason, str(self.catalog.titles[position]), sources)

    def _reason(
        self,
        item_id: str,
        sources: dict[str, int],
        scene: str,
        history: Sequence[str],
        anchors: Sequence[str],
        query: str | None,
        purchased: Sequence[str],
    ) -> str:
        title = self.catalog.title
        if scene == "search":
            return f"matches “{query}”" if query else "matches your search"
        if scene == "item_detail" and anchors:
            # Bought together when an item-to-item source other than text ranks it at least as high.
            together = min(
                (r for n, r in sources.items() if n in self.anchored and n != self.text_source), default=np.inf
            )
            if together <= sources.get(self.text_source or "", np.inf):
                return f"often bought together with {title(anchors[0])}"
            return f"similar to {title(anchors[0])}"
        if scene in ("cart", "post_purchase") and anchors:
            anchor = self._closest(item_id, anchors) or anchors[-1]
            verb = "goes with" if scene == "cart" else "goes with your purchase of"
            return f"{verb} {title(anchor)}"
        if item_id in purchased:
            return "you bought this before"
        if item_id in history:
            return "you viewed this recently"
        best = min(sources, key=lambda n: sources[n]) if sources else None
        history = [h for h in history if h in self.catalog.index]
        if best is None or best in self.impersonal or not history:
            category = self.catalog.top_category[self.catalog.index[item_id]]
            return f"popular in {category}" if category else "popular right now"
        anchor = self._closest(item_id, history[-10:]) or history[-1]
        verb = "bought" if anchor in set(purchased) else "viewed"
        return f"because you {verb} {title(anchor)}"

    def _closest(self, item_id: str, among: Sequence[str]) -> str | None:
        """The item of ``among`` most similar to ``item_id`` by text embedding (None without text)."""
        text = self.sources.get(self.text_source) if self.text_source else None
        if text is None or not among:
            return None
        index = text.item_index()
        if item_id not in index:
            return None
        known = [a for a in among if a in index]
        if not known:
            return None
        embeddings = text.embeddings_  # type: ignore[attr-defined]
        similarity = embeddings[[index[a] for a in known]] @ embeddings[index[item_id]]
        return known[int(np.argmax(similarity))]


def _is_identity(alignment: tuple[np.ndarray, np.ndarray], n: int) -> bool:
    """True when a source lists exactly the catalog's items in the catalog's order."""
    source_positions, catalog_positions = alignment
    return len(source_positions) == n and bool(
        np.array_equal(source_positions, catalog_positions) and np.array_equal(source_positions, np.arange(n))
    )


def _relevant_only(similarity: np.ndarray) -> np.ndarray:
    """Similarities of the items closer to the best match than to the typical item; NaN elsewhere.

    Embedding similarities are compressed (most items score 0.7-0.8 with e5), so relevance is
    judged against the spread of this query's scores, not a fixed threshold.
    """
    finite = similarity[np.isfinite(similarity)]
    if len(finite) < 3:
        return similarity
    best, typical = float(finite.max()), float(np.median(finite))
    cut = best - max(0.5 * (best - typical), 1e-6)
    return np.where(similarity >= cut, similarity, np.nan)
