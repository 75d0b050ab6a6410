"""Ad copy and creative bandits on a shop's store: the item from the catalog, clicks from the impressions.

:func:`write_ads` reads the item, merges the settings' banned words and channel limits with the
call's, writes the variants with the configured generator (templates when none is) and scores
them with the CTR model when one is trained (:func:`variant_scorer`).
:func:`creative_posteriors` fits a :class:`~shoplm.marketing.bandits.ThompsonBandit` on the
item's stored impressions (or loads a saved one) and reports every creative arm's posterior.
Creative ``k`` of the impression log is the ``k``-th template style
(:data:`~shoplm.lm.generator.AD_STYLES`: classic, benefit, price, feature, question, brand).

Example:
    >>> from shoplm.store import Store
    >>> from shoplm.config import Settings
    >>> write_ads(Store.open("sqlite://"), Settings(data_dir="/tmp/shop"), "I1", "feed")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoplm.errors import InputError, NotFoundError
from shoplm.lm.generator import AD_STYLES, load_generator
from shoplm.marketing.adcopy import NEUTRAL_SCORE, AdCopyResult, AdItem, VariantScorer, write_ad_variants
from shoplm.marketing.bandits import ThompsonBandit

if TYPE_CHECKING:
    from shoplm.config import Settings
    from shoplm.store import Store

__all__ = ["ad_item", "creative_posteriors", "top_ad_item", "variant_scorer", "write_ads"]

log = logging.getLogger(__name__)
_ITEM_COLUMNS = ["item_id", "title", "description", "category", "brand", "price", "currency", "language", "attributes"]


def ad_item(store: Store, item_id: str) -> AdItem:
    """The catalog facts of ``item_id``.

    Raises:
        NotFoundError: no such item (code ``item_not_found``).
    """
    found = store.items.by_ids([item_id], _ITEM_COLUMNS)
    if found.empty:
        raise NotFoundError(f"no item {item_id!r} in the catalog", code="item_not_found")
    row = found.iloc[0]
    try:
        attributes = json.loads(row["attributes"] or "{}")
    except (TypeError, ValueError):
        attributes = {}
    price = row["price"]
    return AdItem(
        item_id=str(row["item_id"]),
        title=str(row["title"]),
        description=str(row["description"] or ""),
        category=str(row["category"] or ""),
        brand=str(row["brand"] or ""),
        price=None if price is None or price != price else float(price),
        currency=str(row["currency"] or ""),
        language=str(row["language"] or ""),
        attributes=attributes if isinstance(attributes, dict) else {},
    )


#: the impression scene whose CTR stands for an ad channel's
CHANNEL_SCENES = {"search": "search", "feed": "home", "push": "home"}
_encoders: dict[tuple[str, Path], Any] = {}


def _encode(settings: Settings) -> Any:
    """The shop's text encoder's ``encode`` (loaded once per process), or None without one."""
    from shoplm.errors import ModelNotFoundError
    from shoplm.lm import load_encoder

    key = (settings.encoder.name, settings.cache_dir)
    if key not in _encoders:
        try:
            _encoders[key] = load_encoder(settings).encode
        except (ModelNotFoundError, OSError) as exc:
            log.info("ad variants scored without text vectors: %s", exc)
            _encoders[key] = None
    return _encoders[key]


def variant_scorer(settings: Settings, *, texts: bool = True) -> VariantScorer | None:
    """The CTR model's scorer of ad texts (:class:`~shoplm.marketing.ctr.CreativeScorer`), or None.

    None when no CTR model is trained (``shoplm ctr train``): every variant then keeps the
    neutral score. The channel's scene (:data:`CHANNEL_SCENES`) and slot 0 are scored for the
    average user; with ``texts`` each variant's e5 vector moves its CTR by its similarity to
    the item's title.
    """
    from shoplm.app.ctr import load_ctr_scorer
    from shoplm.marketing.ctr import CreativeScorer

    try:
        ctr = load_ctr_scorer(settings)
    except NotFoundError as exc:
        log.debug("no CTR scorer for ad variants: %s", exc)
        return None

    def score(item: AdItem, channel: str, variants: Sequence[str]) -> list[float]:
        if ctr.featurizer.item_rows([item.item_id])[0] < 0:
            return [NEUTRAL_SCORE] * len(variants)  # an item newer than the model
        creative = CreativeScorer(ctr, _encode(settings) if texts else None, {item.item_id: item.title})
        scene = CHANNEL_SCENES.get(channel, "home")
        return [float(x) for x in creative.score(item.item_id, list(variants), scene=scene)]

    return score


def write_ads(
    store: Store,
    settings: Settings,
    item_id: str,
    channel: str,
    n: int = 5,
    *,
    language: str | None = None,
    must_mention: Sequence[str] = (),
    banned: Sequence[str] = (),
    use_model: bool = True,
    score_texts: bool = True,
) -> AdCopyResult:
    """``n`` checked, scored ad variants of a stored item (see :func:`~shoplm.marketing.adcopy.write_ad_variants`).

    Args:
        store: the shop's store.
        settings: its settings (``ads`` limits and banned words, ``generator``).
        item_id: the item.
        channel: ``search``, ``feed`` or ``push`` (or a channel added to ``ads.channel_limits``).
        n: variants wanted, 1-10.
        language: ``zh`` or ``en``; default the item's.
        must_mention: attributes each ad must name.
        banned: words banned for this call, besides ``ads.banned_words``.
        use_model: False: templates only, even when a model is configured.
        score_texts: False: the CTR model scores the item alone, no text vectors are computed.

    Raises:
        NotFoundError: an unknown item. InputError: a bad channel, language, attribute or n.
    """
    limits = {name: {"zh": limit.zh, "en": limit.en} for name, limit in settings.ads.channel_limits.items()}
    if channel not in limits:
        raise InputError(f"unknown channel {channel!r}: use one of {', '.join(limits)}", field="channel")
    item = ad_item(store, item_id)
    generator = load_generator(settings) if use_model and settings.generator.kind != "template" else None
    return write_ad_variants(
        item,
        channel,
        n,
        language=language,
        must_mention=must_mention,
        banned=[*settings.ads.banned_words, *banned],
        limits=limits,
        generator=generator,
        scorer=variant_scorer(settings, texts=score_texts),
    )


def _impressions(store: Store) -> Any:
    repository = getattr(store, "impressions", None)  # the CTR part's table; absent before it is ingested
    if repository is None:
        return None
    frame = repository.frame()
    return frame if len(frame) else None


def top_ad_item(store: Store) -> str | None:
    """The item shown most often in the impressions, else the first item of the catalog, else None."""
    frame = _impressions(store)
    if frame is not None:
        return str(frame["item_id"].value_counts().index[0])
    catalog = store.items.catalog(["item_id"])
    return None if catalog.empty else str(catalog["item_id"].iloc[0])


def creative_posteriors(
    store: Store, settings: Settings, item_id: str, *, state: Path | None = None, level: float = 0.9
) -> dict[str, Any]:
    """Every creative arm's Beta posterior of CTR for ``item_id``, and which arm Thompson sampling favours.

    Args:
        store: the shop's store (the item must exist; its impressions are read unless ``state``).
        settings: its settings (the seed of the posterior's P(best) draws).
        item_id: the item.
        state: a saved :class:`ThompsonBandit` directory to read instead of the impressions.
        level: the central posterior interval reported (0.9: 5%-95%).

    Returns:
        ``{"item_id", "source", "impressions", "arms": [{arm, style, impressions, clicks, mean, low,
        high, p_best}], "best_arm", "message"}``; ``arms`` is empty when nothing was shown yet.

    Raises:
        NotFoundError: an unknown item. ModelFileError: an unreadable state directory.
    """
    ad_item(store, item_id)  # 404 for an unknown item, even when a state file is given
    if state is not None:
        bandit = ThompsonBandit.load(state)
        source = f"state {state}"
    else:
        frame = _impressions(store)
        mine = frame[frame["item_id"] == item_id] if frame is not None else None
        if mine is None or mine.empty:
            return {
                "item_id": item_id,
                "source": "impressions",
                "impressions": 0,
                "arms": [],
                "best_arm": None,
                "message": "no impressions of this item yet: ingest an impression log (shoplm ingest impressions)",
            }
        bandit = ThompsonBandit(seed=settings.seed).fit(
            [item_id] * len(mine), mine["creative"].astype(int).astype(str).tolist(), mine["clicked"].astype(float)
        )
        source = "impressions"
    arms = bandit.posterior(item_id, level=level)
    rows = []
    for arm in arms:
        style = AD_STYLES[int(arm.arm)] if arm.arm.isdigit() and int(arm.arm) < len(AD_STYLES) else arm.arm
        rows.append({**arm.to_dict(), "style": style})
    best = max(rows, key=lambda r: r["p_best"]) if rows else None
    shown = sum(r["impressions"] for r in rows)
    message = (
        f"arm {best['arm']} ({best['style']}) is the best with probability {best['p_best']:.0%} "
        f"after {shown:,} impressions"
        if best
        else "no arms in the state file for this item"
    )
    return {
        "item_id": item_id,
        "source": source,
        "impressions": shown,
        "arms": rows,
        "best_arm": best["arm"] if best else None,
        "message": message,
    }
