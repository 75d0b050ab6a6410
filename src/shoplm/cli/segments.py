"""The ``shoplm`` commands of the segments domain; :func:`register` adds them to the app.

- ``shoplm segments --data FILE``: RFM (or k-means) segments of an Online Retail-layout file,
  described by size, top categories, tags and value; ``--rules`` adds the top basket rules;
- ``shoplm bench basket --data FILE``: basket rules against popularity and co-occurrence
  (benchmarks/basket/README.md).

Both only read the file: nothing stored is changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shoplm.cli.common import DataDirOption, console, errors, handle_errors, load_settings, open_store
from shoplm.errors import InputError

__all__ = ["register"]


@handle_errors
def segments(
    data: Annotated[
        Path | None,
        typer.Option(help="an Online Retail-layout CSV(.gz) instead of the store's orders (nothing is stored)"),
    ] = None,
    method: Annotated[str, typer.Option(help="rfm (named quintile segments) or kmeans (profile vectors)")] = "rfm",
    n_segments: Annotated[
        int | None, typer.Option("--segments", min=2, help="kmeans: how many segments (default: by silhouette)")
    ] = None,
    rules: Annotated[int, typer.Option(min=0, help="also mine basket rules and list this many, best lift first")] = 0,
    min_support: Annotated[float, typer.Option(help="the basket rules' least share of invoices")] = 0.01,
    out: Annotated[Path | None, typer.Option(help="write the segments (and rules) as JSON here")] = None,
    assignments: Annotated[Path | None, typer.Option(help="write each customer's segment as CSV here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    seed: Annotated[int, typer.Option(help="kmeans: random seed")] = 0,
    data_dir: DataDirOption = None,
) -> None:
    """Customer segments (RFM or k-means) with their size, top categories, tags and value.

    Without ``--data`` they are made from the store's orders, with its basket rules, and stored
    for ``GET /v1/segments`` and the dashboard.
    """
    from rich.table import Table

    from shoplm.ingest.transactions import read_retail_transactions
    from shoplm.segments.api import basket_rules_summary, segment_customers

    if data is None:
        from shoplm.app.analytics import run_segments

        if assignments is not None:
            raise InputError("--assignments needs --data: the store's segments are served by GET /v1/segments")
        settings = load_settings(data_dir)
        with open_store(settings) as store, console.status(f"segmenting the store's customers ({method})"):
            found = run_segments(
                store, settings, method=method.lower(), n_segments=n_segments, min_support=min_support, top_rules=rules
            )
        report = found["segments"]
        if rules:
            report["basket_rules"] = found["basket"]
    else:
        frame = read_retail_transactions(data).frame
        with console.status(f"segmenting customers ({method})"):
            result = segment_customers(frame, method=method.lower(), n_segments=n_segments, seed=seed)
        report = result.to_dict()
        if rules:
            with console.status("mining basket rules"):
                report["basket_rules"] = basket_rules_summary(frame, min_support=min_support, top=rules)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    if assignments is not None and data is not None:
        assignments.parent.mkdir(parents=True, exist_ok=True)
        result.assignment.to_csv(assignments, index=False)
    if as_json:
        console.print_json(json.dumps(report, ensure_ascii=False))
        return
    table = Table(title=f"{report['customers']:,} customers, {method} segments")
    for column in ("segment", "customers", "revenue", "mean", "top categories", "tags"):
        table.add_column(column)
    for segment in report["segments"]:
        value = segment["value"]
        table.add_row(
            segment["segment"],
            f"{segment['customers']:,}",
            f"{value['total_revenue']:,.0f} ({value['revenue_share']:.0%})",
            f"{value['mean_revenue']:,.0f}",
            ", ".join(c["name"] for c in segment["top_categories"]),
            ", ".join(segment["tags"]),
        )
    console.print(table)
    if "k" in report["details"]:
        console.print(f"k = {report['details']['k']} by silhouette: {report['details']['silhouette_by_k']}")
    if rules:
        found = report["basket_rules"]
        console.print(f"{found['rules']:,} basket rules from {found['baskets']:,} invoices")
        for rule in found["top_rules"]:
            console.print(
                f"  {' + '.join(rule['antecedent_names'] or rule['antecedents'])} -> "
                f"{' + '.join(rule['consequent_names'] or rule['consequents'])}  "
                f"[dim]support {rule['support']:.3f} confidence {rule['confidence']:.2f} lift {rule['lift']:.1f}[/]",
                highlight=False,
            )
    for path in (out, assignments):
        if path is not None:
            console.print(f"[green]✓[/] -> {path}")


@handle_errors
def bench_basket(
    data: Annotated[Path, typer.Option(help="an Online Retail-layout CSV(.gz) of invoice lines")],
    out: Annotated[Path | None, typer.Option(help="write results JSON here (and the chart beside it, .png)")] = None,
    min_support: Annotated[
        float | None, typer.Option(help="the rules' least share of invoices (default: chosen on validation)")
    ] = None,
    max_len: Annotated[int, typer.Option(min=2, help="the largest itemset, with --min-support")] = 3,
    test_fraction: Annotated[float, typer.Option(help="the share of the time span held out as test")] = 0.2,
    k: Annotated[int, typer.Option(min=1, help="cut-off of HR and precision")] = 10,
    seed: Annotated[int, typer.Option(help="draws the hidden item of each test invoice")] = 0,
) -> None:
    """Basket rules (FP-growth) against popularity and co-occurrence: the next item in a basket."""
    from rich.table import Table

    from shoplm.segments.bench import run_basket_benchmark

    def say(line: str) -> None:
        errors.print(f"[dim]{line}[/]", highlight=False)

    report = run_basket_benchmark(
        data,
        out,
        min_support=min_support,
        max_len=max_len,
        test_fraction=test_fraction,
        k=k,
        seed=seed,
        progress=say,
    )
    table = Table(title=f"next item in the basket: {report['data']['test_cases']:,} test invoices")
    columns = ("HR@5", f"HR@{k}", f"precision@{k}", "coverage")
    for column in ("method", *columns):
        table.add_column(column)
    for name, metrics in report["models"].items():
        table.add_row(name, *(f"{metrics[c]:.4f}" for c in columns))
    console.print(table)
    settings, found = report["settings"], report["rules"]
    console.print(
        f"{found['rules']:,} rules (min_support {settings['min_support']}, scored by {settings['scoring']}) "
        f"from {found['baskets']:,} invoices; {report['seconds']['total']:.0f} s"
    )
    if out is not None:
        console.print(f"[green]✓[/] results -> {out} and {Path(out).with_suffix('.png')}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this domain's commands to ``app`` and its benchmarks to ``bench_app``."""
    app.command("segments")(segments)
    bench_app.command("basket")(bench_basket)
