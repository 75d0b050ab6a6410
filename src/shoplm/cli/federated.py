"""``shoplm bench federated``: federated vs centralized vs local-only training; :func:`register` adds it.

Example:
    $ shoplm bench federated --task intent --intents bitext.csv --shops 5 --rounds 20 --out federated.json
    $ shoplm bench federated --task all --intents bitext.csv --seqrec-data amazon-toys --dp-noise 0.5 --dp-clip 1
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shoplm.cli.common import console, handle_errors

__all__ = ["register"]


@handle_errors
def bench_federated(
    task: Annotated[str, typer.Option(help="intent, seqrec or all")] = "all",
    intents: Annotated[
        Path | None, typer.Option(help="Bitext CSV (instruction, intent, category), split into shops by category")
    ] = None,
    seqrec_data: Annotated[
        Path | None, typer.Option(help="amazon-toys directory (sequences.txt, items.tsv), split by user groups")
    ] = None,
    shops: Annotated[int, typer.Option(help="number of shops")] = 5,
    rounds: Annotated[int, typer.Option(help="federated rounds (intent; seqrec too unless --seqrec-rounds)")] = 20,
    seqrec_rounds: Annotated[int | None, typer.Option(help="federated rounds of the seqrec task")] = None,
    strategy: Annotated[str, typer.Option(help="fedavg, fedprox, or both comma-separated")] = "fedavg,fedprox",
    mu: Annotated[float, typer.Option("--mu", help="FedProx's proximal weight")] = 0.01,
    dp_noise: Annotated[float, typer.Option(help="DP-FedAvg noise multiplier (0: no DP run)")] = 0.0,
    dp_clip: Annotated[float, typer.Option(help="DP-FedAvg clipping norm of each shop's update")] = 1.0,
    alpha: Annotated[float, typer.Option(help="Dirichlet skew of the shops (smaller: more different)")] = 0.5,
    users: Annotated[int, typer.Option(help="seqrec user subsample (0: all users)")] = 6000,
    seqrec_dim: Annotated[int, typer.Option(help="width (d_model) of the sequential network")] = 64,
    seed: Annotated[int, typer.Option(help="seed of the split and the models")] = 0,
    cache_dir: Annotated[Path | None, typer.Option(help="embedding caches (utterances under embeddings/)")] = None,
    out: Annotated[Path | None, typer.Option(help="write the report as JSON here (and a PNG chart beside it)")] = None,
) -> None:
    """Flower in simulation: shops that never pool raw data, against one pooled model and each shop alone."""
    from shoplm.app.federated.bench import run_federated_benchmark

    report = run_federated_benchmark(
        task=task,
        intents=intents,
        seqrec_data=seqrec_data,
        out=out,
        shops=shops,
        alpha=alpha,
        rounds=rounds,
        seqrec_rounds=seqrec_rounds,
        strategies=[s.strip() for s in strategy.split(",") if s.strip()],
        proximal_mu=mu,
        dp_noise=dp_noise,
        dp_clip=dp_clip,
        users=users or None,
        seqrec_params={"d_model": seqrec_dim},
        seed=seed,
        cache_dir=cache_dir,
    )
    shown = {
        name: {
            arm: {k: v for k, v in row.items() if k in ("own_shops", "all_test", "rounds", "mb_communicated")}
            for arm, row in result["arms"].items()
        }
        for name, result in report["tasks"].items()
    }
    console.print_json(json.dumps(shown))
    if out:
        console.print(f"[green]✓[/] report written to {out}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the ``federated`` benchmark to ``bench_app``."""
    bench_app.command("federated")(bench_federated)
