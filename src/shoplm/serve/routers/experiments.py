"""``/v1/experiments``: A/B tests of recommendation strategies (create and stop: admin; reports: read).

The recommendation route asks :func:`~shoplm.serve.deps.get_running_experiments` which experiment runs on its scene
(cached for ``[experiments] cache_seconds``), serves the user's arm and logs the exposure; see
:mod:`shoplm.app.experiments`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StringConstraints

from shoplm.app.experiments import STRATEGIES, Experiments
from shoplm.recommend.engine import Scene
from shoplm.serve.auth import ApiKey
from shoplm.serve.deps import get_state, json_response, require
from shoplm.serve.errors import ERROR_RESPONSES, ErrorResponse

router = APIRouter(prefix="/v1", tags=["experiments"], responses=ERROR_RESPONSES)

_NOT_FOUND = {404: {"model": ErrorResponse, "description": "no such experiment"}}
_CONFLICT = {409: {"model": ErrorResponse, "description": "another experiment runs on the scene, or stopped already"}}
ExperimentId = Annotated[str, Path(min_length=1, max_length=64, description="the experiment's id")]


# Every constraint of an experiment is in the schema, so a request the schema admits is accepted (or
# meets a 409: the scene has a running experiment): arm names are an object's keys (never two alike),
# weights are relative (any positive numbers), strategies an enumeration.
ArmName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,15}$")]


class ArmIn(BaseModel):
    strategy: Literal[STRATEGIES] = Field(  # type: ignore[valid-type]
        description="default (the live blend), popular, or one candidate source alone"
    )
    weight: float = Field(
        gt=0, le=1_000_000, description="relative traffic weight: 50 and 50, or 1 and 1, split evenly"
    )


def _arm_names_as_property_names(schema: dict[str, Any]) -> None:
    """Arm names as ``propertyNames`` (every key must match), not ``patternProperties`` (others allowed)."""
    ((pattern, arm),) = schema.pop("patternProperties").items()
    schema["propertyNames"] = {"pattern": pattern}
    schema["additionalProperties"] = arm


class ExperimentIn(BaseModel):
    # At least one character that is not white space (Python's and the schema's definition alike).
    name: str = Field(min_length=1, max_length=200, pattern=r"[^\s\x1c-\x1f]")
    arms: dict[ArmName, ArmIn] = Field(
        min_length=2,
        max_length=20,
        description="arm name (1-16 of a-z, 0-9, '_', '-') -> strategy and weight; the first arm is the control",
        json_schema_extra=_arm_names_as_property_names,
    )
    scene: Scene = "home"
    metric: Literal["ctr", "conversion"] = Field(default="ctr", description="the primary metric")


class ArmOut(BaseModel):
    name: str
    strategy: str
    weight: float = Field(description="share of the traffic, of 1")


class ExperimentOut(BaseModel):
    experiment_id: str
    name: str
    scene: str
    arms: list[ArmOut]
    metric: str
    status: Literal["running", "stopped"]
    created_ms: int
    start_ms: int
    stop_ms: int | None


class Proportion(BaseModel):
    value: float | None = Field(description="null without exposed users")
    low: float | None
    high: float | None


class Difference(BaseModel):
    value: float
    low: float
    high: float


class SequentialTest(BaseModel):
    p_value: float = Field(description="always-valid mSPRT p-value: safe to read at any time")
    looks: int
    significant: bool
    verdict: str


class ArmReport(BaseModel):
    name: str
    strategy: str
    weight: float
    control: bool
    exposed: int = Field(description="users shown this arm")
    clickers: int = Field(description="exposed users who clicked after their first exposure")
    converters: int = Field(description="exposed users who purchased after their first exposure")
    ctr: Proportion
    conversion: Proportion
    difference: dict[str, Difference] | None = Field(description="vs control per metric; null: not enough data")
    sequential: dict[str, SequentialTest] | None = Field(description="mSPRT per metric; null: not enough data")


class DayArm(BaseModel):
    exposed: int
    rate: float | None


class Day(BaseModel):
    day: str
    arms: dict[str, DayArm]


class ExperimentReport(ExperimentOut):
    enough_data: bool
    summary: str = Field(description="'not enough data: ...' until every arm has its minimum of exposed users")
    alpha: float
    tau2: float
    min_exposed_per_arm: int
    arms: list[ArmReport]  # type: ignore[assignment]
    days: list[Day] = Field(description="cumulative exposed users and the primary metric per arm, per UTC day")


class ExperimentReports(BaseModel):
    experiments: list[ExperimentReport]


def experiments_service(request: Request) -> Experiments:
    state = get_state(request)
    return Experiments(state.store, state.settings.experiments)


@router.post(
    "/experiments",
    response_model=ExperimentOut,
    status_code=201,
    summary="Start an A/B test of recommendation strategies",
    responses=_CONFLICT,
)
def create_experiment(
    body: ExperimentIn, request: Request, key: Annotated[ApiKey, Depends(require("admin"))]
) -> Response:
    """422 for an unknown strategy, fewer than two arms, a malformed arm name or a weight that is not
    positive; 409 when an experiment runs on the scene already."""
    arms = [{"name": name, **arm.model_dump()} for name, arm in body.arms.items()]
    made = experiments_service(request).create(
        body.name, arms, scene=body.scene, metric=body.metric, relative_weights=True, actor=key.key_id
    )
    return json_response(made, status_code=201)


@router.post(
    "/experiments/{experiment_id}/stop",
    response_model=ExperimentOut,
    summary="Stop a running experiment",
    responses={**_NOT_FOUND, **_CONFLICT},
)
def stop_experiment(
    experiment_id: ExperimentId, request: Request, key: Annotated[ApiKey, Depends(require("admin"))]
) -> Response:
    """409 when it is stopped already."""
    return json_response(experiments_service(request).stop(experiment_id, actor=key.key_id))


@router.get(
    "/experiments",
    response_model=ExperimentReports,
    summary="The newest experiments with CTR and conversion per arm",
    dependencies=[Depends(require("read"))],
)
def list_experiments(request: Request, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Response:
    service = experiments_service(request)
    found = service.list_experiments()[:limit]
    return json_response({"experiments": [service.report(e["experiment_id"]) for e in found]})


@router.get(
    "/experiments/{experiment_id}",
    response_model=ExperimentReport,
    summary="CTR and conversion per arm with intervals, and an always-valid sequential test",
    dependencies=[Depends(require("read"))],
    responses=_NOT_FOUND,
)
def get_experiment(experiment_id: ExperimentId, request: Request) -> Response:
    """ "not enough data" (``enough_data: false``) until every arm has its minimum of exposed users."""
    return json_response(experiments_service(request).report(experiment_id))
