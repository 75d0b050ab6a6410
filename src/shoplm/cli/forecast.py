"""The ``shoplm`` commands of the forecast domain; :func:`register` adds them to the app.

Example:
    $ shoplm bench forecast --data online_retail.csv.gz --out results.json
    $ shoplm reorder                       # the store's orders; stored for the dashboard and GET /v1/forecasts
    $ shoplm reorder --data online_retail.csv.gz --lead-time 1 --out advice.csv
    $ shoplm bench reorder --data online_retail.csv.gz --out reorder.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from shoplm.cli.common import DataDirOption, console, errors, handle_errors, load_settings
from shoplm.errors import InputError

__all__ = ["register"]


@handle_errors
def bench_forecast(
    data: Annotated[Path, typer.Option("--data", help="Online Retail (or Online Retail II) CSV, optionally .gz")],
    out: Annotated[
        Path | None, typer.Option("--out", help="write the results as JSON here (and a PNG chart beside it)")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="where description embeddings are cached (default: the data dir's cache)"),
    ] = None,
    encoder: Annotated[
        str | None, typer.Option("--encoder", help="text encoder (default: the settings'); 'tfidf': none")
    ] = None,
    skus: Annotated[int, typer.Option("--skus", help="top SKUs by revenue", min=1)] = 500,
    data_dir: DataDirOption = None,
) -> None:
    """Weekly demand forecasts, every model on the same rolling-origin folds (4 x 4 weeks), beside shoplm's ensemble."""
    from shoplm.forecast.bench import run_forecast_bench, write_chart

    settings = load_settings(data_dir)
    encode = _encoder(encoder, cache_dir, settings, _log)
    results = run_forecast_bench(data, encode=encode, n_skus=skus, log=_log)
    rows = {
        name: {k: v for k, v in scores.items() if k in ("MASE", "RMSSE", "bias", "coverage80", "coverage95")}
        for name, scores in results["models"].items()
    }
    console.print_json(
        json.dumps(
            {
                "models": rows,
                "best": results["best"],
                "shoplm_vs_autoets_mase": results["shoplm_vs_autoets_mase"],
                "cold_start": results["cold_start"],
            }
        )
    )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, default=str))
        chart = write_chart(results, out.with_suffix(".png"))
        console.print(f"[green]✓[/] results written to {out} and {chart}")


def _encoder(encoder: str | None, cache_dir: Path | None, settings: Any, log: Any) -> Any:
    """texts -> e5 vectors through the embedding cache, or None (TF-IDF) when asked or not installed."""
    if (encoder or settings.encoder.name) == "tfidf":
        return None
    from shoplm.errors import ModelNotFoundError
    from shoplm.lm.cache import CachedEncoder
    from shoplm.lm.factory import load_encoder

    try:
        text_encoder = load_encoder(encoder or settings.encoder, cache=False)
    except ModelNotFoundError as exc:
        log(f"no text encoder ({exc}); categories and similarity from TF-IDF instead")
        return None
    cached = CachedEncoder(text_encoder, (cache_dir or settings.cache_dir) / "embeddings")
    return lambda texts: cached.encode(texts, mode="passage", progress=True)


def _log(message: str) -> None:
    errors.print(f"[dim]forecast:[/] {message}", highlight=False)


