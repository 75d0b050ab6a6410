"""``GET /v1/users/{user_id}/profile``: what shoplm knows of a user's interests."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from shoplm.app.recommender import ShopRecommender
from shoplm.serve.deps import get_recommender, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES
from shoplm.serve.schemas import Profile

router = APIRouter(prefix="/v1/users", tags=["users"], responses=ERROR_RESPONSES)


def user_profile(shop: ShopRecommender, user_id: str, *, pseudonymous: bool = False) -> dict[str, Any]:
    """The user's profile as a dict (an unknown user gets an empty one)."""
    return shop.profile(user_id, pseudonymous=pseudonymous).to_dict()


@router.get(
    "/{user_id}/profile",
    response_model=Profile,
    summary="A user's interest tags, top categories and brands, price band and vector",
    dependencies=[Depends(require("read"))],
)
async def profile(
    user_id: Annotated[str, Path(min_length=1, max_length=256, description="the shop's user id")],
    shop: Annotated[ShopRecommender, Depends(get_recommender)],
) -> Response:
    """An unknown user has an empty profile (``cold_start: true``), not a 404: the shop may not have sent events yet."""
    found = user_profile(shop, user_id)
    return json_response(
        {**found, "user_id": user_id, "pseudonymous_id": found["user_id"], "cold_start": found["events"] == 0}
    )
