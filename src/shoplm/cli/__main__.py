"""``python -m shoplm.cli``: the same as the ``shoplm`` command."""

from shoplm.cli.main import app

app(prog_name="shoplm")
