"""`fnet embed`: a folder tree of faces (or photos) -> one HDF5 embeddings store."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Annotated

import typer

from fnet.cli.app import command
from fnet.cli.feedback import remind_faceless, stage_progress
from fnet.cli.options import (
    ActorCpusOption,
    ActorGpusOption,
    ActorsOption,
    DetectBatchOption,
    DetectorOption,
    DetectSizeOption,
    DeviceOption,
    FallbackOption,
    FlipOption,
    JsonOption,
    ModelOption,
    PrecisionOption,
    RayBatchOption,
    RayOption,
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
    batch_size: Annotated[int | None, typer.Option(min=1, show_default=False,
                                                   help="Faces per forward pass [default: 16 on a CPU, 64 on a GPU].")] = None,
    detector: DetectorOption = "mtcnn",
    detect_batch: DetectBatchOption = 8,
    detect_size: DetectSizeOption = DETECT_SIZE,
    workers: Annotated[int, typer.Option(min=1, help="Threads decoding images ahead of the model.")] = 2,
    retry_failed: RetryFacelessOption = False,
    fallback: FallbackOption = "none",
    model: ModelOption = "facenet-casia",
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    ray: RayOption = None,
    actors: ActorsOption = 0,
    actor_cpus: ActorCpusOption = 1.0,
    actor_gpus: ActorGpusOption = 0.0,
    ray_batch: RayBatchOption = 64,
    json_output: JsonOption = False,
) -> None:
    """Embed a folder tree of faces into one HDF5 file.

    Stores each face's embedding, path, identity label (its top folder) and box. Running it
    again adds only new files; an interrupted run resumes where it stopped and gives the
    same file as an uninterrupted one. A store holds one model's embeddings: another model
    is refused. With --align, photos without a face are remembered in the store and not
    detected again (--retry-failed does). Exit code 1 when some files could not be embedded
    or held no face (in this run or an earlier one).

    With --ray, Ray Data actors on a cluster do the aligning and embedding; the store is the
    same as without (docs/scale.md).

    Examples: fnet embed aligned/ -o faces.h5;  fnet embed photos/ -o faces.h5 --align;
    fnet embed photos/ -o faces.h5 --align --ray auto --actor-gpus 1
    """
    from fnet.pipeline.align import check_cut_fits
    from fnet.pipeline.build import Pipeline, PipelineSettings
    from fnet.pipeline.embed import LocalProducer, embed_tree, parse_shard
    from fnet.scale.cluster import connected
    from fnet.scale.ray_embed import RayProducer, RaySettings

    check_folder(folder)
    check_output(output, folder=False)
    shard_spec = parse_shard(shard)
    fallback_crop = fallback_fraction(fallback)
    if fallback_crop and not align_photos:
        raise SettingsError("--fallback applies to photos: add --align")
    settings = PipelineSettings(model, detector=detector, device=device, precision=precision, detect_size=detect_size,
                                batch_size=batch_size)
    pipeline = Pipeline(settings)  # the model's metadata now; its weights when the local producer first embeds
    if not align_photos:  # crops from `fnet align`: cut the way this model embeds faces?
        check_cut_fits(folder, pipeline.mode, pipeline.crop_size, pipeline.info.name)
    start = time.perf_counter()
    with connected(ray) if ray else contextlib.nullcontext():
        if ray:
            producer = RayProducer(settings, RaySettings(actors, actor_cpus, actor_gpus, ray_batch), align_photos, flip, detect_batch, fallback_crop)
        else:
            producer = LocalProducer(pipeline.embedder, pipeline.aligner() if align_photos else None, flip, workers=workers,
                                     detect_batch=detect_batch, fallback_crop=fallback_crop)
        with stage_progress("photos" if align_photos else "faces", "embedding") as feedback:
            report = embed_tree(folder, output, None, producer=producer, shard=shard_spec, half=half, retry_failed=retry_failed,
                                on_start=feedback.on_start, on_item=feedback.on_item)
    remind_faceless(report)
    seconds = time.perf_counter() - start
    result({**vars(report), "seconds": round(seconds, 2), "output": str(output)}, (
        f"Embedded {report.faces} faces in {seconds:.1f} s ({report.faces / max(seconds, 1e-9):.1f} faces/s); "
        f"{report.skipped} already stored, {report.errors} unreadable, {report.no_face} without a face"
        + (f", {report.replaced} changed since they were embedded (embedded again)" if report.replaced else "")
        + (f", {report.fallbacks} without a detected face embedded whole (--fallback)" if report.fallbacks else "")
        + f". {output} holds {report.total} faces."
    ))
    if report.failed:
        raise typer.Exit(1)
