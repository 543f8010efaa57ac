"""The `fnet` command line: parsing and printing only; the work is done by fnet.pipeline.

    app.py       the Typer app, root options, main() and run() (the console script)
    errors.py    the one error map: exceptions -> exit codes
    output.py    results, --json, one-line errors, progress bars
    options.py   options shared by several commands
    commands/    one module per command
"""

from fnet.cli import commands  # noqa: F401 (registers the commands)
from fnet.cli.app import app, main, run

__all__ = ["app", "main", "run"]
