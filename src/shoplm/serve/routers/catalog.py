"""The catalog: ``PUT /v1/items``, ``GET /v1/items/{item_id}/similar``, ``GET /v1/search``."""

from __future__ import annotations

import json
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from shoplm.app.recommender import ShopRecommender
from shoplm.ingest.pipeline import ingest
from shoplm.recommend.catalog import CATALOG_COLUMNS
from shoplm.serve.deps import get_recommender, get_state, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from shoplm.serve.routers.events import ingest_result
from shoplm.serve.routers.recommendations import recommendation_answer, recommendation_list
from shoplm.serve.schemas import ItemBatch, ItemsResult, RecommendationList

router = APIRouter(prefix="/v1", tags=["catalog"], responses=ERROR_RESPONSES)

_ITEM_COLUMNS = ("item_id", "title", "description", "category", "brand", "price", "currency", "stock", "language")


def items_frame(batch: ItemBatch) -> pd.DataFrame:
    """The batch as the ingest pipeline's input frame."""
    rows = []
    for item in batch.items:
        row = item.model_dump()
        out = {c: ("" if row[c] is None and c not in ("price", "stock") else row[c]) for c in _ITEM_COLUMNS}
        out["attributes"] = json.dumps(row["attributes"] or {}, ensure_ascii=False, sort_keys=True)
        rows.append(out)
    frame = pd.DataFrame(rows, columns=[*_ITEM_COLUMNS, "attributes"])
    frame["price"] = pd.to_numeric(frame["price"], errors="coerce")
    frame["stock"] = pd.to_numeric(frame["stock"], errors="coerce")
    return frame


@router.put(
    "/items",
    response_model=ItemsResult,
    summary="Add or update catalog items",
    dependencies=[Depends(require("write"))],
)
def put_items(batch: ItemBatch, request: Request) -> dict[str, object]:
    """Upsert items; new ones are encoded and recommendable at once (search, similar items)."""
    state = get_state(request)
    report = ingest("items", items_frame(batch), store=state.store, settings=state.settings)
    result = ingest_result(report, [i.item_id for i in batch.items])
    recommendable: list[str] = []
    shop = state.live.current
    if shop is not None and report.accepted:
        ids = sorted({i.item_id for i in batch.items})
        stored = state.store.items.by_ids(ids, CATALOG_COLUMNS)
        recommendable = shop.add_items(stored)
    return {**result, "recommendable": recommendable}


@router.get(
    "/items/{item_id}/similar",
    response_model=RecommendationList,
    summary="Items similar to or bought together with an item",
    dependencies=[Depends(require("read"))],
    responses={404: {"model": ErrorResponse, "description": "unknown item"}},
)
async def similar_items(
    request: Request,
    item_id: Annotated[str, Path(min_length=1, max_length=128)],
    shop: Annotated[ShopRecommender, Depends(get_recommender)],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    user_id: Annotated[str | None, Query(min_length=1, max_length=256, description="personalize for this user")] = None,
) -> Response:
    if item_id not in shop.engine.catalog.index:
        raise ApiError(404, f"no item {item_id!r} in the catalog", code="item_not_found")
    answer = await recommendation_answer(get_state(request), shop, user_id, "item_detail", k=k, item_id=item_id)
    return json_response(answer)


@router.get(
    "/search",
    response_model=RecommendationList,
    summary="Catalog search by meaning (multilingual), re-ranked for the user",
    dependencies=[Depends(require("read"))],
)
def search(
    q: Annotated[str, Query(min_length=1, max_length=500, description="the search text")],
    shop: Annotated[ShopRecommender, Depends(get_recommender)],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    user_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
) -> dict[str, object]:
    # A plain def: encoding the query (e5, tens of milliseconds) runs in a worker thread.
    if not q.strip():
        raise ApiError(422, "q: the search text is blank")
    return recommendation_list(shop, user_id, "search", k=k, query=q)
