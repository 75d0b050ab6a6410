"""The ``shoplm`` commands of the forecast domain; :func:`register` adds them to the app.

Example:
    $ shoplm bench forecast --data ../shared/data/retail/online_retail.csv.gz --out results.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shoplm.cli.common import DataDirOption, console, errors, handle_errors, load_settings

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
    import numpy as np

    from shoplm.errors import ModelNotFoundError
    from shoplm.forecast.bench import run_forecast_bench, write_chart

    settings = load_settings(data_dir)

    def log(message: str) -> None:
        errors.print(f"[dim]forecast:[/] {message}", highlight=False)

    encode = None
    if (encoder or settings.encoder.name) != "tfidf":
        from shoplm.lm.cache import CachedEncoder
        from shoplm.lm.factory import load_encoder

        try:
            text_encoder = load_encoder(encoder or settings.encoder, cache=False)
        except ModelNotFoundError as exc:
            log(f"no text encoder ({exc}); categories and similarity from TF-IDF instead")
        else:
            cached = CachedEncoder(text_encoder, (cache_dir or settings.cache_dir) / "embeddings")

            def encode(texts: list[str]) -> np.ndarray:
                return cached.encode(texts, mode="passage", progress=True)

    results = run_forecast_bench(data, encode=encode, n_skus=skus, log=log)
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


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this domain's commands to ``app`` and its benchmarks to ``bench_app``."""
    bench_app.command("forecast")(bench_forecast)
