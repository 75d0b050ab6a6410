"""The dashboard's "Ad copy" panel: the creative arms' posterior CTR of a top item, and its ad variants.

The item is the one shown most often in the stored impressions (else the catalog's first);
its variants are written by the templates for the feed channel with every check shown. Before
any impression log is stored, the chart shows each variant's length against the channel's limit
and the panel says which command brings the impressions in.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from shoplm.serve.deps import get_state
from shoplm.serve.routers.dashboard import DashboardKey, templates

router = APIRouter(prefix="/dashboard/fragments", include_in_schema=False)


@router.get("/ads", response_class=HTMLResponse)
def ads_fragment(
    request: Request, _key: DashboardKey, item: Annotated[str | None, Query(max_length=128)] = None
) -> Response:
    from shoplm.app.adcopy import creative_posteriors, top_ad_item, write_ads
    from shoplm.errors import NotFoundError

    state = get_state(request)
    item_id = item or top_ad_item(state.store)
    context: dict[str, object] = {"item_id": item_id, "bandit": None, "ads": None, "missing": ""}
    if item_id is None:
        context["missing"] = "no items yet: run `shoplm ingest items FILE`"
    else:
        try:
            context["bandit"] = creative_posteriors(state.store, state.settings, item_id)
            context["ads"] = write_ads(
                state.store, state.settings, item_id, "feed", 5, use_model=False, score_texts=False
            ).to_dict()
        except NotFoundError as exc:
            context["missing"] = str(exc)
    return templates.TemplateResponse(request, "_ads.html", context)
