"""The ``shoplm`` commands of the customers domain; :func:`register` adds them to the app.

Example:
    $ shoplm bench clv --data CDNOW_master.txt --out clv.json
    $ shoplm bench churn --data online_retail.csv.gz --out churn.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store

__all__ = ["register"]

OutOpt = Annotated[Path | None, typer.Option("--out", help="write the report as JSON here (and a PNG chart beside it)")]


@handle_errors
def bench_clv(
    data: Annotated[Path, typer.Option("--data", help="CDNOW-format file: customer_id date(YYYYMMDD) cds dollars")],
    out: OutOpt = None,
    calibration_end: Annotated[str, typer.Option(help="last day of the calibration period")] = "1997-09-30",
    holdout_weeks: Annotated[int, typer.Option(help="holdout length in weeks")] = 39,
    sample_fraction: Annotated[float, typer.Option(help="share of customers in the Fader-style sample")] = 0.1,
    seed: Annotated[int, typer.Option(help="seed of the sample")] = 0,
) -> None:
    """BG/NBD + Gamma-Gamma on a CDNOW-format file, beside lifetimes (the reference) and a naive rate."""
    from shoplm.customers.clv_bench import run_clv_benchmark

    report = run_clv_benchmark(
        data,
        out,
        calibration_end=calibration_end,
        holdout_weeks=holdout_weeks,
        sample_fraction=sample_fraction,
        seed=seed,
    )
    shown = {
        "params": report["params"],
        "reference": report["reference"]["params"] if report["reference"] else None,
        "max_relative_difference": report["max_relative_difference"],
        "holdout": report["holdout"],
        "naive": report["naive"],
        "fader_sample": {k: report["fader_sample"][k] for k in ("n_customers", "params", "published")},
    }
    if report.get("reference_note"):
        shown["reference_note"] = report["reference_note"]
    console.print_json(json.dumps(shown))
    if out:
        console.print(f"[green]✓[/] report written to {out}")


@handle_errors
def bench_churn(
    data: Annotated[Path, typer.Option("--data", help="Online Retail (or Online Retail II) CSV, optionally .gz")],
    out: OutOpt = None,
    horizon_days: Annotated[int, typer.Option(help="churn = no purchase in this many days after a cutoff")] = 90,
    evaluate: Annotated[int, typer.Option(help="how many of the latest monthly cutoffs are reported")] = 3,
    seed: Annotated[int, typer.Option(help="model seed")] = 0,
) -> None:
    """Behavioural churn model against BG/NBD's P(alive) and an RFM logistic regression, several cutoffs."""
    from shoplm.customers.churn_bench import run_churn_benchmark

    report = run_churn_benchmark(data, out, horizon_days=horizon_days, n_evaluated=evaluate, seed=seed)
    shown = {
        "models": report["models"],
        "evaluated_cutoffs": report["protocol"]["evaluated_cutoffs"],
        "auc_gain_over_bgnbd": report["auc_gain_over_bgnbd"],
        "auc_gain_over_rfm_logreg": report["auc_gain_over_rfm_logreg"],
    }
    console.print_json(json.dumps(shown))
    if out:
        console.print(f"[green]✓[/] report written to {out}")


@handle_errors
def churn(
    top: Annotated[int, typer.Option(min=0, help="list this many customers most at risk")] = 10,
    horizon_days: Annotated[int, typer.Option(min=7, max=365, help="churn: no purchase within this many days")] = 90,
    users_per_task: Annotated[int, typer.Option(min=1, help="customers scored per task")] = 20_000,
    ray: Annotated[bool, typer.Option("--ray", help="score the groups of customers on a Ray started here")] = False,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="score them on this Ray cluster")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Fit the churn model on the store's orders and store every customer's warning with its reasons."""
    from rich.table import Table

    from shoplm.app.analytics import run_churn
    from shoplm.fanout import resolve_ray_address

    settings = load_settings(data_dir)
    with open_store(settings) as store:
        address = resolve_ray_address(ray, ray_address, settings.ray.address)
        report = run_churn(
            store, settings, horizon_days=horizon_days, users_per_task=users_per_task, ray_address=address
        )
        rows = store.analytics.top_user_scores("churn", limit=top)
    table = Table("customer (pseudonymous)", "churn", "reasons")
    for row in rows:
        table.add_row(row["user_id"][:16] + "…", f"{row['score']:.0%}", "; ".join(row["reasons"]))
    console.print(table)
    note = f" ({report['fallback']})" if report.get("fallback") else ""
    console.print(
        f"{report['scored']:,} customers scored as of {report['cutoff']}{note}; {report['warned']:,} at or above "
        f"{report['threshold']:.0%}; served at GET /v1/users/{{id}}/churn"
    )


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``churn`` to ``app`` and the ``clv`` and ``churn`` benchmarks to ``bench_app``."""
    app.command("churn")(churn)
    bench_app.command("clv")(bench_clv)
    bench_app.command("churn")(bench_churn)
