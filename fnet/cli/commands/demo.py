"""`fnet demo`: a one-command check that fnet works, on photos that ship with installed packages."""

from __future__ import annotations

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from fnet.cli.app import command
from fnet.cli.options import DeviceOption, JsonOption, ModelOption
from fnet.cli.output import result


@command
def demo(model: ModelOption = "facenet-casia", device: DeviceOption = "auto", json_output: JsonOption = False) -> None:
    """Verify faces in photos that ship with installed packages: a one-command check that fnet works.

    Grace Hopper (matplotlib's sample photo) is compared with altered copies of her photo
    (mirrored, JPEG-compressed, darker, rotated, shrunk to a 40 px face, grayscale) and with
    Eileen Collins (scikit-image's astronaut photo); every photo is detected, aligned and
    embedded. Exit code 0 when every verdict is right.
    """
    from fnet.pipeline import load_pipeline
    from fnet.pipeline.demo import WHAT_IT_SHOWS, run_demo

    pipeline = load_pipeline(model, device=device)
    rows = run_demo(pipeline)
    threshold = pipeline.info.threshold
    table = Table(title=Text(f"{pipeline.embedder!r}: same person when squared L2 distance <= {threshold:.2f}"), title_justify="left")
    for column in ("photo A", "photo B", "distance", "verdict", ""):
        table.add_column(column)
    for r in rows:
        verdict = "same person" if r.predicted_same else "different people"
        table.add_row(r.first, r.second, f"{r.distance:.3f}", verdict, Text("right", "green") if r.correct else Text("WRONG", "red"))
    summary = Text(f"{sum(r.correct for r in rows)} of {len(rows)} verdicts right.")
    result(
        {"model": pipeline.info.name, "threshold": threshold, "note": WHAT_IT_SHOWS, "comparisons": [vars(r) for r in rows]},
        Group(table, summary, Text(WHAT_IT_SHOWS, style="dim")),
    )
    if not all(r.correct for r in rows):
        raise typer.Exit(1)
