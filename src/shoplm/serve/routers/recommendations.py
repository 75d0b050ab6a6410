"""``GET /v1/recommendations``: the engine's answer for a user in a scene."""

from __future__ import annotations

import time
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from shoplm.app.experiments import exposure_row
from shoplm.app.recommender import ShopRecommender
from shoplm.recommend.engine import Scene
from shoplm.serve.deps import (
    ServiceState,
    get_recommender,
    get_running_experiments,
    get_state,
    json_response,
    require,
)
from shoplm.serve.errors import ERROR_RESPONSES
from shoplm.serve.schemas import RecommendationList

router = APIRouter(prefix="/v1", tags=["recommendations"], responses=ERROR_RESPONSES)


def recommendation_list(shop: ShopRecommender, user_id: str | None, scene: str, **options: Any) -> dict[str, object]:
    """Recommend and shape the response; the user's history is read once for both."""
    stored = shop.history(shop.user_key(user_id)) if user_id else ([], [])
    recs = shop.recommend(user_id, scene=scene, stored=stored, **options)
    return _shaped(shop, user_id, scene, stored, recs or [])


async def recommendation_answer(
    state: ServiceState, shop: ShopRecommender, user_id: str | None, scene: str, **options: Any
) -> dict[str, object]:
    """:func:`recommendation_list` for the event loop: a cached answer at once, a new one in a thread.

    A cached answer (the user's history and the models unchanged since it was computed) costs
    a history read; computing one costs a few milliseconds, done in a worker thread so that
    the event loop meanwhile acknowledges events and answers cached requests.
    """
    stored = shop.history(shop.user_key(user_id)) if user_id else ([], [])
    recs = shop.recommend(user_id, scene=scene, stored=stored, cached_only=True, **options)
    if recs is None:
        recs = await anyio.to_thread.run_sync(
            partial(shop.recommend, user_id, scene=scene, stored=stored, **options), limiter=state.compute_limiter()
        )
    return _shaped(shop, user_id, scene, stored, recs or [])


def _shaped(
    shop: ShopRecommender, user_id: str | None, scene: str, stored: tuple[list[str], list[str]], recs: list[Any]
) -> dict[str, object]:
    return {
        "user_id": user_id,
        "scene": scene,
        "cold_start": not stored[0],
        "model_version": shop.version,
        "items": [r.to_dict() for r in recs],
    }


@router.get(
    "/recommendations",
    response_model=RecommendationList,
    summary="Recommendations for a user in a scene, with reasons",
    dependencies=[Depends(require("read"))],
)
async def recommendations(
    request: Request,
    shop: Annotated[ShopRecommender, Depends(get_recommender)],
    user_id: Annotated[
        str | None, Query(min_length=1, max_length=256, description="the shop's user id; omit for an anonymous visitor")
    ] = None,
    scene: Annotated[Scene, Query(description="where the list is shown")] = "home",
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    item_id: Annotated[
        str | None, Query(min_length=1, max_length=128, description="the item of item_detail / post_purchase")
    ] = None,
    query: Annotated[
        str | None, Query(min_length=1, max_length=500, description="the search text (scene search)")
    ] = None,
    # A plain array with an empty default, not "array or null": in a query string one value and a
    # one-element array look the same, and a nullable array makes schema-checking clients (and
    # fuzzers) count a single value as invalid.
    cart: Annotated[
        list[str], Query(max_length=100, description="cart item ids: repeat the parameter or separate by commas")
    ] = [],  # noqa: B006 (FastAPI copies defaults per request)
) -> Response:
    """Unknown users get a cold-start list (popular and fresh items) and ``cold_start: true``."""
    cart_ids = [part.strip() for value in cart for part in value.split(",") if part.strip()]
    state = get_state(request)
    options: dict[str, Any] = {"k": k, "item_id": item_id, "cart": cart_ids, "query": query}
    # An A/B test on this scene: the user's arm decides the strategy (users only: they are the unit).
    running = get_running_experiments(request)
    experiment = running.for_scene(scene) if user_id else None
    if experiment is None:
        return json_response(await recommendation_answer(state, shop, user_id, scene, **options))
    user_key = shop.user_key(user_id)  # type: ignore[arg-type]
    arm = experiment.assign(user_key)
    answer = await recommendation_answer(state, shop, user_id, scene, strategy=arm.strategy, **options)
    exposure = exposure_row(experiment, arm, user_key, int(time.time() * 1000))
    if running.first_time(exposure["event_id"]):
        state.events.submit([exposure])  # committed by the event writer; the answer does not wait for it
    return json_response({**answer, "experiment": experiment.experiment_id, "arm": arm.name})
