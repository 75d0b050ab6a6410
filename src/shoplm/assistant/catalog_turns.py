"""The catalog side of the dialogue: product and stock questions, and suggestions within a budget.

:class:`CatalogDesk` answers ``product_question`` and ``stock_question`` from the catalog row
of the item the message names (by title or by embedding), else of the item the customer viewed
last: the fields that answer the question (:func:`~shoplm.assistant.product_answers.answer_fields`)
are stated and cited (``items:I001#attributes.material``); with none, the item's main facts
are listed. ``recommendation_request`` asks the recommender's ``search`` scene, within the price
band the message names ("a gift under 50", "100-200元"), and gives each item's reason.

Example:
    >>> desk = CatalogDesk(models, act, recommender=shop.recommend, viewed=last_viewed)  # doctest: +SKIP
    >>> desk.product_turn("is it waterproof?", vector, state, "u_1", "product_question").citations  # doctest: +SKIP
    ['items:I006#description']
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from shoplm.assistant.dialogue import Action, AssistantTurn
from shoplm.assistant.product_answers import answer_fields, price_band, question_topics
from shoplm.assistant.tools import format_money
from shoplm.lm import Fact
from shoplm.lm.generator import fact_label

if TYPE_CHECKING:
    from shoplm.assistant.models import AssistantModels
    from shoplm.assistant.state import ConversationState

log = logging.getLogger(__name__)

#: ``recommend(user_key or None, scene="search", query=..., k=..., pseudonymous=True, min_price=..., max_price=...)``
Recommend = Callable[..., list[Any]]
#: The item a user (pseudonymous id) viewed last, or None.
LastViewed = Callable[[str], str | None]


class CatalogDesk:
    """Product, stock and suggestion turns over the catalog (see the module docstring).

    Args:
        models: the catalog, the product linker, the encoder and the generator.
        act: renders a reply template (``act(name, language, values)``).
        recommender: a ``recommend`` callable (None: nearest items by text).
        viewed: the item a user viewed last (None: only items named in the message are answered).
    """

    def __init__(
        self,
        models: AssistantModels,
        act: Callable[..., str],
        *,
        recommender: Recommend | None = None,
        viewed: LastViewed | None = None,
    ) -> None:
        self.models = models
        self.act = act
        self.recommender = recommender
        self.viewed = viewed

    # -- product and stock questions ---------------------------------------------------------------
    def product_turn(
        self, text: str, query_vector: np.ndarray, state: ConversationState, user_key: str, intent: str
    ) -> AssistantTurn:
        """Answer a product or stock question about the item named, else the one viewed last."""
        language = state.language
        mentions = self.models.extractor.link_products(text, query_vector=query_vector)
        item_id = None
        if mentions:
            top = mentions[0]
            close = [m for m in mentions if m.method == "embedding" and top.score - m.score < 0.005]
            if top.method == "embedding" and len(close) > 1:
                # Several items fit about equally well: ask which one instead of guessing.
                state.awaiting = {"intent": intent, "slot": "product"}
                catalog = self.models.catalog
                facts = [Fact("option", str(catalog[m.item_id]["title"]), f"items:{m.item_id}") for m in close]
                generation = self.models.generator.generate("clarify", facts, language=language)
                return AssistantTurn(
                    generation.text, "", 0.0, facts=generation.facts_used, actions=[Action("product", "needs_input")]
                )
            item_id = top.item_id
        else:
            item_id = self._last_viewed(user_key)
        if item_id is None or item_id not in self.models.catalog:
            state.awaiting = {"intent": intent, "slot": "product"}
            return AssistantTurn(self.act("no_product", language), "", 0.0, actions=[Action("product", "no_answer")])
        facts, citations = self._answer(text, item_id, language, stock=intent == "stock_question")
        generation = self.models.generator.generate("product_answer", facts, language=language)
        return AssistantTurn(
            generation.text,
            "",
            0.0,
            facts=facts,
            citations=citations,
            actions=[Action("product", "looked_up", None)],
        )

    def _last_viewed(self, user_key: str) -> str | None:
        if self.viewed is None or not user_key:
            return None
        try:
            return self.viewed(user_key)
        except Exception:
            log.exception("could not read the last viewed item; asking which product")
            return None

    def _answer(self, text: str, item_id: str, language: str, *, stock: bool) -> tuple[list[Fact], list[str]]:
        """The facts answering ``text`` about the item, each citing its field; else the main facts."""
        row = self.models.catalog[item_id]
        source = f"items:{item_id}"
        topics = set(question_topics(text)) | ({"stock"} if stock else set())
        facts = [Fact("product", str(row["title"]), source)]
        main = self.item_facts(item_id, language)
        column_facts = {f.key: f for f in main}
        answers = []
        for topic in ("price", "stock", "brand"):
            if topic in topics and topic in column_facts:
                fact = column_facts[topic]
                answers.append(Fact(topic, fact.value, f"{source}#{topic}"))
        for found in answer_fields(text, row):
            key = found.field.split(".", 1)[-1]
            label = fact_label(key, language)
            value = (
                found.value
                if found.field == "description"
                else f"{label}{'：' if language == 'zh' else ': '}{found.value}"
            )
            answers.append(Fact("answer", value, f"{source}#{found.field}"))
        if not answers:
            return main, [source]
        if any(f.key == "answer" for f in answers):
            # one sentence: the template states the "answer" fact; the columns asked for go first
            joined = ("；" if language == "zh" else "; ").join(
                [f"{f.value}" for f in answers if f.key != "answer"] + [f.value for f in answers if f.key == "answer"]
            )
            facts.append(Fact("answer", joined, answers[0].source))
        else:
            facts.extend(answers)
        return facts, list(dict.fromkeys(f.source for f in answers))

    def item_facts(self, item_id: str, language: str) -> list[Fact]:
        """The item's main facts: title, price, stock, brand, the start of its description."""
        row = self.models.catalog[item_id]
        source = f"items:{item_id}"
        facts = [Fact("product", str(row["title"]), source)]
        if row.get("price") is not None and not _isnan(row["price"]):
            facts.append(Fact("price", format_money(float(row["price"]), str(row.get("currency") or "")), source))
        stock = row.get("stock")
        if stock is not None and not _isnan(stock):
            if int(stock) > 0:
                facts.append(
                    Fact("stock", f"有货（{int(stock)}件）" if language == "zh" else f"in stock ({int(stock)})", source)
                )
            else:
                facts.append(Fact("stock", "缺货" if language == "zh" else "out of stock", source))
        if row.get("brand"):
            facts.append(Fact("brand", str(row["brand"]), source))
        description = " ".join(str(row.get("description") or "").split())
        if description:
            facts.append(Fact("feature", description[:240], source))
        return facts

    # -- suggestions ------------------------------------------------------------------------------
    def recommendation_turn(self, text: str, user_key: str, language: str) -> AssistantTurn:
        """Up to three items for the request, within its price band, each with the reason it was chosen."""
        low, high = price_band(text)
        picks: list[tuple[str, str]] = []  # (item id, reason)
        if self.recommender is not None:
            try:
                recs = self.recommender(
                    user_key or None, scene="search", query=text, k=3, pseudonymous=True, min_price=low, max_price=high
                )
                picks = [(str(r.item_id), str(getattr(r, "reason", "") or "")) for r in recs]
            except Exception:
                log.exception("recommender failed; answering by text similarity")
        if not picks:
            picks = [(i, "") for i in self._similar_items(text, k=3, low=low, high=high)]
        catalog = self.models.catalog
        picks = [(i, reason) for i, reason in picks if i in catalog]
        if not picks:
            return AssistantTurn(
                self.act("no_recommendation", language), "", 0.0, actions=[Action("recommend", "no_answer")]
            )
        facts = []
        if low is not None or high is not None:
            facts.append(Fact("reason", _band_text(low, high, language), "request"))
        for item_id, reason in picks:
            row = catalog[item_id]
            price = row.get("price")
            label = str(row["title"])
            if price is not None and not _isnan(price):
                label += f" ({format_money(float(price), str(row.get('currency') or ''))})"
            if reason:
                label += f" — {reason}"
            facts.append(Fact("item", label, f"items:{item_id}"))
        generation = self.models.generator.generate("recommendation", facts, language=language)
        return AssistantTurn(generation.text, "", 0.0, facts=facts, actions=[Action("recommend", "looked_up")])

    def _similar_items(self, text: str, k: int, *, low: float | None = None, high: float | None = None) -> list[str]:
        extractor = self.models.extractor
        if extractor.item_vectors is None or not len(extractor.item_ids):
            return []
        vector = self.models.encoder.encode([text], mode="query")[0]
        scores = extractor.item_vectors @ vector
        out = []
        for index in np.argsort(-scores):
            item_id = extractor.item_ids[index]
            row = self.models.catalog.get(item_id, {})
            stock, price = row.get("stock"), row.get("price")
            if stock is not None and not _isnan(stock) and int(stock) <= 0:
                continue  # never recommend what cannot be bought
            known = price is not None and not _isnan(price)
            if known and ((low is not None and float(price) < low) or (high is not None and float(price) > high)):
                continue
            out.append(item_id)
            if len(out) >= k:
                break
        return out


def _band_text(low: float | None, high: float | None, language: str) -> str:
    if language == "zh":
        if low is not None and high is not None:
            return f"{low:g}–{high:g}元的预算"
        return f"{high:g}元以内的预算" if high is not None else f"{low:g}元以上的预算"
    if low is not None and high is not None:
        return f"your budget of {low:g}–{high:g}"
    return f"your budget of up to {high:g}" if high is not None else f"your budget of {low:g} or more"


def _isnan(value: Any) -> bool:
    try:
        return bool(np.isnan(float(value)))
    except (TypeError, ValueError):
        return True
