"""``shoplm report``: differentially private reports paid from the store's budget; ``shoplm bench dp``.

Example:
    $ shoplm report --dp --epsilon 1.0                      # daily sales per category, the last 30 days
    $ shoplm report daily-ratings --dp --epsilon 0.5 --start 2026-06-01 --end 2026-06-30 --json
    $ shoplm report --list                                   # the reports
    $ shoplm report --budget                                 # ε spent, left, and every release
    $ shoplm bench dp --retail online_retail.csv.gz --out benchmarks/privacy/dp.json
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store
from shoplm.errors import InputError

__all__ = ["register"]


@handle_errors
def report(
    name: Annotated[str, typer.Argument(help="the report (see --list)")] = "daily-sales",
    dp: Annotated[bool, typer.Option("--dp", help="release with differential privacy (the only way)")] = False,
    epsilon: Annotated[float | None, typer.Option("--epsilon", help="ε this release spends (> 0)")] = None,
    start: Annotated[str | None, typer.Option(help="first day, YYYY-MM-DD (UTC)")] = None,
    end: Annotated[str | None, typer.Option(help="last day, YYYY-MM-DD (UTC); default today")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole release as JSON")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="also write the release as JSON here")] = None,
    list_reports: Annotated[bool, typer.Option("--list", help="list the reports and exit")] = False,
    show_budget: Annotated[bool, typer.Option("--budget", help="show the privacy budget and its releases")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Release a report of counts, sums or means per category and day with calibrated noise.

    Every release takes its ε from the dataset's budget (settings: privacy.epsilon_budget) and is
    recorded; one that would pass the budget is refused (exit 2). The same query over unchanged
    data gets the recorded release back, spending nothing.
    """
    from rich.table import Table

    from shoplm.app import reports
    from shoplm.store.migrate import check_schema_current

    settings = load_settings(data_dir)
    if list_reports:
        table = Table("report", "statistics", "what", "bounds per customer")
        for entry in reports.list_reports(settings):
            bounds = (
                f"clamp {entry['clamp'][0]:g}..{entry['clamp'][1]:g}, ≤{entry['max_rows_per_cell_per_user']} rows "
                f"per cell, ≤{entry['max_cells_per_user']} cells"
            )
            table.add_row(entry["name"], ", ".join(entry["statistics"]), entry["description"], bounds)
        console.print(table)
        return
    if show_budget:
        with open_store(settings) as store:
            check_schema_current(store.engine)
            ledger = reports.budget(store, settings)
        console.print_json(json.dumps(ledger))
        return
    if not dp:
        raise InputError("reports are released with differential privacy only: add --dp and --epsilon", field="--dp")
    if epsilon is None:
        raise InputError("--dp needs --epsilon, the privacy loss this release spends (e.g. --epsilon 1.0)")
    with open_store(settings) as store:
        check_schema_current(store.engine)  # a store from before the ledger's tables: name the upgrade command
        released = reports.release(store, settings, name, epsilon=epsilon, start=start, end=end)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(released, indent=2))
    if as_json:
        console.print_json(json.dumps(released))
        return
    statistics = [s for s in ("count", "sum", "mean") if s in released["cells"][0]]
    table = Table("category", "day", *statistics, title=f"{released['report']}: {released['description']}")
    for cell in released["cells"]:
        table.add_row(cell["category"], cell["day"], *("–" if cell[s] is None else f"{cell[s]:g}" for s in statistics))
    console.print(table)
    bounds = released["bounds"]
    budget = released["budget"]
    console.print(
        f"days {released['window']['start']} .. {released['window']['end']} (--start / --end; the window is public, "
        "never chosen from the data)\n"
        f"ε = {released['epsilon']:g}, δ = {released['delta']:g}; {released['mechanism']}; noise scale "
        + ", ".join(f"{k} {v:g}" for k, v in released["noise_scale"].items())
        + f"\nbounds: {bounds['value']} clamped to [{bounds['clamp'][0]:g}, {bounds['clamp'][1]:g}], at most "
        f"{bounds['max_rows_per_cell_per_user']} rows per cell and {bounds['max_cells_per_user']} cells per customer; "
        "noisy values are unbiased and may be negative"
        + (
            "\n[yellow]the same query over the same data was released before: this is that release, nothing spent[/]"
            if released["repeated"]
            else ""
        )
        + f"\nbudget of {released['dataset']!r}: {budget['spent']:g} of {budget['epsilon_budget']:g} spent, "
        f"{budget['remaining']:g} left"
    )


@handle_errors
def bench_dp(
    retail: Annotated[
        Path | None, typer.Option("--retail", help="Online Retail CSV(.gz); without it, the demo store only")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the results as JSON here (and a PNG beside it)")
    ] = None,
    draws: Annotated[int, typer.Option(min=1, max=1000, help="noise draws per ε")] = 20,
    seed: Annotated[int, typer.Option(help="seed of the generated demo store")] = 0,
    data_dir: DataDirOption = None,
) -> None:
    """Relative error of the DP reports vs ε (0.1, 0.5, 1, 5) on a demo store and on Online Retail."""
    from shoplm.demo import DEFAULT_END, generate_demo_store
    from shoplm.privacy.bench import demo_cases, retail_cases, run_dp_benchmark

    settings = load_settings(data_dir)
    demo_dir = settings.data_dir / "bench-dp-demo"
    console.print(f"generating the demo store (seed {seed}) in {demo_dir} …")
    manifest = generate_demo_store(demo_dir, seed=seed)
    # The demo's last whole day: its data ends at DEFAULT_END (midnight).
    cases = demo_cases(manifest.files, test_end=(DEFAULT_END - timedelta(days=1)).date())
    if retail is not None:
        if not retail.exists():
            raise InputError("no such file", path=retail)
        cases += retail_cases(retail)
    results = run_dp_benchmark(cases, out, draws=draws)
    from rich.table import Table

    table = Table("dataset", "report", "bounds", "ε", "cells (median rel. err.)", "category totals", "bounding loss")
    for row in results["results"]:
        table.add_row(
            row["dataset"],
            row["report"],
            row["variant"],
            f"{row['epsilon']:g}",
            f"{row['cell_rel_error']:.3f}",
            f"{row['total_rel_error']:.3f}",
            f"{row['bounding_loss']:.1%}",
        )
    console.print(table)
    if out:
        console.print(f"[green]✓[/] results written to {out} and {out.with_suffix('.png')}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``report`` to ``app`` and ``dp`` to ``bench_app``."""
    app.command("report")(report)
    bench_app.command("dp")(bench_dp)
