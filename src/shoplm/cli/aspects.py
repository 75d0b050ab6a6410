"""The ``shoplm`` commands of aspect-based opinions; :func:`register` adds them.

Example:
    $ shoplm reviews aspects "物流很快，但是屏幕有坏点"
    $ shoplm bench aspects --data benchmarks/aspects/aspects_eval.jsonl --out aspects.json
    $ shoplm reviews train-aspects --dev benchmarks/aspects/aspects_dev.jsonl \\
          --weak custrev.all --weak online_shopping_10_cats.csv --exclude benchmarks/aspects/aspects_eval.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings
from shoplm.cli.groups import reviews_app
from shoplm.errors import InputError, ModelFileError

if TYPE_CHECKING:
    from shoplm.config import Settings
    from shoplm.insight.aspects import AspectExtractor

__all__ = ["register"]

ModelOpt = Annotated[
    Path | None, typer.Option("--model", help="a saved aspect model directory (default: the shipped one)")
]


def _extractor(settings: Settings, model: Path | None) -> AspectExtractor:
    from shoplm.insight.aspects import load_default_extractor

    try:
        return load_default_extractor(settings, model)
    except ModelFileError as exc:
        if model is not None:
            raise InputError(str(exc)) from exc  # the user named it: bad input, exit 2
        raise


@handle_errors
def aspects(
    text: Annotated[str, typer.Argument(help="a review (Chinese or English)")],
    language: Annotated[str | None, typer.Option(help="zh or en; detected when not given")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    model: ModelOpt = None,
    data_dir: DataDirOption = None,
) -> None:
    """The aspect terms, categories and polarities of one review."""
    from rich.table import Table

    if language is not None and language not in ("zh", "en"):
        raise InputError(f"--language must be zh or en, got {language!r}")
    result = _extractor(load_settings(data_dir), model).extract([text], languages=[language])[0]
    if as_json:
        console.print_json(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    if result.skipped:
        console.print(f"[yellow]skipped:[/] {result.skipped}")
        return
    table = Table("term", "category", "polarity", "confidence")
    for aspect in result.aspects:
        table.add_row(aspect.term or "(implicit)", aspect.category, aspect.polarity, f"{aspect.confidence:.2f}")
    console.print(table if result.aspects else "no aspect found")
    if result.truncated:
        console.print("[yellow]the review was cut to its first characters (max_chars)[/]")


@handle_errors
def bench_aspects(
    data: Annotated[Path, typer.Option("--data", help="labelled sentences: JSONL or SemEval-2014 Task 4 XML")],
    out: Annotated[
        Path | None, typer.Option("--out", help="write {accuracy, macro_f1, category_f1} here (+ details and PNG)")
    ] = None,
    model: ModelOpt = None,
    data_dir: DataDirOption = None,
) -> None:
    """Aspect-term polarity (accuracy, macro-F1, conflict dropped) and category F1, beside the baselines."""
    from rich.table import Table

    from shoplm.insight.aspects_bench import load_aspect_file, run_aspect_benchmark

    load_aspect_file(data)  # a bad file fails before the model loads
    settings = load_settings(data_dir)
    extractor = _extractor(settings, model)
    report = run_aspect_benchmark(data, extractor, out, model_path=str(model) if model else "shipped")
    table = Table("system", "term polarity acc", "macro-F1", "category F1", "category P / R", "term extraction F1")
    for name, scores in report["systems"].items():
        category = scores["category_f1"]
        table.add_row(
            name,
            f"{scores['accuracy']:.3f}",
            f"{scores['macro_f1']:.3f}",
            "-" if category is None else f"{category:.3f}",
            "-" if category is None else f"{scores['category_precision']:.3f} / {scores['category_recall']:.3f}",
            f"{scores['term_extraction_f1']:.3f}",
        )
    console.print(table)
    console.print(
        f"{report['n_sentences']} sentences, {report['n_terms_scored']} terms scored "
        f"({report['n_conflict_dropped']} conflict dropped)"
    )
    if out:
        console.print(f"[green]✓[/] {out}, {report['files']['details']} and {report['files']['png']} written")


@handle_errors
def train_aspects(
    dev: Annotated[Path, typer.Option("--dev", help="labelled development sentences (JSONL or SemEval XML)")],
    weak: Annotated[
        list[Path] | None,
        typer.Option("--weak", help="weak polarity file: 'label sentence' lines or cat,label,review CSV"),
    ] = None,
    exclude: Annotated[
        list[Path] | None, typer.Option("--exclude", help="labelled file never to train on (the reported set)")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="model directory (default: the shipped model's)")] = None,
    folds: Annotated[int, typer.Option(min=2, max=10, help="cross-validation folds over --dev")] = 4,
    threads: Annotated[int, typer.Option(min=1, help="encoder threads")] = 1,
    data_dir: DataDirOption = None,
) -> None:
    """Train the aspect model: settings chosen by cross-validation on --dev, then fitted on all of it."""
    from shoplm.insight.aspects import default_model_path
    from shoplm.insight.aspects_train import train_aspect_extractor

    settings = load_settings(data_dir)
    model, selection = train_aspect_extractor(
        dev,
        weak_files=weak or [],
        exclude=exclude or [],
        folds=folds,
        cache_dir=settings.cache_dir / "embeddings",
        threads=threads,
    )
    target = out or default_model_path()
    model.save(target)
    target.with_name(target.name + ".selection.json").write_text(json.dumps(selection, indent=2) + "\n")
    console.print_json(json.dumps(selection["chosen"]))
    console.print(f"[green]✓[/] model written to {target} ({model.n_train_})")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``reviews aspects`` and ``reviews train-aspects`` to the shared group, ``bench aspects`` to ``bench_app``."""
    del app
    reviews_app.command("aspects")(aspects)
    reviews_app.command("train-aspects")(train_aspects)
    bench_app.command("aspects")(bench_aspects)
