"""The ``shoplm`` commands of the fraud and anomaly domain; :func:`register` adds them to the app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store
from shoplm.errors import InputError

__all__ = ["register"]


def _demo_store(seed: int, cache_dir: Path) -> Path:
    """The default demo store for ``seed``, generated once into the cache."""
    from shoplm.demo.generator import generate_demo_store

    target = cache_dir / f"demo-seed{seed}"
    if not (target / "ground_truth.json").is_file():
        console.print(f"generating the demo store (seed {seed}) in {target}")
        generate_demo_store(target, seed=seed)
    return target


@handle_errors
def bench_fraud(
    data: Annotated[
        Path | None,
        typer.Option(
            help="a demo store directory (`python -m shoplm.demo DIR`, or DATA_DIR/demo-source after "
            "`shoplm demo`); default: the demo store of --seed, generated"
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="write results JSON here (and the chart beside it as .png)")] = None,
    chart: Annotated[Path | None, typer.Option(help="write the precision@k chart (PNG) here")] = None,
    seed: Annotated[int, typer.Option(help="seed of the generated demo store and of the IsolationForest")] = 0,
    data_dir: DataDirOption = None,
) -> None:
    """Fraud alerts on the demo store's injected fraud: precision@k and recall at a 1% alert rate.

    The ensemble (ECOD, IsolationForest, COPOD and the rules) is set up on the earlier 40% of
    orders and measured on the later ones, beside each detector alone and the rules alone.
    """
    from shoplm.ingest.pipeline import flag_bursts
    from shoplm.risk.bench import run_fraud_benchmark

    if seed < 0:
        raise InputError(f"--seed must be 0 or more, not {seed}")
    settings = load_settings(data_dir)
    if data is None:
        data = _demo_store(seed, settings.cache_dir / "fraud")
    elif not data.is_dir():
        raise InputError("not a directory: give a demo store (`python -m shoplm.demo DIR` writes one)", path=data)

    def flag_bots(users, ts_ms):  # type: ignore[no-untyped-def]
        return flag_bursts(
            users,
            ts_ms,
            min_events=settings.ingest.bot_burst_events,
            window_ms=settings.ingest.bot_burst_seconds * 1000,
        )

    results = run_fraud_benchmark(data, out, chart=chart, seed=seed, flag_bots=flag_bots)
    info = results["data"]
    ks = list(next(iter(results["models"].values()))["precision_at_k"])
    table = Table(
        title=f"{info['reported_orders']:,} later orders, {info['reported_fraud']} fraud; "
        f"{info['alerts_at_1pct']} alerts at 1% (best possible recall {info['recall_ceiling_at_1pct']:.2f})"
    )
    for column in ("model", *(f"P@{k}" for k in ks), "recall@1%", "AP", "alerts for all fraud"):
        table.add_column(column)
    for name, figures in results["models"].items():
        table.add_row(
            name,
            *(f"{figures['precision_at_k'][k]:.3f}" for k in ks),
            f"{figures['recall_at_1pct']:.3f}",
            f"{figures['average_precision']:.3f}",
            f"{figures['alerts_for_full_recall']:,}",
        )
    console.print(table)
    chosen = results["selection"]
    tied = f" (tied with {', '.join(results['best_tied_with'])})" if results["best_tied_with"] else ""
    console.print(
        f"best: {results['best']}{tied}; shoplm settings chosen on the earlier orders: combine={chosen['combine']}, "
        f"rule_weight={chosen['rule_weight']}, one_sided={chosen['one_sided']} ({results['seconds']:.0f} s)"
    )
    if out is not None:
        console.print(f"[green]✓[/] figures -> {out}")


@handle_errors
def fraud(
    since: Annotated[
        str | None, typer.Option(help="raise alerts only for orders from this date (YYYY-MM-DD); default: all")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Score the store's orders for fraud; each flagged order becomes an alert (stored once, sent to the webhook)."""
    import pandas as pd

    from shoplm.app.analytics import run_fraud

    since_ms = 0
    if since is not None:
        try:
            since_ms = int(pd.Timestamp(since, tz="UTC").timestamp() * 1000)
        except ValueError as exc:
            raise InputError(f"--since must be a date like 2026-06-01, not {since!r}", field="since") from exc
    settings = load_settings(data_dir)
    with open_store(settings) as store:
        found = run_fraud(store, settings, since_ms=since_ms)
    console.print(
        f"{found['orders']:,} orders scored, {found['flagged']} flagged, {found['new_alerts']} new alerts"
        + (f", {found['delivered']} sent to the webhook" if settings.alerts.webhook_url else "")
        + (f", [red]{found['delivery_failed']} not delivered (retried next run)[/]" if found["delivery_failed"] else "")
    )


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``fraud`` to ``app`` and ``shoplm bench fraud`` to ``bench_app``."""
    app.command("fraud")(fraud)
    bench_app.command("fraud")(bench_fraud)
