"""The dashboard's "Review aspects" panel: positive and negative mentions per aspect category.

Computed on the fly over the shop's newest reviews (at most :data:`PANEL_REVIEWS`) with the
shipped aspect extractor, loaded once per process; embeddings go through the data directory's
cache, so a reload of the panel costs only the new reviews. Drawn on the server as inline SVG
(paired bars per category). An empty store says which command fills it.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shoplm.serve.deps import get_state
from shoplm.serve.routers.dashboard import DashboardKey, templates

router = APIRouter(prefix="/dashboard/fragments", include_in_schema=False)

#: the newest reviews the panel reads (a window keeps the panel a few seconds at most)
PANEL_REVIEWS = 300


def aspect_counts(rows: list[dict[str, Any]], extractor: Any) -> dict[str, Any]:
    """Positive / negative / neutral mentions per category over review rows (``text``, ``language``).

    Returns:
        ``{"rows": [{"category", "positive", "negative", "neutral", "total"}], "reviews", "skipped"}``,
        categories by mentions, most first (open ``other`` aspects are not counted).
    """
    from shoplm.insight.aspects import CATEGORIES

    texts = [str(row.get("text") or "") for row in rows]
    languages = [row.get("language") if row.get("language") in ("zh", "en") else None for row in rows]
    results = extractor.extract(texts, languages=languages)
    counts = {c: {"positive": 0, "negative": 0, "neutral": 0} for c in CATEGORIES}
    for result in results:
        seen = set()
        for aspect in result.aspects:
            key = (aspect.category, aspect.polarity)
            if aspect.category in counts and key not in seen:  # one mention per review and polarity
                seen.add(key)
                counts[aspect.category][aspect.polarity] += 1
    table = [{"category": c, **v, "total": sum(v.values())} for c, v in counts.items() if sum(v.values())]
    table.sort(key=lambda r: (-r["total"], r["category"]))
    return {"rows": table, "reviews": len(rows), "skipped": sum(r.skipped is not None for r in results)}


@router.get("/aspects", response_class=HTMLResponse)
async def aspects_fragment(request: Request, _key: DashboardKey) -> Response:
    state = get_state(request)

    def run() -> dict[str, Any]:
        from shoplm.insight.aspects import load_default_extractor

        rows = state.store.reviews.newest(limit=PANEL_REVIEWS)
        if not rows:
            return {"rows": [], "reviews": 0, "skipped": 0}
        return aspect_counts(rows, load_default_extractor(state.settings))

    summary = await anyio.to_thread.run_sync(run, limiter=state.compute_limiter())
    top = max((max(r["positive"], r["negative"]) for r in summary["rows"]), default=0)
    context = {
        **summary,
        "top": top,
        "missing": "no reviews yet: `shoplm ingest reviews FILE` stores them (try `shoplm reviews aspects TEXT`)",
    }
    return templates.TemplateResponse(request, "_aspects.html", context)
