"""The Typer application, its root options, ``main``, and ``run`` (the ``fnet`` console script)."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from fnet import __version__
from fnet.cli.errors import reported
from fnet.cli.output import console, fail, json_mode
from fnet.cli.process import prepare

app = typer.Typer(
    name="fnet",
    help="Face recognition with FaceNet embeddings: detect and align faces, embed them, verify, search and cluster.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: flags read as flags, paragraphs reflow to the terminal width
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


people_app = typer.Typer(
    help="Named people: enrol them from photos or named clusters, then `fnet recognize` finds them in any photo.",
    no_args_is_help=True, rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(people_app, name="people")


def command(function: Callable[..., Any] | None = None, *, group: typer.Typer = app) -> Any:
    """Register a command under its function's name (on `group`: the root, or `fnet people`), with the error map applied."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        group.command(function.__name__.rstrip("_"))(reported(function))
        return function

    return register(function) if function is not None else register


def _version(value: bool) -> None:
    if value:
        console.print(f"fnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help=(
        "CPU threads for the networks (default: the CPUs this process may use, affinity and container quota "
        "included; or $FNET_THREADS). On a machine busy with other work, 1 is often faster."
    ))] = None,
) -> None:
    """Face recognition with FaceNet embeddings."""
    json_mode(False)  # a command's --json sets it again
    if threads is not None:
        os.environ["FNET_THREADS"] = str(threads)


def main() -> None:
    """The `fnet` entry point. Under --json, usage errors (unknown option, bad value) answer in JSON too."""
    prepare(sys.argv[1:])  # allocator, OpenMP, heaps, kernel cache: before any thread or torch
    import fnet.cli.commands  # noqa: F401 (registers every command)

    if "--json" not in sys.argv[1:]:
        app()
        return
    try:
        code = app(standalone_mode=False)
    except typer.Exit as stop:
        code = stop.exit_code
    except Exception as err:
        if not hasattr(err, "format_message"):  # not a usage error: a real bug, keep its traceback
            raise
        json_mode(True)
        try:
            fail(err.format_message(), getattr(err, "exit_code", 2))
        except typer.Exit as stop:
            code = stop.exit_code
    sys.exit(code or 0)


def run() -> None:
    """The `fnet` console script: main(), then out without tearing the interpreter down.

    Once torch is loaded, Python's teardown (every module and object freed one by one) takes
    0.2 s, a tenth of a cold `fnet verify`. The atexit handlers run first (Ray, logging,
    temporary folders) and output is flushed; every file fnet writes is closed by then. A command that
    fails with a traceback leaves the ordinary way. In-process callers use main().
    """
    try:
        main()
        code = 0
    except SystemExit as stop:
        if isinstance(stop.code, str):  # sys.exit("message"): printed, exit code 1, as Python does
            print(stop.code, file=sys.stderr)
        code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
    atexit._run_exitfuncs()  # what the interpreter's exit would run; os._exit skips it
    for stream in (sys.stdout, sys.stderr):  # after the handlers, which may print too
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (fnet ... | head): nothing to flush to
            stream.flush()
    os._exit(code)
