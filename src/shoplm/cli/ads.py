"""``shoplm ads write|bandit`` and ``shoplm bench adcopy|bandit``; :func:`register` adds them.

Example:
    $ shoplm ads write I00001 --channel search --n 5 --must-mention brand,price
    $ shoplm ads bandit I00001
    $ shoplm bench bandit --seeds 3 --out benchmarks/bandit/bandit.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shoplm.cli.common import DataDirOption, console, errors, handle_errors, load_settings, open_store
from shoplm.cli.groups import ads_app
from shoplm.errors import InputError

__all__ = ["register"]

CHANNEL_HELP = "search | feed | push (or a channel added to ads.channel_limits)"


def _list(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated option values, flattened: ``--ban a,b --ban c`` -> [a, b, c]."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


@handle_errors
def write(
    item: Annotated[str, typer.Argument(help="the item's id")],
    channel: Annotated[str, typer.Option("--channel", help=CHANNEL_HELP)] = "feed",
    n: Annotated[int, typer.Option("--n", help="variants wanted (1-10)")] = 5,
    language: Annotated[str | None, typer.Option("--language", help="zh or en; default the item's")] = None,
    must_mention: Annotated[
        list[str] | None,
        typer.Option("--must-mention", help="attributes each ad names: brand, price, color, material, size, title"),
    ] = None,
    ban: Annotated[list[str] | None, typer.Option("--ban", help="a word no ad may contain (repeatable)")] = None,
    templates_only: Annotated[bool, typer.Option("--templates", help="templates even if a model is set")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Write N ad variants of ITEM for a channel, check every constraint, score and rank them.

    Exits 2 when no variant meets every constraint (after showing the best ones with their violations).
    """
    from rich.table import Table

    from shoplm.app.adcopy import write_ads

    settings = load_settings(data_dir)
    with open_store(settings) as store:
        result = write_ads(
            store,
            settings,
            item,
            channel,
            n,
            language=language,
            must_mention=_list(must_mention),
            banned=_list(ban),
            use_model=not templates_only,
        )
    if as_json:
        console.print_json(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        table = Table("#", "chars", "style", "score", "checks")
        table.add_column("ad", overflow="fold", ratio=3)
        for rank, variant in enumerate(result.variants, 1):
            checks = "[green]all pass[/]" if variant.ok else "[red]" + "; ".join(variant.violations) + "[/]"
            table.add_row(
                str(rank), str(len(variant.text)), variant.style, f"{variant.score:.3f}", checks, variant.text
            )
        console.print(table)
        console.print(f"{result.channel} · {result.language} · limit {result.limit} characters")
        for note in result.notes:
            console.print(f"[dim]{note}[/]")
        for dropped in result.dropped:
            console.print(f"[yellow]dropped[/] {dropped['text']!r}: {'; '.join(dropped['violations'])}")
    if not result.ok:
        errors.print(f"[bold red]error:[/] {result.message}")
        raise typer.Exit(2)
    if not as_json:
        console.print(f"[green]✓[/] {result.message}")


@handle_errors
def bandit(
    item: Annotated[str, typer.Argument(help="the item's id")],
    state: Annotated[
        Path | None, typer.Option("--state", help="a saved bandit directory instead of the stored impressions")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the posteriors as JSON")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """The posterior CTR of each ad creative of ITEM (Thompson sampling's Beta posteriors) from its impressions."""
    from rich.table import Table

    from shoplm.app.adcopy import creative_posteriors

    settings = load_settings(data_dir)
    with open_store(settings) as store:
        found = creative_posteriors(store, settings, item, state=state)
    if as_json:
        console.print_json(json.dumps(found))
        return
    table = Table("arm", "style", "shown", "clicks", "CTR mean", "90% interval", "P(best)")
    for arm in found["arms"]:
        table.add_row(
            arm["arm"],
            arm["style"],
            f"{arm['impressions']:,}",
            f"{arm['clicks']:,}",
            f"{arm['mean']:.2%}",
            f"{arm['low']:.2%} - {arm['high']:.2%}",
            f"{arm['p_best']:.0%}",
        )
    if found["arms"]:
        console.print(table)
    console.print(found["message"])


@handle_errors
def bench_bandit(
    out: Annotated[Path | None, typer.Option(help="write the JSON here (and the PNG chart beside it)")] = None,
    seeds: Annotated[int, typer.Option(min=1, max=20, help="reported demo stores: seeds 0..N-1")] = 3,
    seed: Annotated[int, typer.Option(help="first reported seed")] = 0,
    requests: Annotated[int, typer.Option(min=1000, help="impression requests per demo store (8 items each)")] = 60_000,
    items: Annotated[int, typer.Option(min=60, help="items per demo store")] = 200,
    data_dir: DataDirOption = None,
) -> None:
    """Thompson sampling vs uniform, ε-greedy and the oracle, replayed over demo impression logs (several seeds)."""
    from shoplm.marketing.bandit_bench import run_bandit_benchmark

    settings = load_settings(data_dir)
    reported = list(range(seed, seed + seeds))
    validation_seed = 1000 + seed  # ε is chosen here, never on a reported seed
    dirs = [_impression_store(s, items, requests, settings.cache_dir) for s in [validation_seed, *reported]]
    report = run_bandit_benchmark(dirs[1:], out, validation=dirs[0], seeds=reported)
    console.print_json(json.dumps({"epsilon": report["epsilon"], "policies": report["policies"]}))
    if out:
        console.print(f"[green]✓[/] report written to {out} and {out.with_suffix('.png')}")


def _impression_store(seed: int, n_items: int, n_requests: int, cache_dir: Path) -> Path:
    """A demo store with a long impression log, generated once into the cache."""
    from shoplm.demo.generator import DemoSizes, generate_demo_store

    target = cache_dir / f"bandit-demo-seed{seed}-i{n_items}-r{n_requests}"
    if not (target / "impressions_truth.json").is_file():
        errors.print(f"generating the demo store of seed {seed} ({n_requests:,} requests) in {target}")
        sizes = DemoSizes(n_items=n_items, n_users=2000, n_events=20_000, n_requests=n_requests)
        generate_demo_store(target, seed=seed, sizes=sizes)
    return target


@handle_errors
def bench_adcopy(
    out: Annotated[Path | None, typer.Option(help="write the JSON here (and the PNG chart beside it)")] = None,
    items_csv: Annotated[
        Path | None, typer.Option("--items", help="an items.csv of a demo store; default the demo store of --seed")
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, max=10, help="variants per item and channel")] = 5,
    seed: Annotated[int, typer.Option(help="seed of the generated demo store and of the injected claims")] = 0,
    data_dir: DataDirOption = None,
) -> None:
    """Constraint pass rates, distinct variants and the claim checker's catch rate over every demo item and channel."""
    from shoplm.marketing.adcopy_bench import run_adcopy_benchmark

    settings = load_settings(data_dir)
    if items_csv is None:
        from shoplm.demo.generator import DemoSizes, generate_demo_store

        target = settings.cache_dir / f"adcopy-demo-seed{seed}"
        if not (target / "items.csv").is_file():
            errors.print(f"generating the demo store of seed {seed} in {target}")
            generate_demo_store(target, seed=seed, sizes=DemoSizes(n_items=2000, n_users=300, n_events=5_000))
        items_csv = target / "items.csv"
    if not items_csv.is_file():
        raise InputError(f"{items_csv}: no such file")
    limits = {name: {"zh": limit.zh, "en": limit.en} for name, limit in settings.ads.channel_limits.items()}
    report = run_adcopy_benchmark(items_csv, out, n=n, seed=seed, limits=limits)
    console.print_json(json.dumps({k: report[k] for k in ("variants", "baseline", "checker")}, ensure_ascii=False))
    if out:
        console.print(f"[green]✓[/] report written to {out} and {out.with_suffix('.png')}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``write`` and ``bandit`` to ``shoplm ads`` and the ``adcopy`` and ``bandit`` benchmarks."""
    del app
    ads_app.command("write")(write)
    ads_app.command("bandit")(bandit)
    bench_app.command("bandit")(bench_bandit)
    bench_app.command("adcopy")(bench_adcopy)
