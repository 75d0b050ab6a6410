"""The dashboard's Experiments panel: each arm's cumulative metric per day, and the arms' table.

Shows the running experiment (or the newest one): one SVG polyline per arm (cumulative CTR or
conversion at each day's end), then exposures, CTR and conversion with 95% intervals, the
difference from control and the mSPRT's always-valid p-value. Without experiments it names the
command that starts one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shoplm.app.experiments import Experiments
from shoplm.serve.deps import get_state
from shoplm.serve.routers.dashboard import DashboardKey, templates

router = APIRouter(prefix="/dashboard/fragments", include_in_schema=False)

#: One colour per arm, in arm order (control first).
COLOURS = ("#7f7f7f", "#3b5bdb", "#f08c00", "#2f9e44", "#c2255c", "#6741d9")
WIDTH, HEIGHT = 340, 130


def arm_lines(days: list[dict[str, Any]], arms: list[str]) -> dict[str, Any]:
    """SVG polyline points per arm (x: day, y: the cumulative rate), scaled to the chart.

    Example:
        >>> days = [{"day": "d1", "arms": {"a": {"rate": 0.1}}}, {"day": "d2", "arms": {"a": {"rate": 0.2}}}]
        >>> arm_lines(days, ["a"])["lines"][0]["points"]
        '5.0,62.5 335.0,10.0'
    """
    rates = [d["arms"][a]["rate"] for d in days for a in arms if d["arms"].get(a, {}).get("rate") is not None]
    top = max(rates, default=0.0) or 1.0
    shown = days if len(days) > 1 else days * 2  # one day: a flat segment, not an invisible point
    step = (WIDTH - 10) / max(len(shown) - 1, 1)
    scale = (HEIGHT - 25) / top
    lines = []
    for index, arm in enumerate(arms):
        points = [
            f"{5 + i * step:.1f},{HEIGHT - 15 - d['arms'][arm]['rate'] * scale:.1f}"
            for i, d in enumerate(shown)
            if d["arms"].get(arm, {}).get("rate") is not None
        ]
        lines.append({"arm": arm, "colour": COLOURS[index % len(COLOURS)], "points": " ".join(points)})
    return {
        "lines": lines,
        "top": top,
        "first": days[0]["day"] if days else "",
        "last": days[-1]["day"] if days else "",
        "width": WIDTH,
        "height": HEIGHT,
    }


@router.get("/experiments", response_class=HTMLResponse)
def experiments_fragment(request: Request, _key: DashboardKey) -> Response:
    state = get_state(request)
    service = Experiments(state.store, state.settings.experiments)
    found = service.list_experiments()
    chosen = next((e for e in found if e["status"] == "running"), found[0] if found else None)
    report = service.report(chosen["experiment_id"]) if chosen else None
    chart = arm_lines(report["days"], [a["name"] for a in report["arms"]]) if report and report["days"] else None
    context = {
        "report": report,
        "chart": chart,
        "others": len(found) - 1 if found else 0,
        "missing": "no experiments yet: run `shoplm experiments create NAME --arm control=default --arm b=popular`",
    }
    return templates.TemplateResponse(request, "_experiments.html", context)
