"""`fnet cluster`: group faces by person, incrementally."""

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
    JsonOption,
    MinFaceOption,
    ModelOption,
    RetryFacelessOption,
    check_output,
)
from fnet.cli.output import error, result
from fnet.face import DETECT_SIZE


@command
def cluster(
    source: Annotated[Path, typer.Argument(help="A folder of photos (every face is found), aligned crops with --aligned, or an HDF5 store from `fnet embed`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for clusters.csv, clusters.json, report.html (and faces.h5 when SOURCE is a folder).")] = Path("fnet-clusters"),
    method: Annotated[str | None, typer.Option(help="whispers (default: k-NN graph + Chinese whispers, scales to millions), components, agglomerative, kmeans or hdbscan.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Squared L2 distance under which two faces may be one person (default: the model's verification threshold).")] = None,
    k: Annotated[int | None, typer.Option("-k", help="Neighbours per face in the graph (whispers, components); 50 when not given.")] = None,
    clusters: Annotated[int | None, typer.Option("--clusters", help="Number of clusters, for --method kmeans.")] = None,
    min_size: Annotated[int | None, typer.Option(help="Smallest cluster, for --method hdbscan; 2 when not given.")] = None,
    recluster: Annotated[bool, typer.Option("--recluster", help="Group every face again instead of placing only the faces new since the last run.")] = False,
    folders: Annotated[str, typer.Option(help="Also write people/person-NNNN/ folders: none, links (symbolic links to the photos) or crops (face JPEGs).")] = "none",
    sheet: Annotated[bool, typer.Option(help="Write report.html, a contact sheet with one row of faces per cluster.")] = True,
    sheet_clusters: Annotated[int, typer.Option(help="Largest clusters shown on the contact sheet.")] = 200,
    aligned: Annotated[bool, typer.Option("--aligned", help="SOURCE holds aligned face crops (from `fnet align`): no detection.")] = False,
    detector: DetectorOption = "mtcnn",
    min_face: MinFaceOption = 20,
    detect_size: DetectSizeOption = DETECT_SIZE,
    detect_batch: DetectBatchOption = 8,
    retry_failed: RetryFacelessOption = False,
    model: ModelOption = "facenet-casia",
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Group faces by person.

    From a folder of photos it detects, aligns and embeds every face into OUTPUT/faces.h5,
    then groups them; from a store it groups the stored faces. Run it again after adding
    photos and only the new faces are placed: they join the clusters of their close
    neighbours or start new ones, and cluster ids already handed out stay the same.
    Photos without a face are remembered and not detected again (--retry-failed does).
    Exit code 1 when some photos could not be read or held no face (in this run or an
    earlier one), 2 on bad options.

    Examples: fnet cluster photos/ -o people/ --folders links;  fnet cluster faces.h5 -o people/ --method agglomerative
    """
    from fnet.pipeline import load_pipeline
    from fnet.pipeline.cluster import cluster_photos

    check_output(output, folder=True)
    start = time.perf_counter()
    pipeline = load_pipeline(model, detector=detector, device=device, min_face=min_face, detect_size=detect_size)
    chosen = {"method": method, "threshold": threshold, "k": k, "n_clusters": clusters, "min_size": min_size}
    with stage_progress("photos", "embedding", then="neighbours") as feedback:
        run = cluster_photos(
            pipeline, source, output, chosen, recluster, folders, sheet, sheet_clusters, aligned, retry_failed, detect_batch,
            feedback.on_start, feedback.on_item, feedback.on_progress, on_problem=error,
        )
    remind_faceless(run.embedded)
    report, seconds = run.report, round(time.perf_counter() - start, 2)
    placed = (
        f"placed {report.new_faces} new faces ({report.joined} joined existing clusters)" if report.incremental
        else f"grouped {report.faces} faces"
    )
    result({**vars(report), "seconds": seconds, "output": str(output), "written": run.written}, (
        f"{output}: {placed}; {report.clusters} clusters, {report.clusters - report.singletons} with more than one face, "
        f"largest {report.largest}, {report.singletons} faces seen once ({report.settings['method']}, threshold "
        f"{report.settings['threshold']:.2f}) in {seconds:.1f} s. Wrote {', '.join(run.written)}."
    ))
    if run.failed:
        raise typer.Exit(1)
