"""The ``shoplm`` commands of CTR prediction: ``ctr train``, ``ctr score`` and ``bench ctr``.

Example:
    $ shoplm ctr train
    $ shoplm ctr score U00042 I00001 I00002 --scene search
    $ shoplm bench ctr --seed 0 --users 2000 --out benchmarks/ctr/ctr.json
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store
from shoplm.cli.groups import ctr_app

__all__ = ["register"]


@handle_errors
def train(
    model: Annotated[str, typer.Option(help="lightgbm, logistic or dcn_v2")] = "lightgbm",
    text: Annotated[bool, typer.Option("--text/--no-text", help="use the items' e5 text vectors")] = True,
    data_dir: DataDirOption = None,
) -> None:
    """Train a CTR model on the stored impressions and make it the live version."""
    from shoplm.app.ctr import train_ctr

    settings = load_settings(data_dir)
    with open_store(settings) as store, console.status("training the CTR model") as status:
        result = train_ctr(store, settings, model=model, text=text, on_step=lambda s: status.update(s))
    console.print(
        f"[green]✓[/] {result.model} trained on {result.rows:,} impressions in {result.seconds:.1f} s "
        f"(validation AUC {result.validation_auc:.4f}); live version {result.version}; "
        "served at POST /v1/ctr/score"
    )


@handle_errors
def score(
    user_id: Annotated[str, typer.Argument(help="the shop's user id")],
    item_ids: Annotated[list[str], typer.Argument(help="candidate item ids")],
    scene: Annotated[str, typer.Option(help="home, search or item_detail")] = "home",
    position: Annotated[
        int | None, typer.Option(min=0, help="score every item in this slot (default: 0, 1, 2 ...)")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Predicted click probability of each item for a user, from the live CTR model."""
    from rich.table import Table

    from shoplm.app.ctr import score_items
    from shoplm.ingest.pseudonymize import Pseudonymizer

    settings = load_settings(data_dir)
    user = Pseudonymizer(settings.hmac_key).user(user_id)
    answer = score_items(settings, user, item_ids, scene=scene, position=position)
    table = Table("item", "P(click)")
    for row in answer["scores"]:
        table.add_row(row["item_id"], f"{row['p_click']:.2%}")
    console.print(table)
    console.print(f"model version {answer['model_version']}, scene {answer['scene']}")


@handle_errors
def bench_ctr(
    data: Annotated[
        Path | None, typer.Option("--data", help="a demo store directory (impressions.parquet ...)")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the JSON here (and a PNG chart beside it)")] = None,
    seed: Annotated[int, typer.Option(help="demo seed (without --data), cold items and models")] = 0,
    users: Annotated[int, typer.Option(min=50, help="demo users (without --data)")] = 2000,
    items: Annotated[int, typer.Option(min=60, help="demo items (without --data)")] = 2000,
    events: Annotated[int, typer.Option(min=500, help="demo events (without --data)")] = 100_000,
    requests: Annotated[
        int, typer.Option(min=100, help="demo impression requests of 8 items (without --data)")
    ] = 40_000,
    test_days: Annotated[int, typer.Option(min=1, help="the last days of impressions: the test set")] = 21,
    val_days: Annotated[int, typer.Option(min=1, help="the days before the test set: validation")] = 14,
    cold_share: Annotated[float, typer.Option(min=0.0, max=0.5, help="share of items held out until the test")] = 0.1,
) -> None:
    """Logistic regression, LightGBM and DCN-v2, with and without e5 text features, against the oracle AUC."""
    import numpy as np
    import torch

    from shoplm.lm import load_encoder
    from shoplm.lm.texts import item_texts
    from shoplm.marketing.ctr_bench import read_demo_logs, run_ctr_benchmark, write_outputs

    torch.set_num_threads(1)  # the benchmark runs on one core, as the serving path does
    settings = load_settings(None)
    if data is None:
        from shoplm.demo import DemoSizes, generate_demo_store

        data = Path(tempfile.mkdtemp(prefix="shoplm-ctr-bench-"))
        sizes = DemoSizes(n_items=items, n_users=users, n_events=events, n_requests=requests)
        print(f"generating a demo store in {data} ...", file=sys.stderr)
        generate_demo_store(data, seed=seed, sizes=sizes)
    logs = read_demo_logs(data)
    encoder = load_encoder(settings, threads=1)
    print(f"encoding {len(logs.items):,} item texts with {encoder.model_id} (cached) ...", file=sys.stderr)
    vectors = np.asarray(encoder.encode(item_texts(logs.items), mode="passage", progress=True), dtype=np.float32)
    results = run_ctr_benchmark(logs, vectors, test_days=test_days, val_days=val_days, cold_share=cold_share, seed=seed)
    results["data"] = {"dir": str(data), "seed": seed, "encoder": encoder.model_id}
    if out:
        json_path, png = write_outputs(results, out)
        console.print(f"[green]✓[/] report written to {json_path} and {png}")
    else:
        results.pop("_test_predictions", None)
    shown = {k: results[k] for k in ("models", "without_text", "oracle_auc", "gap_to_oracle", "serving_ms_per_100")}
    console.print_json(json.dumps(shown))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``ctr train`` and ``ctr score`` to the shared ``ctr`` group and ``ctr`` to ``bench_app``."""
    del app
    ctr_app.command("train")(train)
    ctr_app.command("score")(score)
    bench_app.command("ctr")(bench_ctr)
