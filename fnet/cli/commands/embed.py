"""`fnet embed`: a folder tree of faces (or photos) -> one HDF5 embeddings store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from fnet.cli.app import command
from fnet.cli.feedback import remind_faceless, stage_progress
from fnet.cli.options import (
    DetectBatchOption,
    DetectorOption,
    DetectSizeOption,
    DeviceOption,
    FallbackOption,
    FlipOption,
    JsonOption,
    ModelOption,
    PrecisionOption,
    RetryFacelessOption,
    check_folder,
    check_output,
    fallback_fraction,
)
from fnet.cli.output import result
from fnet.errors import SettingsError
from fnet.face import DETECT_SIZE


@command
def embed(
    folder: Annotated[Path, typer.Argument(help="Aligned crops (from `fnet align`), or photos with --align.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HDF5 store to create or extend.")],
    align_photos: Annotated[bool, typer.Option("--align", help="FOLDER holds photos: detect and align each (one face per photo) first.")] = False,
    half: Annotated[bool, typer.Option("--half", help="Store float16 embeddings (half the size; distances change by < 1e-3).")] = False,
    flip: FlipOption = False,
    shard: Annotated[str, typer.Option(help="i/n: embed only every n-th file from the i-th, for n parallel processes; join with `fnet merge`.")] = "0/1",
    batch_size: Annotated[int, typer.Option(min=1, help="Faces per forward pass.")] = 64,
    detector: DetectorOption = "mtcnn",
    detect_batch: DetectBatchOption = 8,
    detect_size: DetectSizeOption = DETECT_SIZE,
    workers: Annotated[int, typer.Option(min=1, help="Threads decoding images ahead of the model.")] = 2,
    retry_failed: RetryFacelessOption = False,
    fallback: FallbackOption = "none",
    model: ModelOption = "facenet-casia",
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Embed a folder tree of faces into one HDF5 file.

    Stores each face's embedding, path, identity label (its top folder) and box. Running it
    again adds only new files; an interrupted run resumes where it stopped and gives the
    same file as an uninterrupted one. A store holds one model's embeddings: another model
    is refused. With --align, photos without a face are remembered in the store and not
    detected again (--retry-failed does). Exit code 1 when some files could not be embedded
    or held no face (in this run or an earlier one).

    Examples: fnet embed aligned/ -o faces.h5;  fnet embed photos/ -o faces.h5 --align
    """
    from fnet.pipeline import load_pipeline
    from fnet.pipeline.embed import embed_tree, parse_shard

    check_folder(folder)
    check_output(output, folder=False)
    shard_spec = parse_shard(shard)
    fallback_crop = fallback_fraction(fallback)
    if fallback_crop and not align_photos:
        raise SettingsError("--fallback applies to photos: add --align")
    pipeline = load_pipeline(
        model, detector=detector, device=device, precision=precision, detect_size=detect_size, batch_size=batch_size
    )
    start = time.perf_counter()
    with stage_progress("photos" if align_photos else "faces", "embedding") as feedback:
        report = embed_tree(
            folder, output, pipeline.embedder, pipeline.aligner() if align_photos else None, shard=shard_spec, half=half,
            flip=flip, batch_size=batch_size, workers=workers, retry_failed=retry_failed, detect_batch=detect_batch,
            fallback_crop=fallback_crop, on_start=feedback.on_start, on_item=feedback.on_item,
        )
    remind_faceless(report)
    seconds = time.perf_counter() - start
    result({**vars(report), "seconds": round(seconds, 2), "output": str(output)}, (
        f"Embedded {report.faces} faces in {seconds:.1f} s ({report.faces / max(seconds, 1e-9):.1f} faces/s); "
        f"{report.skipped} already stored, {report.errors} unreadable, {report.no_face} without a face"
        + (f", {report.fallbacks} without a detected face embedded whole (--fallback)" if report.fallbacks else "")
        + f". {output} holds {report.total} faces."
    ))
    if report.failed:
        raise typer.Exit(1)
