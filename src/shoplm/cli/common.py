"""What every ``shoplm`` command shares: the console, settings, progress bars and the one error handler.

Errors in the input exit with status 2 and a message naming the file, line and field; other
shoplm failures exit with status 1; nothing already stored is lost either way. Every command
module wraps its commands in :func:`handle_errors`, so this is the one place that maps errors
to exit statuses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from shoplm.config import Settings
from shoplm.errors import ConflictError, InputError, NotFoundError, ShoplmError

if TYPE_CHECKING:
    from shoplm.store import Store

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # a file path must not be cut in two

F = TypeVar("F", bound=Callable[..., Any])

DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where data, models and caches live (SHOPLM_DATA_DIR).")
]


def handle_errors(function: F) -> F:
    """Turn shoplm errors into a one-line message and an exit status instead of a traceback.

    :class:`~shoplm.errors.InputError` (bad input), :class:`~shoplm.errors.NotFoundError`
    (an unknown user, results not computed yet) and :class:`~shoplm.errors.ConflictError` (a spent
    privacy budget) exit 2; any other
    :class:`~shoplm.errors.ShoplmError` (and a ``ValueError`` a library raises for an option it
    refuses) exits 1; Ctrl-C exits 130.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (InputError, NotFoundError, ConflictError) as exc:
            errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None
        except (ShoplmError, ValueError, NotImplementedError) as exc:
            errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            errors.print("interrupted: what was committed stays stored; re-run to continue")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def load_settings(data_dir: Path | None) -> Settings:
    """The settings, with ``--data-dir`` over the environment and ``shoplm.toml``."""
    try:
        return Settings(data_dir=data_dir) if data_dir else Settings()
    except (ValueError, FileNotFoundError) as exc:
        raise ShoplmError(f"invalid settings: {exc}") from exc


def open_store(settings: Settings) -> Store:
    from shoplm.store import Store

    return Store.open(settings.database_url)


@contextmanager
def progress_bar(description: str, total: int | None = None, *, unit: str = "") -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar; yields ``update(done, total)``. Quiet when output is not a terminal."""
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if unit != "bytes" else TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(description, total=total)

        def update(done: int, new_total: int) -> None:
            progress.update(task, completed=done, total=new_total)

        yield update