@handle_errors
def reorder(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="an Online Retail (II) CSV instead of the store's orders (nothing is stored)"),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the advice as CSV here")] = None,
    lead_time: Annotated[
        int | None, typer.Option("--lead-time", help="weeks between ordering and delivery (setting: 2)")
    ] = None,
    review: Annotated[int | None, typer.Option("--review", help="weeks between orders (setting: 1)")] = None,
    service_level: Annotated[
        float | None, typer.Option("--service-level", help="cycle service level, 0.5-1 (setting: 0.95)")
    ] = None,
    skus: Annotated[int | None, typer.Option("--skus", help="top SKUs by revenue (setting: 50)", min=1)] = None,
    ray: Annotated[
        bool, typer.Option("--ray", help="forecast the category groups as tasks on a Ray started here")
    ] = False,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="run the tasks on the Ray cluster at this address")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """What to order now, per SKU, from shoplm's forecast: safety stock, reorder point, order-up-to, newsvendor.

    On the store's orders (the default) the forecasts and the advice are stored for the dashboard
    and ``GET /v1/forecasts``. Costs and lead times are not in the data: the defaults of the
    ``forecast`` settings stand in (lead time 2 weeks, holding cost 25% of the price per year,
    stock-out cost a 30% margin).
    """
    from shoplm.fanout import resolve_ray_address

    settings = load_settings(data_dir)
    overrides = {
        "lead_time_weeks": lead_time,
        "review_weeks": review,
        "service_level": service_level,
        "skus": skus,
    }
    try:
        config = type(settings.forecast).model_validate(
            {**settings.forecast.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
        )
    except ValueError as exc:  # pydantic's ValidationError: say which option, exit 2
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in getattr(exc, "errors", list)())
        raise InputError(f"bad reorder option ({problems or exc})") from exc
    settings = settings.model_copy(update={"forecast": config})
    address = resolve_ray_address(ray, ray_address, settings.ray.address)
    if data is None:
        from shoplm.app.analytics import run_forecast
        from shoplm.cli.common import open_store

        with open_store(settings) as store:
            report = run_forecast(store, settings, ray_address=address)
        rows = report["reorder"]
        console.print(f"{len(report['series'])} SKUs forecast {report['horizon']} weeks ahead ({report['ran_on']})")
    else:
        rows = _file_advice(data, settings.forecast)
    import pandas as pd

    advice = pd.DataFrame(rows)
    if advice.empty:
        console.print("nothing to order now: every forecast SKU is above its reorder level")
        return
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        advice.to_csv(out, index=False, float_format="%.1f")
        console.print(f"[green]✓[/] advice for {len(advice)} SKUs written to {out}")
    else:
        shown = ["item_id", "title", "order_quantity", "reason"]
        console.print(advice[shown].head(20).to_string(index=False))


def _file_advice(data: Path, config: Any) -> list[dict[str, Any]]:
    """Reorder advice from a file's history (no stock counts: on hand is taken as 0)."""
    from shoplm.app.analytics import reorder_list
    from shoplm.forecast import forecast, weekly_demand
    from shoplm.ingest.transactions import read_retail_transactions

    panel = weekly_demand(read_retail_transactions(data).frame)
    top = panel.items.sort_values("revenue", ascending=False, kind="stable")["item_id"].head(config.skus).tolist()
    horizon = config.lead_time_weeks + config.review_weeks
    if horizon > 13:
        raise InputError(f"lead time + review must be at most 13 weeks, got {horizon}")
    predicted = forecast(panel, horizon=max(horizon, config.horizon_weeks), levels=(80, 95), skus=top)
    items = panel.items.set_index("item_id")
    return reorder_list(
        predicted[predicted["kind"] == "sku"], config, price=items["price"], titles=items["description"]
    )


@handle_errors
def bench_reorder(
    data: Annotated[Path, typer.Option("--data", help="Online Retail (or Online Retail II) CSV, optionally .gz")],
    out: Annotated[Path | None, typer.Option("--out", help="write the results as JSON here")] = None,
    lead_time: Annotated[int, typer.Option("--lead-time", help="weeks between ordering and delivery")] = 2,
    review: Annotated[int, typer.Option("--review", help="weeks between orders")] = 1,
    service_level: Annotated[float, typer.Option("--service-level", help="cycle service level, 0.5-1")] = 0.95,
    skus: Annotated[int, typer.Option("--skus", help="top SKUs by revenue", min=1)] = 500,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="where embeddings are cached")] = None,
    encoder: Annotated[str | None, typer.Option("--encoder", help="text encoder; 'tfidf': none")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """12 weeks of weekly ordering with shoplm's forecasts against a naive moving-average policy."""
    from shoplm.forecast.reorder_bench import run_reorder_bench, write_reorder_chart

    settings = load_settings(data_dir)
    results = run_reorder_bench(
        data,
        encode=_encoder(encoder, cache_dir, settings, _log),
        n_skus=skus,
        lead_time=lead_time,
        review=review,
        service_level=service_level,
        log=_log,
    )
    console.print_json(json.dumps({"policies": results["policies"], "service_level": service_level}))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, default=str))
        chart = write_reorder_chart(results, out.with_suffix(".png"))
        console.print(f"[green]✓[/] results written to {out} and {chart}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this domain's commands to ``app`` and its benchmarks to ``bench_app``."""
    app.command("reorder")(reorder)
    bench_app.command("forecast")(bench_forecast)
    bench_app.command("reorder")(bench_reorder)
