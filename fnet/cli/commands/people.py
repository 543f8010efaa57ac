"""`fnet people enrol | add | name`: put people into the gallery, from photos or from named clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fnet.cli.app import command, people_app
from fnet.cli.feedback import stage_progress
from fnet.cli.options import DeviceOption, GalleryOption, JsonOption, ModelOption, check_folder, gallery_path
from fnet.cli.output import result
from fnet.errors import SettingsError

MinSizeOption = Annotated[float, typer.Option("--min-size", min=0, help="Faces narrower than this (pixels) are not enrolled: background faces must not become people.")]
MinScoreOption = Annotated[float, typer.Option("--min-score", min=0, max=1, help="Nor faces the detector is less sure of than this.")]


def _summary(report, gallery: Path) -> None:
    people = ", ".join(f"{name} ({count})" for name, count in report.people.items()) or "nobody new"
    result({**vars(report), "faces": report.faces, "gallery": str(gallery)}, (
        f"Enrolled {report.faces} faces: {people}. {report.skipped} enrolled already, {report.below_quality} below the "
        f"quality floor, {report.no_face} without a face, {report.errors} unreadable. Gallery: {gallery}"
    ))
    if report.failed:
        raise typer.Exit(1)


def _enrol(pairs, gallery, model, device, min_size, min_score, source: str) -> None:
    from fnet.pipeline import load_pipeline
    from fnet.pipeline.people import Quality, enrol_photos

    pipeline = load_pipeline(model, device=device)
    with stage_progress("photos", "enrolling") as feedback:
        report = enrol_photos(pipeline, gallery, pairs, Quality(min_size, min_score), source, feedback.on_start, feedback.on_item)
    _summary(report, gallery)


@command(group=people_app)
def enrol(
    folder: Annotated[Path, typer.Argument(help="Photos in one folder per person: FOLDER/NAME/photo.jpg.")],
    gallery: GalleryOption = None,
    min_size: MinSizeOption = 40, min_score: MinScoreOption = 0.85,
    model: ModelOption = "facenet-casia", device: DeviceOption = "auto", json_output: JsonOption = False,
) -> None:
    """Enrol people from a folder tree: each photo's main face joins the person its folder names.

    The gallery is made on first use, for the model given. Photos enrolled before are skipped,
    so an interrupted run is simply run again; the enrolment commits as a whole.

    Example: fnet people enrol staff/ --gallery staff.db
    """
    from fnet.pipeline.people import tree_photos

    check_folder(folder)
    _enrol(tree_photos(folder), gallery_path(gallery), model, device, min_size, min_score, "folder")


@command(group=people_app)
def add(
    name: Annotated[str, typer.Argument(help="The person's name.")],
    photos: Annotated[list[Path], typer.Argument(help="Photos of them (each photo's main face is taken).")],
    gallery: GalleryOption = None,
    min_size: MinSizeOption = 40, min_score: MinScoreOption = 0.85,
    model: ModelOption = "facenet-casia", device: DeviceOption = "auto", json_output: JsonOption = False,
) -> None:
    """Enrol one person from single photos (a new name creates the person)."""
    _enrol([(name, path) for path in photos], gallery_path(gallery), model, device, min_size, min_score, "photo")


@command(group=people_app)
def name(
    clusters: Annotated[Path, typer.Argument(help="A folder made by `fnet cluster`.")],
    names: Annotated[list[str] | None, typer.Argument(help="NUMBER=NAME: person-NUMBER of the contact sheet is NAME (e.g. 3=Alice).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Also enrol every other cluster of two or more faces, as person-NNNN.")] = False,
    gallery: GalleryOption = None,
    min_size: MinSizeOption = 40,
    json_output: JsonOption = False,
) -> None:
    """Name clusters and enrol their faces: the names stay with the clusters through later `fnet cluster` runs.

    Nothing is detected or embedded again: the faces come from the cluster run's store.

    Example: fnet people name clusters/ 1=Alice 4=Bob
    """
    from fnet.pipeline.people import Quality, enrol_clusters

    given = {}
    for pair in names or []:
        number, _, person = pair.partition("=")
        if not number.removeprefix("person-").isdigit() or not person.strip() or int(number.removeprefix("person-")) < 1:
            raise SettingsError(f"{pair!r}: name a cluster as NUMBER=NAME, e.g. 3=Alice (person-0003 on the contact sheet)")
        given[int(number.removeprefix("person-")) - 1] = person.strip()
    if not given and not every:
        raise SettingsError("say which clusters to name (NUMBER=NAME), or --all")
    _summary(enrol_clusters(gallery_path(gallery), clusters, given, every, Quality(min_size)), gallery_path(gallery))
