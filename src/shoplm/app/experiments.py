"""A/B tests of recommendation strategies bound to the store: create, list, stop, report; serving's side.

An experiment runs on one recommendation scene (one running experiment per scene, so a request
serves one strategy); each arm names a strategy of :data:`STRATEGIES`. The recommendation route
asks :class:`RunningExperiments` (cached a few seconds) which experiment runs on the scene,
assigns the user (:func:`~shoplm.marketing.experiments.assign`), serves the arm's strategy and
logs an ``exposure`` event through the event writer (:func:`exposure_row`); the report reads those
exposures and the exposed users' click, add-to-cart and purchase events back.

Example:
    >>> from shoplm.store import Store
    >>> experiments = Experiments(Store.open("sqlite://"))
    >>> made = experiments.create("home test", [{"name": "control", "strategy": "default", "weight": 50},
    ...                                         {"name": "treatment", "strategy": "popular", "weight": 50}])
    >>> experiments.report(made["experiment_id"])["summary"]
    'not enough data: no user has been exposed yet'
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shoplm.config import ExperimentSettings
from shoplm.errors import ConflictError, InputError, NotFoundError
from shoplm.marketing.experiments import (
    CLICK_EVENTS,
    METRICS,
    PURCHASE_EVENTS,
    Arm,
    arm_report,
    assign,
    daily_series,
    exposure_scene,
    parse_exposure_scene,
    user_outcomes,
    validate_arms,
)
from shoplm.recommend.components import SCENES, SOURCES
from shoplm.store import Store

__all__ = ["STRATEGIES", "Experiment", "Experiments", "RunningExperiments", "exposure_row", "parse_arm_options"]

#: What an arm can serve: ``default`` (the live model, every source and the ranker), ``popular``
#: (popularity only), or one candidate source of the engine alone (fused with nothing else).
STRATEGIES: tuple[str, ...] = ("default", "popular", *SOURCES)
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class Experiment:
    """One experiment as serving needs it."""

    experiment_id: str
    name: str
    scene: str
    arms: tuple[Arm, ...]
    metric: str
    status: str
    created_ms: int
    start_ms: int
    stop_ms: int | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Experiment:
        return cls(
            experiment_id=str(row["experiment_id"]),
            name=str(row["name"]),
            scene=str(row["scene"]),
            arms=tuple(Arm(**a) for a in json.loads(row["arms"])),
            metric=str(row["metric"]),
            status=str(row["status"]),
            created_ms=int(row["created_ms"]),
            start_ms=int(row["start_ms"]),
            stop_ms=None if row["stop_ms"] is None else int(row["stop_ms"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "scene": self.scene,
            "arms": [a.to_dict() for a in self.arms],
            "metric": self.metric,
            "status": self.status,
            "created_ms": self.created_ms,
            "start_ms": self.start_ms,
            "stop_ms": self.stop_ms,
        }

    def assign(self, user_key: str) -> Arm:
        """The user's arm (see :func:`~shoplm.marketing.experiments.assign`)."""
        return assign(self.experiment_id, user_key, self.arms)


def parse_arm_options(values: Sequence[str], split: str | None = None) -> list[dict[str, Any]]:
    """``["control=default", "treatment=popular"]`` and ``"50,50"`` as arm dicts (even split without one).

    Raises:
        InputError: an arm not written ``NAME=STRATEGY``, or a split of another length or not numbers.

    Example:
        >>> parse_arm_options(["a=default", "b=popular"], "30,70")[1]
        {'name': 'b', 'strategy': 'popular', 'weight': 70.0}
    """
    arms = []
    for value in values:
        name, sep, strategy = value.partition("=")
        if not sep or not name.strip() or not strategy.strip():
            raise InputError(f"--arm {value!r}: write NAME=STRATEGY, e.g. control=default", field="arm")
        arms.append({"name": name.strip(), "strategy": strategy.strip()})
    if split is None:
        weights = [100.0 / len(arms)] * len(arms) if arms else []
    else:
        try:
            weights = [float(part) for part in split.split(",")]
        except ValueError:
            raise InputError(f"--split {split!r}: write percentages separated by commas, e.g. 50,50") from None
        if len(weights) != len(arms):
            raise InputError(f"--split has {len(weights)} values for {len(arms)} arms", field="split")
    return [{**arm, "weight": weight} for arm, weight in zip(arms, weights, strict=True)]


