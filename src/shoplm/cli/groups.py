"""Command groups that several domains' command modules add to (``shoplm reviews ...``, ``shoplm ads ...``).

Each domain's module imports the group it extends and registers its own commands on it, so
adding a command never means editing another domain's module.
"""

from __future__ import annotations

import typer

#: ``shoplm reviews ...``: sentiment, aspects and reply drafts for the stored reviews
reviews_app = typer.Typer(help="Review insight: sentiment, aspects and reply drafts.", no_args_is_help=True)
#: ``shoplm insight ...``: opinion monitoring over the reviews (daily sentiment, alerts, complaint topics)
insight_app = typer.Typer(
    help="Opinion monitoring: daily sentiment, spike alerts, complaint topics.", no_args_is_help=True
)
#: ``shoplm ads ...``: ad copy and its creative bandit
ads_app = typer.Typer(
    help="Ad copy: variants per item and channel, checked and scored; creative bandits.", no_args_is_help=True
)
#: ``shoplm ctr ...``: click-through-rate models
ctr_app = typer.Typer(help="Click-through-rate prediction: train and score.", no_args_is_help=True)
#: ``shoplm experiments ...``: A/B tests of recommendation strategies
experiments_app = typer.Typer(help="A/B tests of recommendation strategies.", no_args_is_help=True)

GROUPS = {
    "reviews": reviews_app,
    "insight": insight_app,
    "ads": ads_app,
    "ctr": ctr_app,
    "experiments": experiments_app,
}


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add every shared group to ``app``; call after the domains have added their commands.

    Args:
        app: the top-level ``shoplm`` application.
        bench_app: unused; the same signature as every domain's ``register``.
    """
    del bench_app
    for name, group in GROUPS.items():
        if group.registered_commands:  # an empty group would show in --help with nothing under it
            app.add_typer(group, name=name)
