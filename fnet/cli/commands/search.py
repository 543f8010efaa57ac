"""`fnet search`: recognise the faces of photos against an index of known faces."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from fnet.cli.app import command
from fnet.cli.feedback import remind_faceless, stage_progress
from fnet.cli.options import DetectorOption, DeviceOption, JsonOption
from fnet.cli.output import note, result
from fnet.errors import SettingsError


@command
def search(
    query: Annotated[Path, typer.Argument(help="A photo, or a folder of photos, to recognise.")],
    index_path: Annotated[Path, typer.Option("--index", "-i", help="An index made by `fnet index`.")],
    k: Annotated[int, typer.Option("-k", help="Neighbours to retrieve and let vote.")] = 5,
    threshold: Annotated[float | None, typer.Option(help=(
        "Farther than this (squared L2) is not a match (default: the model's, right when every query is someone "
        "enrolled). Where strangers come, go stricter as the gallery grows: on LFW 0.95 / 0.80 / 0.65 name about 1% "
        "of strangers with 10 / 100 / 1,000 people enrolled (docs/search.md). See also --fpir."
    ))] = None,
    fpir: Annotated[float | None, typer.Option(help=(
        "Instead of --threshold: the share of strangers allowed a name, e.g. 0.01. The threshold is estimated on the "
        "gallery itself (each enrolled person plays a stranger to the others); needs labels and at least 1/FPIR people."
    ))] = None,
    aligned: Annotated[bool, typer.Option("--aligned", help="Queries are aligned crops already.")] = False,
    store: Annotated[Path | None, typer.Option(help="The index's HDF5 store, if it moved since indexing.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Query model (default: the index's; another one is refused).")] = None,
    detector: DetectorOption = "mtcnn",
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Recognise faces: the nearest stored faces vote for an identity, or say unknown.

    Each query photo's face (the most central large one) is aligned and embedded with the
    index's model, photos in batches with a progress bar; its k nearest stored faces within
    the threshold vote, nearer ones weighing more. Exit code 1 when a query could not be
    read or had no face.

    Example: fnet search visitor.jpg --index staff.faiss --fpir 0.01
    """
    from fnet.pipeline import load_pipeline
    from fnet.pipeline.search import open_gallery, search_photos

    if threshold is not None and fpir is not None:
        raise SettingsError("--threshold and --fpir both set the threshold: pass one")
    gallery = open_gallery(index_path, store, fpir)
    if gallery.stranger:
        s = gallery.stranger
        note(f"threshold {s.threshold:.3f}: {s.fpir:.2%} of {s.people:,} enrolled people, playing strangers to the others, would get a name at it")
    gallery.check_model(model or gallery.model)
    pipeline = load_pipeline(gallery.model, detector=detector, device=device)
    with stage_progress("photos", "recognising") as feedback:
        run = search_photos(pipeline, query, gallery, k, threshold, aligned, feedback.on_start, feedback.on_item)
    remind_faceless(run.report)
    table = Table(title=Text(f"{index_path} ({gallery.meta['rows']} faces, {gallery.meta['kind']})"), title_justify="left")
    for column in ("query", "identity", "vote", "nearest", "distance"):
        table.add_column(column)
    for q, r in zip(run.queries, run.results):  # names and paths are never markup
        nearest = r.matches[0] if r.matches else None
        table.add_row(
            Text(q), Text(r.identity) if r.known else Text("unknown", style="yellow"), f"{r.score:.0%}",
            Text(nearest.path) if nearest else "-", f"{nearest.distance:.3f}" if nearest else "-",
        )
    result([{"query": q, **r.to_dict()} for q, r in zip(run.queries, run.results)], table)
    if run.report.failed:
        raise typer.Exit(1)
