"""The dashboard's CTR panel: click-through rate by position from the stored impressions, and the live model.

Position bias at a glance (the first slots draw more clicks), from ``store.impressions``; with a
trained model (``shoplm ctr train``) the panel names its version. Without impressions it says
which command fills it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shoplm.app.ctr import ctr_registry
from shoplm.serve.deps import get_state
from shoplm.serve.routers.dashboard import DashboardKey, templates

router = APIRouter(prefix="/dashboard/fragments", include_in_schema=False)


@router.get("/ctr", response_class=HTMLResponse)
def ctr_fragment(request: Request, _key: DashboardKey) -> Response:
    state = get_state(request)
    counts = state.store.impressions.by_position()
    rows = [
        {"position": f"slot {int(r.position)}", "ctr": round(100.0 * r.clicks / r.shown, 1), "shown": int(r.shown)}
        for r in counts.itertuples()
        if r.shown
    ]
    context = {
        "rows": rows,
        "impressions": int(counts["shown"].sum()) if len(counts) else 0,
        "clicks": int(counts["clicks"].sum()) if len(counts) else 0,
        "version": ctr_registry(state.settings).current(),
        "missing": "no impressions stored yet: run `shoplm ingest impressions FILE` (the demo's impressions.parquet)",
    }
    return templates.TemplateResponse(request, "_ctr.html", context)
