"""``shoplm reviews reply REVIEW_ID`` and ``shoplm bench replies``: review reply drafts and their benchmark.

Example:
    $ shoplm reviews reply R000003
    $ shoplm reviews reply R000003 --backend template --json
    $ shoplm bench replies --seed 7 --out benchmarks/replies/replies.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shoplm.cli.common import DataDirOption, console, handle_errors, load_settings, open_store
from shoplm.cli.groups import reviews_app

__all__ = ["register"]


@handle_errors
def reply(
    review_id: Annotated[str, typer.Argument(help="the stored review's id")],
    backend: Annotated[
        str | None,
        typer.Option(
            help="template, or llm (the configured model: generator.kind openai / llama_cpp); default: as configured"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole result as JSON")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Draft a reply to a stored review, grounded in its order and the shop's policies, and check it."""
    from shoplm.app.review_replies import ReviewReplies

    settings = load_settings(data_dir)
    with open_store(settings) as store:
        result = ReviewReplies(store, settings).draft_reply(review_id, backend=backend)
    if as_json:
        console.print_json(json.dumps(result, ensure_ascii=False))
        return
    if result["skipped"]:
        console.print(f"[yellow]skipped[/]: {result['reason']}")
        return
    badge = "[green]faithful[/]" if result["faithful"] else "[red]flagged[/]"
    console.print(f"{badge} · {result['outcome']} · backend {result['backend']} · reply in {result['language']}")
    console.print(result["draft"], markup=False, highlight=False)
    if result["unsupported"]:
        console.print(f"[red]unsupported claims of the model's draft[/]: {', '.join(result['unsupported'])}")
    if result["reason"]:
        console.print(f"[dim]{result['reason']}[/]", markup=True, highlight=False)
    if result["notes"]:
        console.print(f"[dim]notes: {', '.join(result['notes'])}[/]")


@handle_errors
def bench_replies(
    data: Annotated[Path | None, typer.Option("--data", help="a demo store's directory (shoplm demo)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the demo store generated when --data is not given")] = 7,
    n: Annotated[int, typer.Option("--n", help="reviews drafted (stratified by language and rating)")] = 200,
    endpoint: Annotated[
        str | None, typer.Option(help="an OpenAI-compatible endpoint (…/v1) drafting beside the templates")
    ] = None,
    model: Annotated[str, typer.Option(help="the endpoint's model name")] = "",
    gguf: Annotated[Path | None, typer.Option(help="a local GGUF model (needs llama-cpp-python)")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the report as JSON here (and a PNG beside it)")
    ] = None,
) -> None:
    """Draft replies for demo reviews (faithfulness, language, politeness, length per backend) and
    measure the faithfulness checker on injected errors beside a naive any-number detector."""
    from shoplm.app.review_replies_bench import run_replies_benchmark

    report = run_replies_benchmark(data=data, seed=seed, n=n, endpoint=endpoint, model=model, gguf=gguf, out=out)
    console.print_json(json.dumps({"backends": report["backends"], "checker": report["checker"]["summary"]}))
    if out:
        console.print(f"[green]✓[/] report written to {out}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``reviews reply`` to the shared reviews group and ``bench replies`` to ``bench_app``."""
    del app
    reviews_app.command("reply")(reply)
    bench_app.command("replies")(bench_replies)
