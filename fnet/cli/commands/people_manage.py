"""`fnet people list | show | rename | merge | split | remove`: look after the gallery's people."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from fnet.cli.app import command, people_app
from fnet.cli.options import GalleryOption, JsonOption, gallery_path
from fnet.cli.output import result

NameArgument = Annotated[str, typer.Argument(help="A person's name, as `fnet people list` shows it.")]


def _open(gallery):
    from fnet.people.gallery import Gallery

    return Gallery.open(gallery_path(gallery))


@command(group=people_app)
def list_(gallery: GalleryOption = None, json_output: JsonOption = False) -> None:
    """The enrolled people, with how many faces and photos each has."""
    with _open(gallery) as g:
        people, meta = g.people(), g.meta()
    table = Table(title=Text(f"{g.path}: {len(people)} people ({meta['model']})"), title_justify="left")
    for column in ("name", "faces", "photos"):
        table.add_column(column)
    for p in people:
        table.add_row(Text(p.name), str(p.faces), str(p.photos))
    result({"gallery": str(g.path), "model": meta["model"], "people": [vars(p) for p in people]}, table)


@command(group=people_app)
def show(name: NameArgument, gallery: GalleryOption = None, json_output: JsonOption = False) -> None:
    """One person's faces: their numbers (for `fnet people split`), photos and boxes."""
    with _open(gallery) as g:
        g.person_id(name)  # an unknown name: one error naming it
        faces = g.faces(name)
    table = Table(title=Text(f"{name}: {len(faces)} faces"), title_justify="left")
    for column in ("face", "photo", "box", "source"):
        table.add_column(column)
    for f in faces:
        box = "-" if f["x1"] is None else ", ".join(f"{f[k]:.0f}" for k in ("x1", "y1", "x2", "y2"))
        table.add_row(str(f["id"]), Text(f["photo"]), box, f["source"])
    result({"person": name, "faces": faces}, table)


@command(group=people_app)
def rename(old: NameArgument, new: Annotated[str, typer.Argument(help="The new name.")], gallery: GalleryOption = None, json_output: JsonOption = False) -> None:
    """Rename a person."""
    with _open(gallery) as g, g.writing():
        g.rename(old, new)
    result({"renamed": old, "to": new}, f"{old} is now {new}")


@command(group=people_app)
def merge(source: NameArgument, target: NameArgument, gallery: GalleryOption = None, json_output: JsonOption = False) -> None:
    """Merge SOURCE into TARGET (two names found to be one person): SOURCE's faces move, SOURCE goes."""
    with _open(gallery) as g, g.writing():
        moved = g.merge(source, target)
    result({"merged": source, "into": target, "faces": moved}, f"{moved} faces of {source} now belong to {target}")


@command(group=people_app)
def split(
    faces: Annotated[list[int], typer.Argument(help="Face numbers, from `fnet people show NAME`.")],
    to: Annotated[str, typer.Option("--to", help="The person they belong to (created if new).")],
    gallery: GalleryOption = None, json_output: JsonOption = False,
) -> None:
    """Move wrongly enrolled faces out, to another person (a person left without faces is removed)."""
    with _open(gallery) as g, g.writing():
        moved = g.move_faces(faces, to)
    result({"moved": moved, "to": to}, f"{moved} faces moved to {to}")


@command(group=people_app)
def remove(name: NameArgument, gallery: GalleryOption = None, json_output: JsonOption = False) -> None:
    """Forget a person and their faces."""
    with _open(gallery) as g, g.writing():
        removed = g.remove(name)
    result({"removed": name, "faces": removed}, f"{name} removed, with {removed} faces")


@command(group=people_app)
def export(folder: Annotated[Path, typer.Argument(help="Folder to write people.json and faces.h5 into.")], gallery: GalleryOption = None, json_output: JsonOption = False) -> None:
    """Write the gallery as files to hand on: people.json (names, faces) and faces.h5 (embeddings); no pickle."""
    from fnet.people.transfer import export_gallery

    with _open(gallery) as g:
        manifest = export_gallery(g, folder)
    result({"folder": str(folder), "people": len(manifest["people"]), "faces": len(manifest["faces"])},
           f"{folder}: {len(manifest['people'])} people, {len(manifest['faces'])} faces")


@command(group=people_app)
def import_(folder: Annotated[Path, typer.Argument(help="A folder written by `fnet people export`.")], gallery: GalleryOption = None, json_output: JsonOption = False) -> None:
    """Add an exported gallery's people and faces (those already here are skipped); the gallery is made if new."""
    from fnet.people.gallery import Gallery
    from fnet.people.transfer import import_gallery, read_manifest

    meta = read_manifest(folder)
    with Gallery.open(gallery_path(gallery), meta["model"], meta["embedding_dim"], create=True) as g, g.writing():
        added = import_gallery(g, folder)
    result({"added": added}, f"added {sum(added.values())} faces of {len(added)} people")
