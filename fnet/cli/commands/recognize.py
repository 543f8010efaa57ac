"""`fnet recognize`: every face in every photo, named from the people gallery or unknown."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from fnet.cli.app import command
from fnet.cli.feedback import stage_progress
from fnet.cli.options import DetectorOption, DeviceOption, GalleryOption, JsonOption, MinFaceOption, gallery_path
from fnet.cli.output import note, result
from fnet.people.identify import DEFAULT_FPIR


@command
def recognize(
    photos: Annotated[Path, typer.Argument(help="A photo, or a folder of photos.")],
    gallery: GalleryOption = None,
    draw: Annotated[Path | None, typer.Option("--draw", help="Write the photo (a folder: each photo) with boxes and names, as JPEG.")] = None,
    fpir: Annotated[float, typer.Option(help="The share of strangers allowed a name; the threshold is chosen for it from the gallery (see docs/people.md).")] = DEFAULT_FPIR,
    threshold: Annotated[float | None, typer.Option(help="A squared L2 threshold instead (no calibration: strangers may be named).")] = None,
    detector: DetectorOption = "mtcnn",
    min_face: MinFaceOption = 20,
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Name every face in photos against the people gallery; strangers are refused by default.

    Each face gets its nearest enrolled person when it lies within the gallery's threshold,
    else "unknown", with the distance and the margin to the second-nearest person. The
    threshold is chosen so that about 1% of strangers (--fpir) would get a name, and the
    output says which threshold was used and why. Exit code 1 when a photo could not be read.

    Example: fnet recognize party/ --gallery family.db --draw named/
    """
    from fnet.io.drawing import draw_faces
    from fnet.people.gallery import Gallery
    from fnet.pipeline import load_pipeline
    from fnet.pipeline.people import open_identifier, photo_list, recognise_photos

    paths, gallery = photo_list(photos), gallery_path(gallery)
    with Gallery.open(gallery) as g:
        model = g.model
    pipeline = load_pipeline(model, detector=detector, device=device, min_face=min_face)
    identifier, chosen = open_identifier(gallery, pipeline, threshold, fpir)
    note(f"threshold {chosen.why}")
    found = []
    with stage_progress("photos", "recognising") as feedback:
        for photo in recognise_photos(pipeline, paths, identifier, chosen.value, draw is not None, feedback.on_start, feedback.on_item):
            found.append(photo)
            if draw is not None:
                target = draw if not photos.is_dir() else draw / photo.path.relative_to(photos).with_suffix(".jpg")
                labels = [f"{f.identity.name or 'unknown'} {f.identity.distance:.2f}" for f in photo.faces]
                draw_faces(photo.image, [f.face.box for f in photo.faces], labels, [f.identity.name is not None for f in photo.faces], target)
                photo.image = None  # drawn: the pixels go
    table = Table(title=Text(f"{len(found)} photos, threshold {chosen.value:.3f}"), title_justify="left")
    for column in ("photo", "face", "name", "distance", "margin", "box"):
        table.add_column(column)
    for photo in found:
        for f in photo.faces:
            i = f.identity
            table.add_row(Text(str(photo.path)), str(f.number), Text(i.name) if i.name else Text("unknown", style="yellow"),
                          f"{i.distance:.3f}", "-" if i.runner_up is None else f"{i.margin:.3f}", ", ".join(f"{v:.0f}" for v in f.face.box))
    result({"threshold": chosen.to_dict(), "gallery": str(gallery), "photos": [p.to_dict() for p in found]}, table)
    if feedback.errors:
        raise typer.Exit(1)
