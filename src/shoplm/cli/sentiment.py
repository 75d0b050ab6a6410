"""``shoplm reviews analyze|sentiment``: review sentiment over the store, or for one text.

Example:
    $ shoplm reviews analyze            # score reviews not scored yet (also runs after `shoplm ingest reviews`)
    $ shoplm reviews analyze --rescore  # score every review again
    $ shoplm reviews sentiment "质量很好，物流也快"
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store, progress_bar
from shoplm.cli.groups import reviews_app
from shoplm.errors import InputError

__all__ = ["register"]


@handle_errors
def analyze(
    rescore: Annotated[bool, typer.Option("--rescore", help="score every review again, reusing nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Score the stored reviews' sentiment (polarity, P(positive), a 1-5 rating estimate); new ones only."""
    from shoplm.app.reviews import score_reviews

    settings = load_settings(data_dir)
    store = open_store(settings)
    with progress_bar("scoring reviews") as update:
        result = score_reviews(store, settings, rescore=rescore, progress=update)
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
    else:
        console.print(f"[green]✓[/] {result.summary()} [dim]({result.seconds:.1f} s)[/]")


@handle_errors
def sentiment(
    texts: Annotated[list[str], typer.Argument(help="one or more review texts (Chinese or English)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the results as JSON")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """The sentiment of review texts given here (nothing is stored)."""
    from shoplm.app.reviews import analyze_texts

    if not texts:
        raise InputError("give at least one review text")
    settings = load_settings(data_dir)
    results = analyze_texts(settings, list(texts))
    if as_json:
        console.print_json(json.dumps([r.to_dict() for r in results], ensure_ascii=False))
        return
    for text, result in zip(texts, results, strict=True):
        shown = text if len(text) <= 60 else text[:57] + "..."
        if result.skipped:
            console.print(f"[yellow]skipped[/] ({result.skipped}): {shown}", highlight=False)
            continue
        notes = [n for n, on in (("truncated", result.truncated), ("HTML removed", result.html_stripped)) if on]
        console.print(
            f"[bold]{result.polarity}[/] p(positive)={result.p_positive:.3f} rating≈{result.rating:.1f}"
            f"{' [dim](' + ', '.join(notes) + ')[/]' if notes else ''}: {shown}",
            highlight=False,
        )


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``analyze`` and ``sentiment`` to the shared ``shoplm reviews`` group.

    Args:
        app: the top-level application (the group is added to it by :mod:`shoplm.cli.groups`).
        bench_app: unused (the benchmark is ``shoplm bench sentiment``, in :mod:`shoplm.cli.assistant`).
    """
    del app, bench_app
    reviews_app.command("analyze")(analyze)
    reviews_app.command("sentiment")(sentiment)
