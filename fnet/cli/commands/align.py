"""`fnet align`: detect and align the faces of every photo in a folder tree."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from fnet.cli.app import command
from fnet.cli.options import (
    DetectorOption,
    DetectSizeOption,
    DeviceOption,
    FallbackOption,
    JsonOption,
    MarginOption,
    MinFaceOption,
    ModelOption,
    ModeOption,
    check_folder,
    check_output,
    fallback_fraction,
)
from fnet.cli.output import error, progress, result, starter, warn
from fnet.face import DETECT_SIZE


@command
def align(
    photos: Annotated[Path, typer.Argument(help="A folder of photos, searched recursively (identity sub-folders are kept).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where the aligned crops and manifest.jsonl go.")],
    mode: ModeOption = "auto",
    margin: MarginOption = 32,
    size: Annotated[int | None, typer.Option(min=16, help="Crop size in pixels (default: the model's input size).")] = None,
    model: ModelOption = "facenet-casia",  # its alignment and input size are the crops' (--mode auto, --size)
    all_faces: Annotated[bool, typer.Option("--all-faces", help="Keep every face, as IMG_face0.png, IMG_face1.png, ... numbered left to right, not just one per photo.")] = False,
    pick: Annotated[str, typer.Option(help="Which face to keep: center (large and central, FaceNet's choice) or largest.")] = "center",
    detector: DetectorOption = "mtcnn",
    min_face: MinFaceOption = 20,
    detect_size: DetectSizeOption = DETECT_SIZE,
    batch_size: Annotated[int, typer.Option(min=1, help="Photos per detector batch.")] = 8,
    workers: Annotated[int, typer.Option(min=1, help="Threads decoding photos ahead of the detector (with the detector on the CPU, photos under 1 MP are decoded in turn: faster there).")] = 2,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Redo photos that gave no crop in an earlier run.")] = False,
    fallback: FallbackOption = "none",
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Detect and align the faces of every photo in a folder tree.

    PHOTOS/person/img.jpg becomes OUTPUT/person/img.png (size x size). OUTPUT/manifest.jsonl
    records for each photo its box, landmarks and detector confidence, or why it has no
    crop (no face, unreadable file). Rerunning skips photos already done, so an interrupted
    run resumes. Exit code: 0 when every photo gave a face, 1 when some did not (this run
    or an earlier one).

    Example: fnet align lfw/ -o aligned/ --model dlib-resnet   (dlib's chips, for `fnet embed aligned/ --model dlib-resnet`)
    """
    from fnet.io.manifest import MANIFEST
    from fnet.pipeline import load_pipeline
    from fnet.pipeline.align import align_tree

    check_folder(photos)
    check_output(output, folder=True)
    fallback_crop = fallback_fraction(fallback)
    pipeline = load_pipeline(
        model, detector=detector, device=device, min_face=min_face, detect_size=detect_size, mode=mode, margin=margin,
        size=size, pick="all" if all_faces else pick,
    )
    start, faces_found = time.perf_counter(), 0
    with progress("photos") as bar:
        task = bar.add_task("aligning", total=None, start=False)

        def on_image(records: list[dict]) -> None:
            nonlocal faces_found
            first = records[0]
            if first["status"] == "error":
                error(f"{photos / first['source']}: {first['reason']}")
            elif first["status"] == "no_face":
                warn(f"{photos / first['source']}: no face found")
            else:
                faces_found += len(records)
            bar.update(task, advance=1, description=f"aligning: {faces_found} faces")

        report = align_tree(
            photos, output, pipeline.aligner(), batch_size=batch_size, workers=workers, on_image=on_image,
            on_start=starter(bar, task), retry_failed=retry_failed, fallback_crop=fallback_crop,
        )
    seconds = time.perf_counter() - start
    rate = report.images / seconds if seconds > 0 else 0.0
    result({**vars(report), "seconds": round(seconds, 2), "manifest": str(output / MANIFEST)}, (
        f"{report.faces} faces from {report.images} photos in {seconds:.1f} s ({rate:.1f} photos/s); "
        f"{report.no_face} without a face, {report.errors} unreadable, {report.skipped} already done"
        + (f" ({report.failed_before} of them without a crop: --retry-failed redoes them)" if report.failed_before else "")
        + (f"; {report.fallbacks} without a detected face cropped whole (--fallback)" if report.fallbacks else "")
        + f". Manifest: {output / MANIFEST}"
    ))
    if report.failed:
        raise typer.Exit(1)
