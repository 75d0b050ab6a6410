"""``shoplm experiments ...``: A/B tests of recommendation strategies; ``shoplm bench experiments``.

Example:
    $ shoplm experiments create "popular on home" --arm control=default --arm treatment=popular --split 50,50
    $ shoplm experiments list
    $ shoplm experiments show 1a2b3c4d
    $ shoplm experiments stop 1a2b3c4d
    $ shoplm bench experiments --out benchmarks/experiments/experiments.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store
from shoplm.cli.groups import experiments_app

__all__ = ["register"]

JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def _service(data_dir: Path | None) -> Any:
    from shoplm.app.experiments import Experiments

    settings = load_settings(data_dir)
    return Experiments(open_store(settings), settings.experiments)


@handle_errors
def create(
    name: Annotated[str, typer.Argument(help="a label for people")],
    arm: Annotated[
        list[str],
        typer.Option(
            "--arm",
            help="NAME=STRATEGY, two or more, the first is the control; strategies: default, popular, sequential, "
            "cooccurrence, als, text, popularity, bought_together",
        ),
    ],
    split: Annotated[str | None, typer.Option(help="traffic percentages per arm, e.g. 50,50 (default: even)")] = None,
    scene: Annotated[str, typer.Option(help="the recommendation scene it runs on")] = "home",
    metric: Annotated[str, typer.Option(help="primary metric: ctr or conversion")] = "ctr",
    data_dir: DataDirOption = None,
    as_json: JsonOpt = False,
) -> None:
    """Start an A/B test of recommendation strategies (default, popular, or one source: als, sequential, ...)."""
    from shoplm.app.experiments import parse_arm_options

    made = _service(data_dir).create(name, parse_arm_options(arm, split), scene=scene, metric=metric)
    if as_json:
        console.print_json(json.dumps(made))
        return
    arms = ", ".join(f"{a['name']}={a['strategy']} ({a['weight']:.0%})" for a in made["arms"])
    console.print(f"[green]✓[/] experiment [bold]{made['experiment_id']}[/] on {made['scene']}: {arms}")


@handle_errors
def list_command(data_dir: DataDirOption = None, as_json: JsonOpt = False) -> None:
    """Every experiment, newest first."""
    found = _service(data_dir).list_experiments()
    if as_json:
        console.print_json(json.dumps(found))
        return
    if not found:
        console.print("no experiments yet: `shoplm experiments create NAME --arm control=default --arm b=popular`")
        return
    table = Table("id", "name", "scene", "arms", "status", "started")
    for e in found:
        arms = ", ".join(f"{a['name']}={a['strategy']}" for a in e["arms"])
        table.add_row(e["experiment_id"], e["name"], e["scene"], arms, e["status"], _when(e["start_ms"]))
    console.print(table)


@handle_errors
def stop(
    experiment_id: Annotated[str, typer.Argument(help="the experiment's id (see `shoplm experiments list`)")],
    data_dir: DataDirOption = None,
) -> None:
    """Stop a running experiment: its arms are no longer served and its outcomes stop counting."""
    stopped = _service(data_dir).stop(experiment_id)
    console.print(f"[green]✓[/] experiment {stopped['experiment_id']} stopped")


@handle_errors
def show(
    experiment_id: Annotated[str, typer.Argument(help="the experiment's id")],
    data_dir: DataDirOption = None,
    as_json: JsonOpt = False,
) -> None:
    """CTR and conversion per arm with 95% intervals, the difference from control and the mSPRT p-value."""
    report = _service(data_dir).report(experiment_id)
    if as_json:
        console.print_json(json.dumps(report))
        return
    state = "running" if report["stop_ms"] is None else "stopped"
    console.print(
        f"[bold]{report['name']}[/] ({report['experiment_id']}) on {report['scene']}, {state}: {report['summary']}"
    )
    table = Table("arm", "strategy", "exposed", "CTR [95% CI]", "conversion [95% CI]", "Δ vs control", "mSPRT p")
    metric = report["metric"]
    for arm in report["arms"]:
        difference = arm["difference"][metric] if arm["difference"] else None
        sequential = arm["sequential"][metric] if arm["sequential"] else None
        table.add_row(
            arm["name"] + (" (control)" if arm["control"] else ""),
            arm["strategy"],
            str(arm["exposed"]),
            _interval(arm["ctr"]),
            _interval(arm["conversion"]),
            _interval(difference, signed=True) if difference else "—",
            f"{sequential['p_value']:.3g} {sequential['verdict']}" if sequential else "—",
        )
    console.print(table)


def _interval(value: dict[str, Any] | None, *, signed: bool = False) -> str:
    if not value or value["value"] is None:
        return "—"
    sign = "+" if signed else ""
    return f"{value['value']:{sign}.1%} [{value['low']:{sign}.1%}, {value['high']:{sign}.1%}]"


def _when(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


@handle_errors
def bench_experiments(
    out: Annotated[
        Path | None, typer.Option("--out", help="write the report as JSON here (and a PNG chart beside it)")
    ] = None,
    runs: Annotated[int, typer.Option(help="simulated experiments per effect size")] = 5000,
    seed: Annotated[int, typer.Option(help="seed of the reported runs (validation uses other seeds)")] = 1,
) -> None:
    """Simulated A/A and A/B tests peeked at after every batch: naive z-tests vs the mSPRT."""
    from shoplm.marketing.experiments_bench import run_experiments_benchmark

    report = run_experiments_benchmark(out, runs=runs, seed=seed)
    console.print_json(json.dumps({k: report[k] for k in ("tau2", "type_i_error", "power", "stopping_users")}))
    if out:
        console.print(f"[green]✓[/] report written to {out}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``create``, ``list``, ``stop`` and ``show`` to ``shoplm experiments`` and ``bench experiments``."""
    del app
    experiments_app.command("create")(create)
    experiments_app.command("list")(list_command)
    experiments_app.command("stop")(stop)
    experiments_app.command("show")(show)
    bench_app.command("experiments")(bench_experiments)
