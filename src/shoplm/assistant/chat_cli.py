"""``shoplm chat``: talk to the customer-service assistant in the terminal, or script it from stdin.

Interactive when stdin is a terminal (rich prompt, replies with intent and actions); otherwise
one customer message per input line, one reply per output line (``--json``: the whole turn as
a JSON object), so conversations can be scripted and tested.

Example:
    >>> import typer
    >>> app = typer.Typer()
    >>> register_chat(app)   # the lead mounts it on the main ``shoplm`` app
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape


def register_chat(app: typer.Typer) -> None:
    """Add the ``chat`` command to ``app``.

    Example:
        >>> import typer; app = typer.Typer(); register_chat(app)
    """

    @app.command("chat")
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
        data_dir: Annotated[
            Path | None, typer.Option("--data-dir", help="Where data, models and caches live (SHOPLM_DATA_DIR).")
        ] = None,
    ) -> None:
        """Chat with the customer-service assistant (stdin lines when piped)."""
        from shoplm.assistant.dialogue import Assistant
        from shoplm.config import Settings
        from shoplm.errors import ShoplmError
        from shoplm.store import Store

        errors = Console(stderr=True)
        try:
            settings = Settings(data_dir=data_dir) if data_dir else Settings()
        except (ValueError, FileNotFoundError) as exc:
            errors.print(f"[bold red]error:[/] invalid settings: {escape(str(exc))}")
            raise typer.Exit(1) from None
        try:
            store = Store.open(settings.database_url)
            bot = Assistant(store, settings, model_path=model, sentiment_path=sentiment_model, policies_dir=policies)
        except ShoplmError as exc:
            errors.print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(1) from None
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

    console = Console()
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
