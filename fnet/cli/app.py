"""The Typer application, its root options, and ``main`` (the ``fnet`` entry point)."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from fnet import __version__
from fnet.cli.errors import reported
from fnet.cli.output import console, fail, json_mode

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


M_ARENA_MAX = -8  # glibc's mallopt parameter


def _cap_malloc_arenas(arenas: int = 1) -> None:
    """At most `arenas` glibc heaps, unless $MALLOC_ARENA_MAX says otherwise.

    glibc gives each allocating thread its own heap (up to 8 per core), and photo buffers of
    0.1-40 MB freed across the decoding threads fragment them. `fnet align` over 5,000 photos
    peaked at 1.73 GiB with glibc's default, 1.56 with two heaps, 1.30 with one, at the same
    speed (bench/memory.py, docs/speed.md). Set before any thread starts.
    """
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):  # not glibc (musl has no arenas to cap)
        pass


KERNEL_CACHE = "64"  # oneDNN kernels kept by commands that stream photos


def _bound_kernel_cache(argv: list[str]) -> None:
    """Keep 64 compiled oneDNN kernels instead of 1,024 in commands that stream photos.

    oneDNN compiles a kernel per layer and input shape, and a photo library brings the
    detector a new shape with nearly every photo size: a full cache pins a thousand
    allocations across the heap. With 64, `fnet align` over 5,000 photos peaked at 0.96
    instead of 1.22 GiB at the same speed; `fnet embed --align` over 1,000 took 3-5% longer.
    `fnet serve` (a batch of any size 1-16) and `fnet train` keep the default; so does
    anyone who sets $ONEDNN_PRIMITIVE_CACHE_CAPACITY. Read when torch first runs a network.
    """
    if not {"serve", "train"} & set(argv):
        os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", KERNEL_CACHE)


def main() -> None:
    """The `fnet` entry point. Under --json, usage errors (unknown option, bad value) answer in JSON too."""
    # OpenMP's threads sleep rather than spin while they wait (read once, when torch loads):
    # beside other busy processes a whole `fnet embed --align` ran 1.2-1.7x as fast, idle 0-10%
    # slower (bench/threads.py, docs/speed.md). OMP_WAIT_POLICY=ACTIVE brings spinning back.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _cap_malloc_arenas()
    _bound_kernel_cache(sys.argv[1:])
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
