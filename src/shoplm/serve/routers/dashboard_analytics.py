"""The dashboard's analytics panels: churn warnings, segments with basket rules, demand forecasts, scheduled jobs.

Each panel is a fragment the page loads after it opens, drawn from what the analytics jobs
stored (charts are inline SVG made on the server). A panel whose job has not run says which
command fills it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shoplm.app.insights import Insights
from shoplm.app.scheduler import job_statuses
from shoplm.errors import NotFoundError
from shoplm.serve.deps import get_insights, get_state
from shoplm.serve.routers.dashboard import DashboardKey, templates

router = APIRouter(prefix="/dashboard/fragments", include_in_schema=False)


def _report(insights: Insights, name: str) -> tuple[dict[str, Any] | None, str]:
    try:
        return insights.report(name), ""
    except NotFoundError as exc:
        return None, str(exc)


@router.get("/churn", response_class=HTMLResponse)
def churn_fragment(request: Request, _key: DashboardKey) -> Response:
    insights = get_insights(request)
    summary, missing = _report(insights, "churn")
    at_risk = insights.at_risk(limit=12) if summary is not None else None
    context = {"summary": summary, "at_risk": at_risk, "missing": missing}
    return templates.TemplateResponse(request, "_churn.html", context)


@router.get("/segments", response_class=HTMLResponse)
def segments_fragment(request: Request, _key: DashboardKey) -> Response:
    insights = get_insights(request)
    segments, missing = _report(insights, "segments")
    basket, _ = _report(insights, "basket")
    context = {"segments": segments, "basket": basket, "missing": missing}
    return templates.TemplateResponse(request, "_segments.html", context)


@router.get("/forecast", response_class=HTMLResponse)
def forecast_fragment(request: Request, _key: DashboardKey) -> Response:
    forecast, missing = _report(get_insights(request), "forecast")
    return templates.TemplateResponse(request, "_forecast.html", {"forecast": forecast, "missing": missing})


@router.get("/risk", response_class=HTMLResponse)
def risk_fragment(request: Request, _key: DashboardKey) -> Response:
    found = get_insights(request).fraud_alerts(limit=50)
    rules: dict[str, int] = {}
    for alert in found["alerts"]:
        for rule in alert["body"].get("rules", []):
            rules[rule["name"]] = rules.get(rule["name"], 0) + 1
    context = {
        "alerts": found["alerts"],
        "total": found["total"],
        "rules": [{"rule": name, "count": count} for name, count in sorted(rules.items(), key=lambda r: -r[1])],
        "missing": "no fraud alerts yet: run `shoplm fraud`",
    }
    return templates.TemplateResponse(request, "_risk.html", context)


@router.get("/jobs", response_class=HTMLResponse)
def jobs_fragment(request: Request, _key: DashboardKey) -> Response:
    state = get_state(request)
    status = job_statuses(state.store, state.settings, runs=30)
    return templates.TemplateResponse(
        request, "_jobs.html", {"status": status, "chart": list(reversed(status["runs"]))}
    )
