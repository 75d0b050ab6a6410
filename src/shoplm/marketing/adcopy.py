"""Ad copy: N variants per item and channel, each checked against the constraints it was asked for.

An ad is written from the item's catalog facts only (:class:`AdItem.facts`) by a
:class:`~shoplm.lm.TextGenerator`: the template generator (always available; one template
style per variant, :data:`~shoplm.lm.generator.AD_STYLES`) or a model-backed one when the shop
configured it. Every variant is then checked, and each check is reported, never silently
dropped:

``length``
    characters (a Chinese character and a Latin letter count one each) within the channel's
    limit for the ad's language. Defaults (:class:`shoplm.config.AdsSettings`): ``search`` 30 zh
    / 90 en (a search-ad description line), ``feed`` 60 zh / 150 en (a feed card's text), ``push``
    30 zh / 60 en (a push notification's body on a locked screen).
``banned``
    no banned word (the settings' list plus the call's), case-insensitively.
``must_mention``
    every asked attribute (``brand``, ``price``, ``color``, ``material``, ``size``, ``title``,
    ``category``) appears; the price by its number.
``language``
    the ad is in the asked language: Chinese when CJK characters are at least 25% of its
    letters (so a Chinese ad may name a Latin brand), English below that.
``claims``
    no invented claim: every amount, date, period and percentage occurs in the facts
    (:func:`~shoplm.lm.faithfulness.check_faithfulness`; a percentage or period as written, an
    amount only as the item's price), and a superlative or promise
    (:data:`CLAIM_WORDS`: "best", "free shipping", "第一", "包邮", "100%"...) only when a fact says it.

With templates, a variant longer than its limit is re-rendered without its optional facts, one
at a time (feature, size, material, color, brand, price; never a must-mention one), until it
fits. A model-backed generator is asked for N variants; a violating one is sent back once with
its violations, and dropped (and listed in ``dropped``) if the rewrite still violates.

Constraints that cannot all be met are reported, not hidden: ``unmet`` names each one that no
returned variant meets (an attribute the item lacks, four must-mention attributes in a 30
character push), and the result's ``ok`` is False, as it is when no variant meets every
constraint; the best variants are still returned, each with its violations (the command line
then exits 2, the HTTP route answers 200 with ``ok: false``). Variants are sorted by their
number of violations, then by their CTR score (:data:`NEUTRAL_SCORE` for all when no CTR
model is given).

Example:
    >>> item = AdItem("I1", "Flexa Resistance Bands - Black, 10mm", brand="Flexa", price=439.0,
    ...               currency="CNY", language="en", attributes={"color": "Black", "material": "TPE"})
    >>> result = write_ad_variants(item, "search", n=3, must_mention=["brand", "price"])
    >>> result.ok, len({v.text for v in result.variants})
    (True, 3)
    >>> result.variants[0].checks["must_mention"].ok
    True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from shoplm.errors import InputError
from shoplm.lm.faithfulness import check_faithfulness
from shoplm.lm.faithfulness import claims as find_claims
from shoplm.lm.generator import AD_STYLES, Fact, TemplateGenerator, TextGenerator, normalize_language

__all__ = [
    "ATTRIBUTES",
    "CHANNELS",
    "CLAIM_WORDS",
    "DEFAULT_LIMITS",
    "NEUTRAL_SCORE",
    "AdCopyResult",
    "AdItem",
    "AdVariant",
    "Check",
    "check_ad",
    "text_language",
    "write_ad_variants",
]

CHANNELS = ("search", "feed", "push")
#: channel -> language -> most characters (mirrors :class:`shoplm.config.AdsSettings` defaults)
DEFAULT_LIMITS: dict[str, dict[str, int]] = {
    "search": {"zh": 30, "en": 90},
    "feed": {"zh": 60, "en": 150},
    "push": {"zh": 30, "en": 60},
}
#: attributes a caller may ask an ad to mention
ATTRIBUTES = ("brand", "price", "color", "material", "size", "title", "category")
#: the score of every variant when no CTR model is available: no preference, the order stays the styles'
NEUTRAL_SCORE = 0.5
#: superlatives and promises an ad may only make when a fact of the item states them (China's
#: advertising law forbids absolute terms such as 最佳 / 第一 / 顶级 outright; elsewhere they mislead)
CLAIM_WORDS = (
    "best",
    "#1",
    "number one",
    "no. 1",
    "cheapest",
    "lowest price",
    "guaranteed",
    "guarantee",
    "free shipping",
    "free delivery",
    "100%",
    "top-rated",
    "top rated",
    "unbeatable",
    "risk-free",
    "最好",
    "最佳",
    "最低",
    "最便宜",
    "最强",
    "最优",
    "第一",
    "首选",
    "顶级",
    "极品",
    "全网",
    "包邮",
    "免运费",
    "免邮",
    "保证",
    "百分百",
)
# Optional facts dropped one at a time, first to last, when a template ad is too long.
_SHORTEN_ORDER = ("feature", "size", "material", "color", "brand", "price")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_CURRENCY_SIGNS = {"CNY": "¥", "RMB": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


@dataclass(frozen=True)
class AdItem:
    """The catalog facts of one item an ad may use (the store's ``items`` row).

    Example:
        >>> AdItem("I1", "步履 帆布鞋 黑色", brand="步履", attributes={"color": "黑色"}).product_name
        '帆布鞋'
    """

    item_id: str
    title: str
    description: str = ""
    category: str = ""
    brand: str = ""
    price: float | None = None
    currency: str = ""
    language: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def attribute(self, name: str) -> str:
        """The item's value of a must-mention attribute, ``""`` when it has none."""
        if name == "brand":
            return self.brand.strip()
        if name == "price":
            return self.price_text
        if name == "title":
            return self.product_name
        if name == "category":
            return self.category.split(">")[-1].strip()
        value = self.attributes.get(name)
        return "" if value is None else str(value).strip()

    @property
    def price_text(self) -> str:
        """The price as an ad shows it (``¥439``, ``¥66.90``), ``""`` without a price."""
        if self.price is None or self.price != self.price:  # None or NaN
            return ""
        sign = _CURRENCY_SIGNS.get(self.currency.upper())
        amount = f"{self.price:.0f}" if self.price == round(self.price) else f"{self.price:.2f}"
        return f"{sign}{amount}" if sign else f"{amount} {self.currency}".strip()

    @property
    def product_name(self) -> str:
        """The title without brand, colour, size or a trailing ``" - variant"``: what the product is."""
        name = self.title.split(" - ")[0]
        for word in (self.brand, self.attribute("color"), self.attribute("size")):
            if word:
                name = name.replace(word, " ")
        name = re.sub(r"[\s,，]+", " ", name).strip(" ,-")
        return name or self.title.strip()

    def detected_language(self) -> str:
        """The item's ``language`` column, else the language of its title."""
        return normalize_language(self.language) if self.language.strip() else text_language(self.title)

    def facts(self) -> list[Fact]:
        """Every fact an ad of this item may state, each sourced ``items:<id>``."""
        source = f"items:{self.item_id}"
        pairs = [("product", self.product_name), ("brand", self.brand), ("price", self.price_text)]
        pairs += [(name, self.attribute(name)) for name in ("color", "material", "size", "category")]
        # Description sentences are the item's features; their own full stops are the template's.
        for sentence in re.split(r"(?<=[.!?。！？])\s*", self.description):
            sentence = sentence.strip().rstrip(".!?。！？")
            if sentence:
                pairs.append(("feature", sentence))
        return [Fact(key, value, source) for key, value in pairs if value]


@dataclass(frozen=True)
class Check:
    """One constraint's outcome: ``ok``, and what was found when not (``detail``)."""

    ok: bool
    detail: str = ""


@dataclass
class AdVariant:
    """One ad, how it was written, each constraint's check and its CTR score."""

    text: str
    style: str
    generator: str
    checks: dict[str, Check]
    score: float = NEUTRAL_SCORE
    score_source: str = "neutral"
    repaired: bool = False

    @property
    def violations(self) -> list[str]:
        """The failed checks as ``name: detail``."""
        return [f"{name}: {check.detail}" for name, check in self.checks.items() if not check.ok]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"], out["violations"], out["length"] = self.ok, self.violations, len(self.text)
        return out


@dataclass
class AdCopyResult:
    """The variants, best first; ``unmet`` constraints no variant meets; models' dropped drafts."""

    item_id: str
    channel: str
    language: str
    limit: int
    variants: list[AdVariant]
    unmet: list[str] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether at least one variant meets every constraint (the others show their violations)."""
        return not self.unmet and any(v.ok for v in self.variants)

    @property
    def message(self) -> str:
        passing = sum(v.ok for v in self.variants)
        if self.ok:
            rest = len(self.variants) - passing
            return f"{passing} of {len(self.variants)} variants meet every constraint" + (
                f"; {rest} listed with their violations" if rest else ""
            )
        if not self.variants:
            return "no variant could be written"
        reasons = self.unmet or ["each variant breaks another one (see their violations)"]
        return "no variant meets every constraint: " + "; ".join(reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "channel": self.channel,
            "language": self.language,
            "limit": self.limit,
            "ok": self.ok,
            "message": self.message,
            "unmet": self.unmet,
            "variants": [v.to_dict() for v in self.variants],
            "dropped": self.dropped,
            "notes": self.notes,
        }


def text_language(text: str) -> str:
    """``"zh"`` when CJK characters are at least 25% of the letters of ``text``, else ``"en"``.

    Example:
        >>> text_language("Chronix GPS定位运动手环"), text_language("智跑 Durable GPS Fitness Band")
        ('zh', 'en')
    """
    cjk, latin = len(_CJK.findall(text)), len(_LATIN.findall(text))
    return "zh" if cjk and cjk >= 0.25 * (cjk + latin) else "en"


def _contains(text: str, word: str) -> bool:
    if word.isascii() and word[:1].isalnum():  # whole words for Latin words: "best" is not in "bestow"
        return re.search(r"(?<![A-Za-z])" + re.escape(word) + r"(?![A-Za-z])", text, re.IGNORECASE) is not None
    return word.lower() in text.lower()


def check_ad(
    text: str,
    item: AdItem,
    *,
    limit: int,
    language: str,
    must_mention: Sequence[str] = (),
    banned: Sequence[str] = (),
) -> dict[str, Check]:
    """Every constraint's check of one ad text (see the module docstring for each).

    Example:
        >>> item = AdItem("I1", "Mug", brand="Acme", price=9.0, currency="USD")
        >>> checks = check_ad("Best Acme mug, free shipping, $7.00!", item, limit=30, language="en",
        ...                   must_mention=["price"], banned=["mug"])
        >>> {name: c.ok for name, c in checks.items()}
        {'length': False, 'banned': False, 'must_mention': False, 'language': True, 'claims': False}
        >>> checks["claims"].detail
        'free shipping, $7.00, best'
    """
    facts = item.facts()
    grounding = " ".join(f.value for f in facts) + " " + item.title + " " + item.description
    checks: dict[str, Check] = {}
    checks["length"] = Check(len(text) <= limit, f"{len(text)} characters, the limit is {limit}")
    hits = [word for word in banned if word.strip() and _contains(text, word.strip())]
    checks["banned"] = Check(not hits, ", ".join(hits))
    missing = []
    for name in must_mention:
        value = item.attribute(name)
        if name == "price" and value:
            found = any(re.search(rf"(?<![\d.]){re.escape(p)}(?!\d)", text) for p in _price_forms(item.price))
        else:
            found = bool(value) and value.lower() in text.lower()
        if not found:
            missing.append(name)
    checks["must_mention"] = Check(not missing, ", ".join(missing))
    found_language = text_language(text)
    checks["language"] = Check(found_language == language, f"written in {found_language}, asked {language}")
    unsupported = list(check_faithfulness(text, facts).unsupported)
    # Stricter than numbers alone: an ad's percentage or period must occur as such in the facts
    # (a "30cm" size grounds no "30% off"), and an amount must be the item's price.
    compact = re.sub(r"\s+", "", grounding).lower()
    for kind, span in find_claims(text):
        as_written = re.sub(r"\s+", "", span).lower() in compact
        is_price = any(re.search(rf"(?<![\d.]){re.escape(p)}(?!\d)", span) for p in _price_forms(item.price))
        wrong = (kind in ("percent", "period") and not as_written) or (kind == "amount" and not is_price)
        if wrong and span not in unsupported:
            unsupported.append(span)
    for word in CLAIM_WORDS:
        flagged = any(word.lower() in claim.lower() for claim in unsupported)  # the checker's promises
        if not flagged and _contains(text, word) and not _contains(grounding, word):
            unsupported.append(word)
    checks["claims"] = Check(not unsupported, ", ".join(unsupported))
    return checks


def _price_forms(price: float | None) -> list[str]:
    return [] if price is None else [f"{price:.2f}", f"{price:g}", f"{price:,.2f}"]


def _unmeetable(item: AdItem, must_mention: Sequence[str], limit: int, language: str) -> list[str]:
    """Constraints no ad can meet, known before writing any: absent attributes, too little room."""
    unmet = [f"must_mention {name}: the item has no {name}" for name in must_mention if not item.attribute(name)]
    values = [item.attribute(name) for name in must_mention if item.attribute(name)]
    needed = sum(len(v) for v in values) + (len(values) - 1) * (1 if language == "zh" else 2)
    if values and needed > limit:
        unmet.append(
            f"length: the must-mention values alone ({', '.join(must_mention)}) need {needed} characters, "
            f"the limit is {limit}"
        )
    return unmet


#: Scores ad texts of one item and channel (higher: more clicks expected), e.g. a CTR model's scorer.
VariantScorer = Callable[[AdItem, str, Sequence[str]], Sequence[float]]


def write_ad_variants(
    item: AdItem,
    channel: str,
    n: int = 5,
    *,
    language: str | None = None,
    must_mention: Sequence[str] = (),
    banned: Sequence[str] = (),
    limits: Mapping[str, Mapping[str, int]] | None = None,
    generator: TextGenerator | None = None,
    scorer: VariantScorer | None = None,
    styles: Sequence[str] = AD_STYLES,
) -> AdCopyResult:
    """Up to ``n`` distinct ads for ``item`` on ``channel``, checked, scored and sorted best first.

    Args:
        item: the item's catalog facts.
        channel: ``search``, ``feed`` or ``push``.
        n: variants wanted (1-10); templates give at most one per style.
        language: ``zh`` or ``en``; default the item's language.
        must_mention: attributes of :data:`ATTRIBUTES` each ad must name.
        banned: words no ad may contain (the settings' list plus the caller's).
        limits: channel -> language -> characters; default :data:`DEFAULT_LIMITS`.
        generator: a model-backed generator; default (and fallback) the templates.
        scorer: a CTR scorer of the texts; default every variant gets :data:`NEUTRAL_SCORE`.
        styles: the template styles tried, in order.

    Returns:
        The result, with ``unmet`` constraints and ``dropped`` model drafts (see the module docstring).

    Raises:
        InputError: an unknown channel, language or attribute, or ``n`` outside 1-10.
    """
    limits = limits or DEFAULT_LIMITS
    if channel not in limits:
        raise InputError(f"unknown channel {channel!r}: use one of {', '.join(limits)}", field="channel")
    if not 1 <= n <= 10:
        raise InputError(f"n must be between 1 and 10, got {n}", field="n")
    lang = normalize_language(language) if language else item.detected_language()
    if lang not in ("zh", "en"):
        raise InputError(f"unsupported language {language!r}: use zh or en", field="language")
    unknown = [name for name in must_mention if name not in ATTRIBUTES]
    if unknown:
        raise InputError(f"unknown attribute {unknown[0]!r}: use any of {', '.join(ATTRIBUTES)}", field="must_mention")
    must_mention = list(dict.fromkeys(must_mention))
    limit = int(limits[channel][lang])
    result = AdCopyResult(item.item_id, channel, lang, limit, [], _unmeetable(item, must_mention, limit, lang))

    def check(text: str) -> dict[str, Check]:
        return check_ad(text, item, limit=limit, language=lang, must_mention=must_mention, banned=banned)

    if generator is not None and not isinstance(generator, TemplateGenerator):
        result.variants += _model_variants(item, generator, n, lang, limit, must_mention, banned, check, result)
    if len(result.variants) < n:  # templates fill up: every style is written, the n best are kept
        seen = {v.text for v in result.variants}
        for style in styles:
            variant = _template_variant(item, style, lang, must_mention, banned, check)
            if variant is not None and variant.text not in seen:
                seen.add(variant.text)
                result.variants.append(variant)
    _score(result, item, scorer)
    del result.variants[n:]
    if len(result.variants) < n:
        result.notes.append(f"{len(result.variants)} distinct variants of {n} asked: the templates have no more styles")
    for name in ("length", "banned", "must_mention", "language", "claims"):
        failed_by_all = result.variants and all(not v.checks[name].ok for v in result.variants)
        if failed_by_all and not any(u.startswith(name) for u in result.unmet):
            result.unmet.append(f"{name}: no variant meets it ({result.variants[0].checks[name].detail})")
    return result


def _template_variant(
    item: AdItem,
    style: str,
    lang: str,
    must_mention: Sequence[str],
    banned: Sequence[str],
    check: Callable[[str], dict[str, Check]],
) -> AdVariant | None:
    keep = {"product", "style"} | {"product" if name == "title" else name for name in must_mention}
    # A fact holding a banned word (a banned brand, say) is left out unless it must be mentioned.
    facts = [
        fact
        for fact in [*item.facts(), Fact("style", style, "request")]
        if fact.key in keep or not any(word.strip() and _contains(fact.value, word.strip()) for word in banned)
    ]
    template = TemplateGenerator()
    best: AdVariant | None = None  # the shortest rendering so far
    droppable = [key for key in _SHORTEN_ORDER if key not in keep]
    for dropped in range(len(droppable) + 1):
        gone = set(droppable[:dropped])
        text = template.generate("ad_variant", [f for f in facts if f.key not in gone], language=lang).text
        variant = AdVariant(text, style, template.name, check(text))
        best = variant
        if variant.checks["length"].ok:
            return variant
    return best  # even the shortest rendering is too long: returned with its violation


def _model_variants(
    item: AdItem,
    generator: TextGenerator,
    n: int,
    lang: str,
    limit: int,
    must_mention: Sequence[str],
    banned: Sequence[str],
    check: Callable[[str], dict[str, Check]],
    result: AdCopyResult,
) -> list[AdVariant]:
    rules = [f"each at most {limit} characters", "no claim, number or superlative the facts do not state"]
    if must_mention:
        rules.append("each must mention: " + ", ".join(must_mention))
    if banned:
        rules.append("never use the words: " + ", ".join(banned))
    instruction = f"Write {n} different ads for the {result.channel} channel, one per line, " + "; ".join(rules) + "."
    facts = item.facts()
    answer = generator.generate("ad_copy", facts, language=lang, instruction=instruction)
    if answer.fallback_reason is not None or answer.generator == "template":
        result.notes.append(f"the model was not used ({answer.fallback_reason or 'template'}): templates wrote them")
        return []
    out: list[AdVariant] = []
    for line in answer.text.splitlines():
        text = re.sub(r"^\s*(?:\d+[.)、:]|[-*•])\s*", "", line).strip().strip('"“”')
        if not text or any(v.text == text for v in out):
            continue
        variant = AdVariant(text, "model", answer.generator, check(text))
        if not variant.ok:  # one rewrite with its violations named, then it is dropped
            fix = f"Rewrite this ad: {text}\nIt must fix: " + "; ".join(variant.violations) + ". " + instruction
            retry = generator.generate("ad_copy", facts, language=lang, instruction=fix)
            fixed = retry.text.splitlines()[0].strip() if retry.fallback_reason is None else ""
            fixed = re.sub(r"^\s*(?:\d+[.)、:]|[-*•])\s*", "", fixed).strip().strip('"“”')
            repaired = AdVariant(fixed, "model", answer.generator, check(fixed), repaired=True) if fixed else None
            if repaired is None or not repaired.ok:
                result.dropped.append({"text": text, "violations": variant.violations})
                continue
            variant = repaired
        out.append(variant)
        if len(out) >= n:
            break
    return out


def _score(result: AdCopyResult, item: AdItem, scorer: VariantScorer | None) -> None:
    if scorer is not None and result.variants:
        scores = list(scorer(item, result.channel, [v.text for v in result.variants]))
        for variant, score in zip(result.variants, scores, strict=True):
            variant.score, variant.score_source = float(score), "ctr"
    order = {id(v): i for i, v in enumerate(result.variants)}
    result.variants.sort(key=lambda v: (len(v.violations), -v.score, order[id(v)]))
