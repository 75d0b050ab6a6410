"""``GET /v1/users/{user_id}/profile``: what shoplm knows of a user's interests."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from shoplm.recommend.live import ShopRecommender
from shoplm.serve.deps import get_recommender, require
from shoplm.serve.errors import ERROR_RESPONSES
from shoplm.serve.schemas import Profile

router = APIRouter(prefix="/v1/users", tags=["users"], responses=ERROR_RESPONSES)


def user_profile(shop: ShopRecommender, user_id: str, *, pseudonymous: bool = False) -> dict[str, Any]:
    """``ShopRecommender.profile(...).to_dict()``, also for users none of whose items the ALS model knows.

    ``ShopRecommender.profile`` raises ``TypeError`` for those (``ALSRecommender.user_vector``
    returns None there and ``_user_vector`` iterates it): unknown users and users who only saw
    new items. Until that is fixed in the engine, such a profile is made here from the catalog,
    without a vector.
    """
    try:
        return shop.profile(user_id, pseudonymous=pseudonymous).to_dict()
    except TypeError:
        key = shop.user_key(user_id, pseudonymous=pseudonymous)
        history, _purchased = shop.history(key)
        catalog = shop.engine.catalog
        positions = catalog.positions(history)
        categories = _shares(catalog.top_category[positions])
        brands = _shares(catalog.brand[positions])
        return {
            "user_id": key,
            "events": len(history),
            "top_categories": [{"category": c, "share": s} for c, s in categories[:5]],
            "top_brands": [{"brand": b, "share": s} for b, s in brands[:5]],
            "price_band": "unknown",
            "tags": [c for c, _ in categories[:3]] + [b for b, _ in brands[:2]],
            "vector": [],
        }


def _shares(values: Any) -> list[tuple[str, float]]:
    counts = Counter(str(v) for v in values if v)
    total = sum(counts.values())
    return [(v, round(n / total, 3)) for v, n in counts.most_common()] if total else []


@router.get(
    "/{user_id}/profile",
    response_model=Profile,
    summary="A user's interest tags, top categories and brands, price band and vector",
    dependencies=[Depends(require("read"))],
)
def profile(
    user_id: Annotated[str, Path(min_length=1, max_length=256, description="the shop's user id")],
    shop: Annotated[ShopRecommender, Depends(get_recommender)],
) -> dict[str, object]:
    """An unknown user has an empty profile (``cold_start: true``), not a 404: the shop may not have sent events yet."""
    found = user_profile(shop, user_id)
    return {**found, "user_id": user_id, "pseudonymous_id": found["user_id"], "cold_start": found["events"] == 0}
