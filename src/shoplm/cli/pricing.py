"""The ``shoplm`` commands of price sensitivity; :func:`register` adds them to the app.

Example:
    $ shoplm pricing                       # fit on the store's orders; GET /v1/pricing/{category} serves it
    $ shoplm pricing --category "candle wick" --change -0.1
    $ shoplm bench elasticity --data online_retail.csv.gz --out elasticity.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store

__all__ = ["register"]


@handle_errors
def pricing(
    category: Annotated[str | None, typer.Option(help="answer the what-if for this category")] = None,
    change: Annotated[float, typer.Option(help="price change for the what-if: 0.1 is +10%")] = 0.1,
    data_dir: DataDirOption = None,
) -> None:
    """Own-price elasticity per category from the store's orders (item and week fixed effects)."""
    from shoplm.app.analytics import run_pricing
    from shoplm.app.insights import Insights
    from shoplm.ingest.pseudonymize import Pseudonymizer

    settings = load_settings(data_dir)
    with open_store(settings) as store:
        if category is None:
            report = run_pricing(store, settings)
            table = Table("category", "elasticity", f"{report['level']:.0f}% interval", "verdict", "items")
            for row in sorted(report["categories"], key=lambda r: r["elasticity"] if r["elasticity"] else 0):
                interval = f"{row['ci_low']:+.2f} … {row['ci_high']:+.2f}" if row["ci_low"] is not None else "—"
                elasticity = f"{row['elasticity']:+.2f}" if row["elasticity"] is not None else "—"
                table.add_row(row["category"], elasticity, interval, row["verdict"], str(row["items"]))
            console.print(table)
            console.print(f"verdicts: {report['verdicts']}; stored for GET /v1/pricing/{{category}}")
            return
        answer = Insights(store, Pseudonymizer(settings.hmac_key)).pricing(category, change=change)
        console.print_json(json.dumps(answer))


@handle_errors
def bench_elasticity(
    data: Annotated[Path, typer.Option(help="CSV(.gz) with the UCI Online Retail (or Online Retail II) columns")],
    out: Annotated[Path | None, typer.Option(help="write results JSON here (and a PNG beside it)")] = None,
    k: Annotated[int | None, typer.Option(help="number of derived categories (default: by silhouette)")] = None,
    price_from: Annotated[
        str, typer.Option(help="the week's price: small_orders (the small buyer's price) or all_lines")
    ] = "small_orders",
    holdout_weeks: Annotated[int, typer.Option(help="last weeks held out to check predictions")] = 8,
    text: Annotated[bool, typer.Option("--text/--no-text", help="cluster e5 embeddings (else TF-IDF)")] = True,
    data_dir: DataDirOption = None,
) -> None:
    """Elasticity per derived category, with fixed effects beside a pooled log-log peer, scored on later weeks."""
    from shoplm.lm import load_encoder
    from shoplm.pricing.bench import run_elasticity_benchmark

    settings = load_settings(data_dir)
    encoder = load_encoder(settings) if text else None
    results = run_elasticity_benchmark(
        data, out, encoder=encoder, k=k, holdout_weeks=holdout_weeks, price_from=price_from
    )
    table = Table("model", "holdout RMSE (log units)", "item-weeks")
    for name, row in results["models"].items():
        table.add_row(name, f"{row['holdout_rmse_log_units']:.4f}", str(row["item_weeks"]))
    console.print(table)
    console.print(f"best: {results['best']}; verdicts: {results['verdicts']} ({results['seconds']:.0f} s)")
    if out is not None:
        console.print(f"[green]✓[/] results -> {out}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``pricing`` to ``app`` and ``elasticity`` to ``bench_app``."""
    app.command("pricing")(pricing)
    bench_app.command("elasticity")(bench_elasticity)
