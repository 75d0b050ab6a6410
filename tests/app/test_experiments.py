"""Experiments bound to the store: lifecycle, reports from exposure and outcome events, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from shoplm.app.experiments import Experiments, RunningExperiments, exposure_row, parse_arm_options
from shoplm.cli.main import app
from shoplm.errors import ConflictError, InputError, NotFoundError
from shoplm.store import Store

ARMS = [
    {"name": "control", "strategy": "default", "weight": 50},
    {"name": "treatment", "strategy": "popular", "weight": 50},
]
DAY = 86_400_000
START = 1_780_000_000_000 - 1_780_000_000_000 % DAY  # a day's start


def _event(event_id: str, user: str, kind: str, ts: int, item: str | None = "i1", scene: str = "") -> dict[str, object]:
    return {
        "event_id": event_id,
        "user_id": user,
        "item_id": item,
        "event_type": kind,
        "scene": scene,
        "query": "",
        "value": None,
        "ts_ms": ts,
        "session_id": "",
        "suspected_bot": False,
    }


@pytest.fixture
def service() -> Experiments:
    return Experiments(Store.open("sqlite://"))


def test_create_list_stop_and_their_errors(service: Experiments) -> None:
    made = service.create("home test", ARMS, now_ms=START)
    assert made["status"] == "running" and [a["weight"] for a in made["arms"]] == [0.5, 0.5]
    assert [e["experiment_id"] for e in service.list_experiments()] == [made["experiment_id"]]
    with pytest.raises(ConflictError, match="runs on scene 'home' already"):
        service.create("second", ARMS)
    other_scene = service.create("cart test", ARMS, scene="cart")
    assert other_scene["scene"] == "cart"
    stopped = service.stop(made["experiment_id"], now_ms=START + 5)
    assert stopped["status"] == "stopped" and stopped["stop_ms"] == START + 5
    with pytest.raises(ConflictError, match="stopped already"):
        service.stop(made["experiment_id"])
    with pytest.raises(NotFoundError):
        service.stop("nope")
    with pytest.raises(NotFoundError):
        service.report("nope")
    service.create("home again", ARMS)  # the scene is free again
    # Starting and stopping are audited; a refused request leaves no entry.
    audited = [(e["action"], e["actor"], e["details"]["experiment_id"]) for e in service.store.audit.entries()]
    assert sorted(audited) == sorted(
        [("experiment_create", "cli", e["experiment_id"]) for e in service.list_experiments()]
        + [("experiment_stop", "cli", made["experiment_id"])]
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": " ", "arms": ARMS}, "needs a name"),
        ({"name": "x", "arms": ARMS, "scene": "checkout"}, "unknown scene"),
        ({"name": "x", "arms": ARMS, "metric": "revenue"}, "unknown metric"),
        ({"name": "x", "arms": [{**ARMS[0]}, {**ARMS[1], "strategy": "nonsense"}]}, "unknown strategy"),
        ({"name": "x", "arms": ARMS[:1]}, "at least two arms"),
    ],
)
def test_bad_experiments_are_refused(service: Experiments, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        service.create(**kwargs)  # type: ignore[arg-type]


def test_report_reads_exposures_and_outcomes_from_events(service: Experiments) -> None:
    made = service.create("home test", ARMS, now_ms=START)
    experiment = service.get(made["experiment_id"])
    rows = []
    users = [f"u_{i}" for i in range(400)]
    for i, user in enumerate(users):
        arm = experiment.assign(user)
        exposed_at = START + 1000 + i * 400_000  # spread over about two days
        rows.append(exposure_row(experiment, arm, user, exposed_at))
        rows.append(exposure_row(experiment, arm, user, exposed_at + 60_000))  # the same day: the same id
        if arm.name == "treatment" or i % 4 == 0:
            rows.append(_event(f"c{i}", user, "click", exposed_at + 120_000))
        if i % 10 == 0:
            rows.append(_event(f"p{i}", user, "purchase", exposed_at + 180_000))
    rows.append(_event("early", users[1], "purchase", START - 5))  # before the experiment: not counted
    stored = service.store.upsert("events", pd.DataFrame(rows))
    assert stored.inserted == len(rows) - len(users)  # one exposure per user and day
    report = service.report(made["experiment_id"], now_ms=START + 3 * DAY)
    control, treatment = report["arms"]
    assert control["exposed"] + treatment["exposed"] == 400 and report["enough_data"]
    assert treatment["ctr"]["value"] == 1.0 and control["ctr"]["value"] < 0.5
    assert treatment["sequential"]["ctr"]["significant"] and report["status"] == "running"
    assert report["days"] and set(report["days"][-1]["arms"]) == {"control", "treatment"}
    # Exposures carry no item: a user's history (what recommendations read) does not see them.
    assert service.store.events.history(users[0], limit=50) == [("i1", "click"), ("i1", "purchase")]


def test_a_new_experiment_reports_not_enough_data(service: Experiments) -> None:
    made = service.create("quiet", ARMS)
    report = service.report(made["experiment_id"])
    assert not report["enough_data"] and report["summary"].startswith("not enough data")
    assert report["days"] == [] and all(a["exposed"] == 0 for a in report["arms"])


def test_running_experiments_are_cached_and_exposures_remembered(service: Experiments) -> None:
    running = RunningExperiments(service.store, ttl=3600)
    assert running.for_scene("home") is None
    service.create("home test", ARMS)
    assert running.for_scene("home") is None  # still the cached answer
    fresh = RunningExperiments(service.store, ttl=0)
    found = fresh.for_scene("home")
    assert found is not None and found.name == "home test"
    row = exposure_row(found, found.arms[0], "u_1", START)
    assert fresh.first_time(row["event_id"]) and not fresh.first_time(row["event_id"])


def test_arm_options_of_the_command_line() -> None:
    assert [a["weight"] for a in parse_arm_options(["a=default", "b=popular", "c=als"])] == pytest.approx([100 / 3] * 3)
    with pytest.raises(InputError, match="NAME=STRATEGY"):
        parse_arm_options(["control"])
    with pytest.raises(InputError, match="2 values for 3 arms"):
        parse_arm_options(["a=default", "b=popular", "c=als"], "50,50")


def test_cli_create_list_show_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPLM_PSEUDONYMIZATION_KEY", "experiments-cli")
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    created = runner.invoke(
        app,
        [
            "experiments",
            "create",
            "popular home",
            "--arm",
            "control=default",
            "--arm",
            "b=popular",
            "--split",
            "60,40",
            "--json",
            *base,
        ],
    )
    assert created.exit_code == 0, created.output
    experiment_id = json.loads(created.stdout)["experiment_id"]
    listed = runner.invoke(app, ["experiments", "list", *base])
    assert experiment_id in listed.stdout and "b=popular" in listed.stdout
    shown = runner.invoke(app, ["experiments", "show", experiment_id, *base])
    assert shown.exit_code == 0 and "not enough data" in shown.stdout
    assert runner.invoke(app, ["experiments", "stop", experiment_id, *base]).exit_code == 0
    again = runner.invoke(app, ["experiments", "stop", experiment_id, *base])
    assert again.exit_code == 2 and "stopped already" in again.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--arm", "a=default", "--arm", "b=teleport"], "unknown strategy"),
        (["--arm", "a=default", "--arm", "b=popular", "--split", "50,30"], "sum to 100"),
    ],
)
def test_cli_bad_input_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arguments: list[str], message: str
) -> None:
    monkeypatch.setenv("SHOPLM_PSEUDONYMIZATION_KEY", "experiments-cli")
    result = CliRunner().invoke(app, ["experiments", "create", "x", *arguments, "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
