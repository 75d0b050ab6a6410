"""``shoplm insight alerts|daily`` (opinion monitoring) and ``shoplm bench opinion``; :func:`register` adds them.

Example:
    $ shoplm insight alerts --run              # compute daily sentiment and spikes, list the alerts
    $ shoplm insight alerts --since 2026-06-01
    $ shoplm insight daily --level category --key "Home > Kitchen"
    $ shoplm bench opinion --out benchmarks/opinion/opinion.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store
from shoplm.cli.groups import insight_app
from shoplm.errors import InputError

__all__ = ["register"]


@handle_errors
def alerts(
    run: Annotated[
        bool, typer.Option("--run", help="run the opinion job first (reads reviews, raises alerts)")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(help="only spikes ending on or after this day (YYYY-MM-DD); with --run, raise only those"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="list at most this many")] = 20,
    no_topics: Annotated[
        bool, typer.Option("--no-topics", help="with --run: skip complaint topics (no encoder)")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Complaint spikes per item, category and brand, each with its reviews and top complaint topics."""
    from shoplm.app.opinion import opinion_alerts, run_opinion
    from shoplm.insight.opinion import DAY_MS, parse_day

    since_ms = None if since is None else parse_day(since) * DAY_MS
    settings = load_settings(data_dir)
    with open_store(settings) as store:
        if run:
            found = run_opinion(store, settings, since_ms=since_ms, topics=not no_topics)
            console.print(
                f"{found['reviews']:,} reviews ({found['signal_note']}); {found['alerts']} spikes, "
                f"{found['new_alerts']} new alerts"
                + (f", {found['delivered']} sent to the webhook" if settings.alerts.webhook_url else "")
                + (
                    f", [red]{found['delivery_failed']} not delivered (retried next run)[/]"
                    if found["delivery_failed"]
                    else ""
                )
                + f"; {found['topics']} complaint topics ({found['seconds']} s)"
            )
        listed = opinion_alerts(store, limit=limit, since=since)
    if not listed["alerts"]:
        console.print("no opinion alerts" + ("" if run else " (run `shoplm insight alerts --run` to look for spikes)"))
        return
    table = Table("days", "level", "key", "negative / reviews", "before", "q", "topics")
    for alert in listed["alerts"]:
        days = alert["start"] if alert["start"] == alert["end"] else f"{alert['start']}..{alert['end']}"
        table.add_row(
            days,
            alert["level"],
            str(alert["key"]),
            f"{alert['negative']} / {alert['reviews']}",
            f"{alert['baseline_share']:.0%}",
            "" if alert["q_value"] is None else f"{alert['q_value']:.1e}",
            "; ".join(t["topic"] for t in alert["topics"] or []),
        )
    console.print(table)
    console.print(f"{listed['total']} opinion alerts stored; served at GET /v1/insight/alerts")


@handle_errors
def daily(
    level: Annotated[str, typer.Option(help="item, category or brand")] = "category",
    key: Annotated[
        str | None, typer.Option(help="the item id, category path or brand; default: the whole shop")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="show the last N days with reviews")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Reviews, negative reviews and negative share per day, from the last opinion run."""
    from shoplm.app.opinion import daily_series

    settings = load_settings(data_dir)
    with open_store(settings) as store:
        series = daily_series(store, level, key)
    rows = series["days"][-days:]
    if as_json:
        console.print_json(json.dumps({**series, "days": rows}, ensure_ascii=False))
        return
    marked = {a["start"]: a for a in series["alerts"]}
    table = Table("day", "reviews", "negative", "share", "alert", title=f"{series['level']} {key or ''}".strip())
    for row in rows:
        table.add_row(
            row["day"],
            str(row["reviews"]),
            str(row["negative"]),
            f"{row['negative_share']:.0%}",
            "spike" if row["day"] in marked else "",
        )
    console.print(table)
    console.print(series["signal_note"])


@handle_errors
def bench_opinion(
    seeds: Annotated[
        str, typer.Option(help="demo store seeds the figures are reported on, comma-separated")
    ] = "1,2,3,4,5,6",
    validation_seeds: Annotated[str, typer.Option(help="seeds of the stores settings are chosen on")] = "100,101",
    out: Annotated[Path | None, typer.Option(help="write results JSON here (and the chart beside it as .png)")] = None,
    events: Annotated[
        int, typer.Option(min=5_000, help="events per demo store (reviews grow with them; the default demo: 200000)")
    ] = 200_000,
    data_dir: DataDirOption = None,
) -> None:
    """Spike detection (BH FDR) beside a z-score and a fixed rule, on the demo stores' injected spikes."""
    from shoplm.demo.generator import DemoSizes, generate_demo_store
    from shoplm.insight.opinion_bench import run_opinion_benchmark

    def parse(text: str, name: str) -> list[int]:
        try:
            values = [int(s) for s in text.split(",") if s.strip()]
        except ValueError as exc:
            raise InputError(f"{name} must be comma-separated integers, not {text!r}", field=name) from exc
        if not values or min(values) < 0:
            raise InputError(f"{name} needs at least one seed, each 0 or more", field=name)
        return values

    reported, validation = parse(seeds, "seeds"), parse(validation_seeds, "validation_seeds")
    if set(reported) & set(validation):
        raise InputError("a seed cannot be both reported and used to choose settings", field="seeds")
    settings = load_settings(data_dir)
    stores: dict[int, Path] = {}
    for seed in validation + reported:
        target = settings.cache_dir / "opinion" / f"demo-seed{seed}-events{events}"
        if (
            not (target / "ground_truth.json").is_file()
            or b"opinion_spikes" not in (target / "ground_truth.json").read_bytes()
        ):
            console.print(f"generating the demo store (seed {seed}) in {target}", style="dim")
            generate_demo_store(target, seed=seed, sizes=DemoSizes(n_events=events))
        stores[seed] = target
    results = run_opinion_benchmark([stores[s] for s in validation], [stores[s] for s in reported], out)
    table = Table(
        "method",
        "settings (chosen on validation)",
        "precision",
        "recall",
        "F1",
        "false alerts",
        "mean delay (days)",
        title=f"{results['reported_spikes']['count']} injected spikes in {len(reported)} stores",
    )
    for figures in results["methods"].values():
        r = figures["reported"]
        table.add_row(
            figures["name"],
            json.dumps(figures["settings"]),
            f"{r['precision']:.3f}",
            f"{r['recall']:.3f}",
            f"{r['f1']:.3f}",
            str(r["false_alerts"]),
            "-" if r["mean_delay_days"] is None else f"{r['mean_delay_days']:.2f}",
        )
    console.print(table)
    if out is not None:
        console.print(f"[green]✓[/] figures -> {out}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``insight alerts`` and ``insight daily`` to the shared ``insight`` group, ``opinion`` to ``bench_app``."""
    del app
    insight_app.command("alerts")(alerts)
    insight_app.command("daily")(daily)
    bench_app.command("opinion")(bench_opinion)
