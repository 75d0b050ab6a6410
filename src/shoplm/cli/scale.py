"""The ``shoplm`` commands of batch work that fans out on Ray; :func:`register` adds them to the app.

``shoplm encode --ray`` and ``shoplm train --ray`` live with the other core commands in
:mod:`shoplm.cli.main`; this module holds batch scoring.

Example:
    $ shoplm precompute --ray
    $ shoplm precompute --ray-address ray://head:10001 --users-per-task 20000
"""

from __future__ import annotations

from typing import Annotated

import typer

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store, progress_bar

__all__ = ["RayAddressOpt", "RayOpt", "register"]

RayOpt = Annotated[bool, typer.Option("--ray", help="run the chunks on a Ray started here")]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="run the chunks on this Ray cluster (HOST:PORT or ray://HOST:PORT)")
]


@handle_errors
def precompute(
    k: Annotated[int, typer.Option(min=1, max=200, help="items stored per user (the API's default answer is 10)")] = 10,
    users_per_task: Annotated[int, typer.Option(min=1, help="users scored per task")] = 5_000,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    data_dir: DataDirOption = None,
) -> None:
    """Score every user's home candidate list with the live models and store it for serving.

    Serving answers a home request from the stored list while the user's history and the
    models are the ones it was scored from, and computes a fresh answer otherwise.
    """
    from shoplm.app.batch import precompute_candidates
    from shoplm.fanout import resolve_ray_address

    settings = load_settings(data_dir)
    with open_store(settings) as store:
        address = resolve_ray_address(ray, ray_address, settings.ray.address)
        with progress_bar("scoring users", unit="tasks") as update:
            report = precompute_candidates(
                store, settings, k=k, users_per_task=users_per_task, ray_address=address, progress=update
            )
    console.print(
        f"[green]✓[/] {report['users']:,} users' home lists (k={k}) scored by model version {report['version']} "
        f"in {report['tasks']:,} tasks on {report['ran_on']} ({report['seconds']:.1f} s)"
    )


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``precompute`` to ``app`` (no benchmark command: see benchmarks/scale/)."""
    del bench_app  # the scaling benchmark is a script: benchmarks/scale/bench_scale.py
    app.command("precompute")(precompute)
