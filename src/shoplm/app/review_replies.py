"""Reply drafts for stored reviews: the review, its order and the shop's policies, phrased by the configured generator.

:class:`ReviewReplies` reads a review from the store (``store.reviews``), finds the order it
is about (an order id the review names, if it is the reviewer's own order, else the
reviewer's order holding the item), looks up the policy passages for the complaint in the
shop's policy documents (the assistant's :class:`~shoplm.assistant.retrieval.PolicyIndex` over
``data_dir/policies``, else the demo's ``data_dir/demo-source/policies``), and drafts with
:func:`shoplm.insight.replies.draft_review_reply`: the configured generator (template,
OpenAI-compatible endpoint, local GGUF; ``settings.generator``), every draft checked for
faithfulness, an unfaithful model draft replaced by the template's (see that module).

Drafting writes nothing: a draft is a proposal a person posts, or not.

Example:
    >>> replies = ReviewReplies(store, settings)  # doctest: +SKIP
    >>> replies.draft_reply("R000003")["outcome"]  # doctest: +SKIP
    'faithful'
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoplm.errors import ConflictError, InputError, NotFoundError
from shoplm.insight.replies import ReviewToReply, draft_review_reply, policy_queries, prepare_review
from shoplm.lm.generator import Fact, TemplateGenerator, TextGenerator, load_generator

if TYPE_CHECKING:
    from shoplm.assistant.retrieval import PolicyIndex
    from shoplm.config import Settings
    from shoplm.store import Store

log = logging.getLogger(__name__)

#: ``backend`` values: None (the configured generator), ``template``, ``llm`` (the configured model).
BACKENDS = ("template", "llm")
_ORDER_ID_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{1,3}-?\d{4,14}(?![A-Za-z0-9])")
_CURRENCY_SIGNS = {"CNY": "¥", "RMB": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def policies_directory(settings: Settings) -> Path | None:
    """Where the shop's policy documents are (``data_dir/policies``, else the demo's copy), or None."""
    for candidate in (settings.data_dir / "policies", settings.data_dir / "demo-source/policies"):
        if candidate.is_dir():
            return candidate
    return None


def _amount(total: Any, currency: str) -> str:
    if total is None:
        return ""
    sign = _CURRENCY_SIGNS.get((currency or "").upper())
    return f"{sign}{float(total):.2f}" if sign else f"{float(total):.2f} {currency}".strip()


def order_facts(order: dict[str, Any]) -> dict[str, str]:
    """The facts of an order row a reply may use: id, status, date (UTC), amount with its currency.

    Example:
        >>> order = {"order_id": "O1", "status": "delivered", "created_ms": 0, "total_amount": 5, "currency": "CNY"}
        >>> order_facts(order)
        {'order_id': 'O1', 'status': 'delivered', 'order_date': '1970-01-01', 'amount': '¥5.00'}
    """
    created = order.get("created_ms")
    return {
        "order_id": str(order["order_id"]),
        "status": str(order.get("status") or ""),
        "order_date": datetime.fromtimestamp(int(created) / 1000, UTC).strftime("%Y-%m-%d")
        if created is not None
        else "",
        "amount": _amount(order.get("total_amount"), str(order.get("currency") or "")),
    }


class ReviewReplies:
    """Drafts replies to the store's reviews with the configured generator (see the module docstring).

    Args:
        store: the shop's store.
        settings: the shop's settings (generator, data directory, encoder).
        generator: a ready generator (default: ``load_generator(settings)``, with its template fallback).
        policy_index: a ready policy index (default: built on first use from :func:`policies_directory`).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        generator: TextGenerator | None = None,
        policy_index: PolicyIndex | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._generator = generator
        self._given_model = generator is not None and not isinstance(generator, TemplateGenerator)
        self._policy_index = policy_index
        self._lock = threading.Lock()

    # -- parts, loaded once ------------------------------------------------------------------
    def generator(self, backend: str | None = None) -> TextGenerator:
        """The generator for ``backend`` (None: as configured; ``template``; ``llm``: the configured model).

        Raises:
            InputError: an unknown backend.
            ConflictError: ``llm`` when ``generator.kind`` is ``template`` (the request is fine; the shop has no model).
        """
        if backend is not None and backend not in BACKENDS:
            raise InputError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
        if backend == "template":
            return TemplateGenerator()
        if backend == "llm" and not self._given_model and self.settings.generator.kind == "template":
            raise ConflictError(
                "no language model is configured (generator.kind = 'template'): set generator.kind to "
                "'openai' (with generator.base_url) or 'llama_cpp' (with generator.gguf_path), "
                "or use --backend template",
                code="no_language_model",
            )
        with self._lock:
            if self._generator is None:
                self._generator = load_generator(self.settings)
            return self._generator

    def policy_index(self) -> PolicyIndex:
        """The shop's policy passages (empty when it has no policy documents)."""
        with self._lock:
            if self._policy_index is None:
                from shoplm.assistant.retrieval import PolicyIndex
                from shoplm.lm import load_encoder

                directory = policies_directory(self.settings)
                encoder = load_encoder(self.settings)
                if directory is None:
                    log.warning("no policy documents found: review replies quote no policy")
                    self._policy_index = PolicyIndex([], encoder)
                else:
                    self._policy_index = PolicyIndex.from_directory(directory, encoder)
            return self._policy_index

    # -- reading the store ---------------------------------------------------------------------
    def review(self, review_id: str) -> ReviewToReply:
        """The stored review with its item's title and order.

        Raises:
            NotFoundError: no review has this id.
        """
        row = self.store.reviews.get(review_id)
        if row is None:
            raise NotFoundError(f"no review {review_id!r}")
        return self._to_reply(row)

    def _to_reply(self, row: dict[str, Any]) -> ReviewToReply:
        order = self._order(row)
        rating = row.get("rating")
        return ReviewToReply(
            review_id=str(row["review_id"]),
            text=str(row.get("text") or ""),
            rating=int(rating) if rating is not None else None,
            language=str(row.get("language") or ""),
            item_title=str(row.get("item_title") or ""),
            order=order_facts(order) if order is not None else None,
        )

    def _order(self, row: dict[str, Any]) -> dict[str, Any] | None:
        user = row.get("user_id")
        if not user:
            return None
        # An order id the review names counts only when it is the reviewer's own order.
        for candidate in _ORDER_ID_RE.findall(str(row.get("text") or "")):
            order = self.store.orders.get(candidate)
            if order is not None and order.get("user_id") == user:
                return order
        return self.store.reviews.order_of(user, str(row["item_id"]), before_ms=row.get("ts_ms"))

    def policies_for(self, review: ReviewToReply) -> list[Fact]:
        """The policy passages a reply to ``review`` may quote (none for positive reviews)."""
        queries = policy_queries(prepare_review(review))
        if not queries:
            return []
        index = self.policy_index()
        language = prepare_review(review).reply_language
        facts: list[Fact] = []
        for query in queries:
            facts.extend(hit.fact() for hit in index.search(query, k=1, language=language))
        return facts

    # -- drafting ------------------------------------------------------------------------------
    def draft_reply(self, review_id: str, *, backend: str | None = None) -> dict[str, Any]:
        """Draft a reply to the stored review ``review_id``.

        Args:
            review_id: the review's id.
            backend: None (as configured), ``template`` or ``llm`` (the configured model).

        Returns:
            ``{"review_id", "language", "review_language", "draft", "backend", "faithful",
            "unsupported", "grounding", "outcome", "rejected_draft", "reason", "tone", "notes",
            "skipped"}`` (see :class:`shoplm.insight.replies.ReplyDraft`).

        Raises:
            NotFoundError: no review has this id.
            InputError: an unknown backend, or ``llm`` without a configured model.
        """
        generator = self.generator(backend)
        review = self.review(review_id)
        return draft_review_reply(review, self.policies_for(review), generator).as_dict()

    def newest_negative(self, *, limit: int = 5, backend: str | None = None) -> list[dict[str, Any]]:
        """Drafts for the newest reviews rated 1-2 stars, newest first, each with its review (``review``)."""
        generator = self.generator(backend)
        out = []
        for row in self.store.reviews.newest(limit=limit, max_rating=2):
            review = self._to_reply(row)
            drafted = draft_review_reply(review, self.policies_for(review), generator).as_dict()
            drafted["review"] = {
                "text": review.text,
                "rating": review.rating,
                "item_title": review.item_title,
                "ts_ms": int(row["ts_ms"]),
            }
            out.append(drafted)
        return out


def draft_reply(store: Store, settings: Settings, review_id: str, *, backend: str | None = None) -> dict[str, Any]:
    """One draft (see :meth:`ReviewReplies.draft_reply`); loads the generator and the policies for it.

    Example:
        >>> draft_reply(store, settings, "R000003", backend="template")["backend"]  # doctest: +SKIP
        'template'
    """
    return ReviewReplies(store, settings).draft_reply(review_id, backend=backend)
