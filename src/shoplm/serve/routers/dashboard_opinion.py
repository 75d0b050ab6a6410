"""The dashboard's "Opinion monitoring" panel: the shop's negative share over time with the spikes marked.

Drawn on the server (inline SVG) from the stored ``opinion`` report: the line is the negative
share of reviews over the trailing 7 days, each red mark a spike found (any level), and the
newest spikes are listed with their complaint topics. Before the job has run, the panel says
which command fills it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shoplm.errors import NotFoundError
from shoplm.serve.deps import get_state
from shoplm.serve.routers.dashboard import DashboardKey, templates

router = APIRouter(prefix="/dashboard/fragments", include_in_schema=False)

WIDTH, HEIGHT, PAD = 340.0, 130.0, 15.0
SMOOTH_DAYS = 7


def chart(report: dict[str, Any]) -> dict[str, Any]:
    """Polyline points (trailing 7-day negative share) and alert marks, in SVG coordinates."""
    rows = report["shop_daily"]
    if not rows:
        return {"points": "", "marks": [], "top": 0.0}
    day = np.array([np.datetime64(r["day"], "D").astype(np.int64) for r in rows])
    first, last = int(day.min()), int(day.max())
    reviews = np.zeros(last - first + 1)
    negative = np.zeros(last - first + 1)
    reviews[day - first] = [r["reviews"] for r in rows]
    negative[day - first] = [r["negative"] for r in rows]
    kernel = np.ones(SMOOTH_DAYS)
    shown = np.convolve(reviews, kernel)[: len(reviews)]
    share = np.divide(np.convolve(negative, kernel)[: len(reviews)], shown, out=np.zeros(len(reviews)), where=shown > 0)
    top = max(float(share.max()), 0.05)
    step = (WIDTH - 10) / max(len(share) - 1, 1)

    def y(value: float) -> float:
        return round(HEIGHT - PAD - value / top * (HEIGHT - PAD - 12), 1)

    points = " ".join(f"{5 + i * step:.1f},{y(v)}" for i, v in enumerate(share))
    marks = []
    for alert in report["alerts"]:
        offset = int(np.datetime64(alert["start"], "D").astype(np.int64)) - first
        if 0 <= offset < len(share):
            marks.append(
                {
                    "x": round(5 + offset * step, 1),
                    "y": y(float(share[offset])),
                    "title": f"{alert['start']} {alert['level']} {alert['key']}: {alert['negative']} negative",
                }
            )
    return {"points": points, "marks": marks, "top": round(top, 3), "first": rows[0]["day"], "last": rows[-1]["day"]}


@router.get("/opinion", response_class=HTMLResponse)
def opinion_fragment(request: Request, _key: DashboardKey) -> Response:
    from shoplm.app.opinion import opinion_report

    try:
        report: dict[str, Any] | None = opinion_report(get_state(request).store)
        missing = ""
    except NotFoundError as exc:
        report, missing = None, str(exc)
    context: dict[str, Any] = {"report": report, "missing": missing, "width": WIDTH, "height": HEIGHT}
    if report is not None:
        newest = sorted(report["alerts"], key=lambda a: (a["end"], a["start"]), reverse=True)
        context.update(chart=chart(report), alerts=newest[:8], topics=report["topics"][:6])
    return templates.TemplateResponse(request, "_opinion.html", context)
