"""The dashboard's "Review replies" panel: the newest negative reviews with their drafted replies.

Drafts are made when the panel opens, with the configured generator (at most
:data:`PANEL_REVIEWS` of them; the template backend takes milliseconds, a model endpoint its
own time), each checked for faithfulness. The chart counts the drafts per backend and outcome
(faithful, replaced, fallback, flagged). Nothing is stored.
"""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shoplm.serve.routers.dashboard import DashboardKey, templates
from shoplm.serve.routers.review_replies import get_review_replies

router = APIRouter(prefix="/dashboard/fragments", include_in_schema=False)

#: Negative reviews drafted per panel view.
PANEL_REVIEWS = 5
#: The outcomes the chart shows, in this order, with their colours.
OUTCOME_COLOURS = {"faithful": "#2f9e44", "replaced": "#e03131", "fallback": "#f08c00", "flagged": "#862e9c"}


@router.get("/replies", response_class=HTMLResponse)
def replies_fragment(request: Request, _key: DashboardKey) -> Response:
    service = get_review_replies(request)
    drafts = service.newest_negative(limit=PANEL_REVIEWS)
    configured = service.generator().name  # e.g. "template", "openai:qwen|template" (with its fallback)
    counts = Counter((configured, d["outcome"]) for d in drafts)
    bars = [
        {"backend": backend, "outcome": outcome, "count": n}
        for (backend, outcome), n in sorted(counts.items())
        if outcome in OUTCOME_COLOURS
    ]
    context = {"drafts": drafts, "bars": bars, "colours": OUTCOME_COLOURS}
    return templates.TemplateResponse(request, "_replies.html", context)
