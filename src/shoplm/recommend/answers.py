"""A bounded cache of the engine's answers, keyed by everything an answer depends on.

An answer of :meth:`~shoplm.recommend.engine.RecommendationEngine.recommend` is a function of
the request (scene, ``k``, anchor items, query), the user's live history and purchases, and the
engine's state (its models and catalog, numbered by ``engine.generation``). Keyed by all of
them, a cached answer is exactly the answer the engine would compute now: a new event changes
the history, a new model or item changes the generation, and either misses the cache.

Example:
    >>> cache = AnswerCache(size=2)
    >>> key = cache.key(1, "home", 10, history=["a", "b"])
    >>> cache.get(key) is None
    True
    >>> cache.put(key, ["answer"]); cache.get(key)
    ['answer']
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any


class AnswerCache:
    """Least-recently-used answers, at most ``size`` of them (0: no caching), safe across threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._answers: OrderedDict[Hashable, list[Any]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(
        generation: int,
        scene: str,
        k: int,
        *,
        history: Sequence[str] = (),
        purchased: Sequence[str] = (),
        item_id: str | None = None,
        cart: Sequence[str] = (),
        query: str | None = None,
    ) -> Hashable:
        """The key of a request (everything the answer depends on)."""
        return (generation, scene, k, item_id, tuple(cart), query, tuple(history), tuple(purchased))

    def get(self, key: Hashable) -> list[Any] | None:
        """The cached answer (a new list), or None."""
        if self.size <= 0:
            return None
        with self._lock:
            found = self._answers.get(key)
            if found is None:
                self.misses += 1
                return None
            self._answers.move_to_end(key)
            self.hits += 1
            return list(found)

    def put(self, key: Hashable, answer: Sequence[Any]) -> None:
        """Remember an answer (its items are immutable)."""
        if self.size <= 0:
            return
        with self._lock:
            self._answers[key] = list(answer)
            self._answers.move_to_end(key)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)

    def __len__(self) -> int:
        return len(self._answers)