class Experiments:
    """The shop's experiments (see the module docstring)."""

    def __init__(self, store: Store, settings: ExperimentSettings | None = None) -> None:
        self.store = store
        self.settings = settings or ExperimentSettings()

    def create(
        self,
        name: str,
        arms: Sequence[dict[str, Any] | Arm],
        *,
        scene: str = "home",
        metric: str = "ctr",
        now_ms: int | None = None,
        relative_weights: bool = False,
        actor: str = "cli",
    ) -> dict[str, Any]:
        """Start an experiment now (written to the audit log).

        Args:
            name: a label for people.
            arms: two or more ``{name, strategy, weight}``; the first is the control; weights in
                percent (or shares) summing to 100 (or 1).
            scene: the recommendation scene it runs on.
            metric: the primary metric, ``ctr`` or ``conversion``.
            now_ms: its start (default: now).
            relative_weights: weights are relative (the HTTP API's), not percentages summing to 100.
            actor: who starts it, for the audit log: the API key's id, or ``"cli"``.

        Returns:
            The experiment as stored.

        Raises:
            InputError: an empty name, unknown scene, metric or strategy, bad arms or weights.
            ConflictError: another experiment runs on the scene already.
        """
        if not name.strip():
            raise InputError("an experiment needs a name", field="name")
        if scene not in SCENES:
            raise InputError(f"unknown scene {scene!r}: use one of {', '.join(SCENES)}", field="scene")
        if metric not in METRICS:
            raise InputError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}", field="metric")
        checked = validate_arms(list(arms), STRATEGIES, relative=relative_weights)
        running = self.store.experiments.running(scene)
        if running:
            raise ConflictError(
                f"experiment {running[0]['experiment_id']} ({running[0]['name']}) runs on scene {scene!r} already: "
                "stop it first (one experiment per scene, so each request serves one strategy)",
                code="experiment_running",
            )
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        experiment_id = uuid.uuid4().hex[:8]
        for arm in checked:
            exposure_scene(experiment_id, arm.name)  # fits the events' scene column
        row = {
            "experiment_id": experiment_id,
            "name": name.strip(),
            "scene": scene,
            "arms": json.dumps([a.to_dict() for a in checked]),
            "metric": metric,
            "status": "running",
            "created_ms": now_ms,
            "start_ms": now_ms,
            "stop_ms": None,
        }
        self.store.experiments.insert(row)
        # Who changed what users are served is an admin action like a key change: audited.
        details = {"experiment_id": experiment_id, "scene": scene, "arms": [a.to_dict() for a in checked]}
        self.store.audit.append(actor=actor, action="experiment_create", details=details, at_ms=now_ms)
        return Experiment.from_row(row).to_dict()

    def get(self, experiment_id: str) -> Experiment:
        """The experiment; NotFoundError for an unknown id."""
        row = self.store.experiments.get(experiment_id)
        if row is None:
            raise NotFoundError(f"no experiment {experiment_id!r}: see `shoplm experiments list`", code="no_experiment")
        return Experiment.from_row(row)

    def list_experiments(self) -> list[dict[str, Any]]:
        """Every experiment, newest first."""
        return [Experiment.from_row(row).to_dict() for row in self.store.experiments.all()]

    def stop(self, experiment_id: str, *, now_ms: int | None = None, actor: str = "cli") -> dict[str, Any]:
        """Stop a running experiment (its outcomes count up to now); written to the audit log.

        Args:
            experiment_id: the experiment.
            now_ms: when it stops (default: now).
            actor: who stops it: the API key's id, or ``"cli"``.

        Raises:
            NotFoundError: no such experiment.
            ConflictError: it is stopped already.
        """
        self.get(experiment_id)
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if not self.store.experiments.stop(experiment_id, stop_ms=now_ms):
            raise ConflictError(f"experiment {experiment_id} is stopped already", code="experiment_stopped")
        details = {"experiment_id": experiment_id}
        self.store.audit.append(actor=actor, action="experiment_stop", details=details, at_ms=now_ms)
        return self.get(experiment_id).to_dict()

    def report(self, experiment_id: str, *, now_ms: int | None = None) -> dict[str, Any]:
        """The experiment with CTR and conversion per arm, intervals, the mSPRT and the daily series.

        The sequential test's looks are the ends of the days since the start: reading the report
        every day (or more often) keeps its p-values valid.
        """
        experiment = self.get(experiment_id)
        users = self.users(experiment)
        end_ms = experiment.stop_ms or (int(time.time() * 1000) if now_ms is None else now_ms)
        first_look = (experiment.start_ms // _DAY_MS + 1) * _DAY_MS - 1
        looks = list(range(first_look, end_ms, _DAY_MS))
        settings = self.settings
        report = arm_report(
            users,
            experiment.arms,
            looks_ms=looks,
            alpha=settings.alpha,
            tau2=settings.tau2,
            min_exposed=settings.min_exposed_per_arm,
        )
        return {
            **experiment.to_dict(),
            **report,
            "days": daily_series(users, experiment.arms, metric=experiment.metric),
        }

    def users(self, experiment: Experiment) -> Any:
        """The exposed users with their arm and outcomes (:func:`~shoplm.marketing.experiments.user_outcomes`)."""
        exposures = self.store.experiments.exposures(experiment.experiment_id)
        names = {a.name for a in experiment.arms}
        if not exposures.empty:
            parsed = exposures["scene"].map(parse_exposure_scene)
            exposures["arm"] = [p[1] if p else "" for p in parsed]
            exposures = exposures[exposures["arm"].isin(names)]
        else:
            exposures["arm"] = []
        outcomes = self.store.experiments.outcomes(
            exposures["user_id"].astype(str).tolist(),
            event_types=[*CLICK_EVENTS, *PURCHASE_EVENTS],
            since_ms=experiment.start_ms,
            until_ms=experiment.stop_ms,
        )
        return user_outcomes(exposures[["user_id", "arm", "ts_ms"]], outcomes, stop_ms=experiment.stop_ms)


def exposure_row(experiment: Experiment, arm: Arm, user_key: str, now_ms: int) -> dict[str, Any]:
    """The ``exposure`` event of a user shown an arm: one per user, experiment and UTC day.

    Its id is derived from (experiment, user, day), so the events table keeps one exposure a day
    per user however often the page is shown (the report needs each user's first exposure).

    Example:
        >>> e = Experiment("e1", "t", "home", (Arm("a", "default", .5), Arm("b", "popular", .5)), "ctr",
        ...                "running", 0, 0, None)
        >>> row = exposure_row(e, e.arms[1], "u_1", 5)
        >>> row["event_type"], row["scene"], row["item_id"]
        ('exposure', 'exp:e1:b', None)
    """
    day = now_ms // _DAY_MS
    digest = hashlib.blake2b(f"{experiment.experiment_id}:{user_key}:{day}".encode(), digest_size=12).hexdigest()
    return {
        "event_id": f"x-{experiment.experiment_id}-{digest}",
        "user_id": user_key,
        "item_id": None,  # no item: an exposure never enters the user's history
        "event_type": "exposure",
        "scene": exposure_scene(experiment.experiment_id, arm.name),
        "query": "",
        "value": None,
        "ts_ms": now_ms,
        "session_id": "",
        "suspected_bot": False,
    }


class RunningExperiments:
    """The running experiment of each scene, read from the store at most every ``ttl`` seconds.

    Serving asks on every recommendation request; an experiment created or stopped takes effect
    within ``ttl``. It also remembers which exposure events this process logged already, so a
    user's repeated requests in a day cost no write.
    """

    def __init__(self, store: Store, *, ttl: float = 5.0, remembered: int = 100_000) -> None:
        self.store = store
        self.ttl = ttl
        self._by_scene: dict[str, Experiment] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()
        self._logged: OrderedDict[str, None] = OrderedDict()
        self._remembered = remembered

    def for_scene(self, scene: str) -> Experiment | None:
        """The experiment running on ``scene``, if any."""
        now = time.monotonic()
        if now - self._read_at > self.ttl:
            with self._lock:
                if now - self._read_at > self.ttl:
                    by_scene: dict[str, Experiment] = {}
                    for row in self.store.experiments.running():
                        by_scene.setdefault(str(row["scene"]), Experiment.from_row(row))
                    self._by_scene, self._read_at = by_scene, now
        return self._by_scene.get(scene)

    def first_time(self, event_id: str) -> bool:
        """True the first time this process sees ``event_id`` (then log the exposure)."""
        with self._lock:
            if event_id in self._logged:
                return False
            self._logged[event_id] = None
            if len(self._logged) > self._remembered:
                self._logged.popitem(last=False)
            return True
