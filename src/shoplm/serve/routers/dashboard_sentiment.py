"""The dashboard's "Review sentiment" panel: polarity counts of the scored reviews per item category.

Drawn on the server (inline SVG, stacked bars) from what ``shoplm reviews analyze`` or ingest
stored; an empty store says which command fills it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shoplm.serve.deps import get_state
from shoplm.serve.routers.dashboard import DashboardKey, templates

router = APIRouter(prefix="/dashboard/fragments", include_in_schema=False)


@router.get("/sentiment", response_class=HTMLResponse)
def sentiment_fragment(request: Request, _key: DashboardKey) -> Response:
    store = get_state(request).store
    rows = store.review_sentiment.counts_by_category(level=1, limit=10)
    top = max((row["total"] for row in rows), default=0)
    totals = {p: sum(row[p] for row in rows) for p in ("positive", "neutral", "negative")}
    context = {
        "rows": rows,
        "top": top,
        "totals": totals,
        "scored": sum(totals.values()),
        "missing": "no scored reviews yet: `shoplm ingest reviews FILE` scores them, or run `shoplm reviews analyze`",
    }
    return templates.TemplateResponse(request, "_sentiment.html", context)
