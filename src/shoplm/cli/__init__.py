"""The ``shoplm`` command line: ``shoplm --help`` lists every command.

Example:
    >>> from typer.testing import CliRunner
    >>> CliRunner().invoke(app, ["--help"]).exit_code
    0
"""

from shoplm.cli.main import app, main

__all__ = ["app", "main"]
