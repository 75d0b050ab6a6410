"""Entities in customer messages: order ids, emails, phones, amounts, product mentions, language.

Regular expressions find the structured entities; products are linked to catalog items by text
embedding (the message in ``query`` mode against the catalog's ``passage`` vectors) or by an
exact title / item-id mention. Nothing here touches the store: callers check that an order id
exists and belongs to the customer.

Example:
    >>> ents = EntityExtractor().extract("Cancel O0000123 please, it cost ¥199. Mail me at a@b.com")
    >>> ents.order_ids, [(a.value, a.currency) for a in ents.amounts], ents.emails
    (['O0000123'], [(199.0, 'CNY')], ['a@b.com'])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from shoplm.ingest.pseudonymize import EMAIL_RE, PHONE_RE

if TYPE_CHECKING:
    import pandas as pd

    from shoplm.lm import TextEncoder

# Order ids: one to three capital letters and 4+ digits (the demo's O0000123, A1001-style
# ids), optionally "#"-prefixed, or long bare digit strings (12345678) right after the word
# "order"/"订单". The ASCII-only guards let an id sit next to Chinese characters (订单O0000123).
_ID_CORE = r"[A-Z]{1,3}-?\d{4,14}"
ORDER_ID_RE = re.compile(r"(?<![A-Za-z0-9])#?(" + _ID_CORE + r")(?![A-Za-z0-9])")
_BARE_NUMBER_ID_RE = re.compile(
    r"(?:order|订单|单号|order\s*(?:no\.?|number|#))\s*(?:号|number|no\.?|#|:|：)?\s*#?(\d{5,20})(?![0-9])",
    re.IGNORECASE,
)
_CURRENCY_BEFORE = r"(¥|￥|\$|US\$|USD|CNY|RMB)"
_CURRENCY_AFTER = r"(元|块钱|块|USD|CNY|RMB|dollars?|yuan)"
# Anchored at the start of a digit run and bounded: on a long run of digits an unanchored
# "\d+" is tried at every position and backtracks through the rest (10,000 digits: 5 s).
_NUMBER = r"(?<![\d.,])(\d{1,3}(?:,\d{3}){1,5}(?:\.\d{1,6})?|\d{1,15}(?:\.\d{1,6})?)(?!\d)"
AMOUNT_BEFORE_RE = re.compile(_CURRENCY_BEFORE + r"\s?" + _NUMBER, re.IGNORECASE)
AMOUNT_AFTER_RE = re.compile(_NUMBER + r"\s?" + _CURRENCY_AFTER, re.IGNORECASE)
_CURRENCY_CODES = {
    "¥": "CNY",
    "￥": "CNY",
    "元": "CNY",
    "块": "CNY",
    "块钱": "CNY",
    "cny": "CNY",
    "rmb": "CNY",
    "yuan": "CNY",
    "$": "USD",
    "us$": "USD",
    "usd": "USD",
    "dollar": "USD",
    "dollars": "USD",
}
_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
_LATIN_WORD_RE = re.compile(r"[A-Za-z]{2,}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_\-]+")


@dataclass(frozen=True)
class Amount:
    """A money amount in a message: ``value`` in ``currency`` (ISO code), as written in ``text``."""

    value: float
    currency: str
    text: str


@dataclass(frozen=True)
class ProductMention:
    """A catalog item the message is about, with how it was found (``"id"``, ``"title"``, ``"embedding"``)."""

    item_id: str
    score: float
    method: str


@dataclass
class Entities:
    """Everything :class:`EntityExtractor` found in one message."""

    order_ids: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    amounts: list[Amount] = field(default_factory=list)
    products: list[ProductMention] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "order_ids": self.order_ids,
            "emails": self.emails,
            "phones": self.phones,
            "amounts": [a.__dict__ for a in self.amounts],
            "products": [p.__dict__ for p in self.products],
        }


def detect_language(text: str, default: str = "en") -> str:
    """``"zh"`` when Chinese characters dominate the text, else ``"en"`` (``default`` when there is no text).

    A Chinese character carries about as much as an English word, so characters are weighed
    against words (ids and numbers do not count).

    Example:
        >>> detect_language("帮我取消 order O0000123"), detect_language("我想 cancel my order please")
        ('zh', 'en')
    """
    cjk = len(_CJK_RE.findall(text))
    words = len(_LATIN_WORD_RE.findall(ORDER_ID_RE.sub(" ", text)))
    if cjk == 0 and words == 0:
        return default
    return "zh" if cjk >= 1.5 * words else "en"


def extract_order_ids(text: str) -> list[str]:
    """Order-id-shaped tokens, in order of appearance, without duplicates (emails and phones excluded).

    Example:
        >>> extract_order_ids("订单O0000012和 #A1001 呢？call 13800138000")
        ['O0000012', 'A1001']
    """
    cleaned = PHONE_RE.sub(" ", EMAIL_RE.sub(" ", text))
    found: list[tuple[int, str]] = [(m.start(), m.group(1).replace("-", "")) for m in ORDER_ID_RE.finditer(cleaned)]
    found += [(m.start(), m.group(1)) for m in _BARE_NUMBER_ID_RE.finditer(cleaned)]
    out: list[str] = []
    for _, value in sorted(found):
        if value not in out:
            out.append(value)
    return out


def extract_amounts(text: str) -> list[Amount]:
    """Money amounts with a currency sign or word (¥/￥/元/块/$/USD/CNY/RMB).

    Example:
        >>> [(a.value, a.currency) for a in extract_amounts("under 300元 or $49.90, not 1,299 CNY")]
        [(300.0, 'CNY'), (49.9, 'USD'), (1299.0, 'CNY')]
    """
    found: list[tuple[int, Amount]] = []
    taken: list[tuple[int, int]] = []
    for regex, currency_group, number_group in ((AMOUNT_BEFORE_RE, 1, 2), (AMOUNT_AFTER_RE, 2, 1)):
        for m in regex.finditer(text):
            if any(m.start() < end and start < m.end() for start, end in taken):
                continue  # "¥300元": one amount, not two
            taken.append((m.start(), m.end()))
            code = _CURRENCY_CODES.get(m.group(currency_group).lower(), m.group(currency_group).upper())
            value = float(m.group(number_group).replace(",", ""))
            found.append((m.start(), Amount(value, code, m.group(0))))
    return [amount for _, amount in sorted(found, key=lambda pair: pair[0])]


#: A title word links a message to the items whose titles have it only when at most this many do.
MAX_WORD_ITEMS = 3
_TITLE_WORD_RE = re.compile(r"[a-z]{4,}")
_CJK_RUN_RE = re.compile(r"[\u4e00-\u9fff]{3,}")
_GENERIC_WORDS = frozenset({"with", "from", "this", "that", "your", "have", "does", "inch", "pack", "gift", "order"})


def title_words(text: str) -> set[str]:
    """The words a title is recognised by: English words of 4+ letters (a plural "s" dropped), and
    the 3-character runs of its Chinese.

    Example:
        >>> sorted(title_words("27-inch 4K Monitors"))
        ['monitor']
    """
    lowered = text.lower()
    words = {w[:-1] if w.endswith("s") and len(w) > 4 else w for w in _TITLE_WORD_RE.findall(lowered)}
    words -= _GENERIC_WORDS
    for run in _CJK_RUN_RE.findall(lowered):
        words.update(run[i : i + 3] for i in range(len(run) - 2))
    return words


class EntityExtractor:
    """Finds entities; links product mentions when given the catalog and its item embeddings.

    ``item_ids``/``item_vectors`` are what :func:`shoplm.jobs.load_item_embeddings` returns;
    ``titles`` maps item ids to titles for exact mentions. ``threshold`` is the cosine
    similarity a message needs to be linked to an item by embedding (multilingual-e5 puts
    unrelated texts at about 0.75-0.8 and paraphrases above 0.85).

    Example:
        >>> EntityExtractor().extract("my email is ann@example.com").emails
        ['ann@example.com']
    """

    def __init__(
        self,
        encoder: TextEncoder | None = None,
        item_ids: Sequence[str] | np.ndarray | None = None,
        item_vectors: np.ndarray | None = None,
        titles: dict[str, str] | None = None,
        *,
        threshold: float = 0.86,
        max_products: int = 3,
    ) -> None:
        self.encoder = encoder
        self.item_ids = [str(i) for i in item_ids] if item_ids is not None else []
        self.item_vectors = None if item_vectors is None else np.asarray(item_vectors, dtype=np.float32)
        self.titles = titles or {}
        self.threshold = threshold
        self.max_products = max_products
        self._known_ids = set(self.item_ids) | set(self.titles)
        # Longest titles first, so "Wireless Headphones Pro" wins over "Headphones".
        self._title_index = sorted(
            ((title.strip().lower(), item) for item, title in self.titles.items() if len(title.strip()) >= 4),
            key=lambda pair: -len(pair[0]),
        )
        # Title words ("monitor", "保温杯") that name at most MAX_WORD_ITEMS items: "the monitor"
        # names the shop's one monitor; a word shared by many items names none of them.
        index: dict[str, set[str]] = {}
        for item, title in self.titles.items():
            for word in title_words(title):
                index.setdefault(word, set()).add(item)
        self._word_index = {w: items for w, items in index.items() if len(items) <= MAX_WORD_ITEMS}

    @classmethod
    def from_catalog(
        cls,
        catalog: pd.DataFrame,
        encoder: TextEncoder | None = None,
        item_ids: Sequence[str] | np.ndarray | None = None,
        item_vectors: np.ndarray | None = None,
        **kwargs: float | int,
    ) -> EntityExtractor:
        """An extractor over a catalog frame (``item_id``, ``title``) and optional item embeddings."""
        titles = dict(zip(catalog["item_id"].astype(str), catalog["title"].fillna("").astype(str), strict=True))
        return cls(encoder, item_ids, item_vectors, titles, **kwargs)  # type: ignore[arg-type]

    def extract(self, text: str, *, query_vector: np.ndarray | None = None, products: bool = True) -> Entities:
        """The entities of ``text``; ``query_vector`` reuses an embedding the caller already has.

        ``products=False`` skips product linking (the only part that may need the encoder).
        """
        order_ids = [i for i in extract_order_ids(text) if i not in self._known_ids]
        return Entities(
            order_ids=order_ids,
            emails=EMAIL_RE.findall(text),
            phones=[m.group(0) for m in PHONE_RE.finditer(text)],
            amounts=extract_amounts(text),
            products=self.link_products(text, query_vector=query_vector) if products else [],
        )

    def _by_title_words(self, text: str) -> list[ProductMention]:
        """Items whose distinctive title words the text uses, the most words first (ties: all, up to 3)."""
        counts: dict[str, int] = {}
        for word in title_words(text):
            for item in self._word_index.get(word, ()):
                counts[item] = counts.get(item, 0) + 1
        if not counts:
            return []
        best = max(counts.values())
        return [ProductMention(item, 0.99, "words") for item in sorted(counts) if counts[item] == best][
            : self.max_products
        ]

    def link_products(self, text: str, *, query_vector: np.ndarray | None = None) -> list[ProductMention]:
        """Catalog items the text mentions: by item id, by exact title, by distinctive title words,
        then by embedding similarity."""
        out: list[ProductMention] = []
        for token in dict.fromkeys(_TOKEN_RE.findall(text)):
            if token in self._known_ids:
                out.append(ProductMention(token, 1.0, "id"))
        lowered = text.lower()
        for title, item in self._title_index:
            if title in lowered and all(p.item_id != item for p in out):
                out.append(ProductMention(item, 1.0, "title"))
                if len(out) >= self.max_products:
                    return out
        if not out:
            out = self._by_title_words(text)
        if out or self.item_vectors is None or not len(self.item_ids) or not text.strip():
            return out
        vector = query_vector
        if vector is None:
            if self.encoder is None:
                return out
            vector = self.encoder.encode([text], mode="query")[0]
        scores = self.item_vectors @ np.asarray(vector, dtype=np.float32)
        best = np.argsort(-scores)[: self.max_products]
        for index in best:
            if scores[index] >= self.threshold:
                out.append(ProductMention(self.item_ids[index], float(scores[index]), "embedding"))
        return out
