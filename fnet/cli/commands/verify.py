"""`fnet verify`: are two photos of the same person?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group
from rich.text import Text

from fnet.cli.app import command
from fnet.cli.options import DetectorOption, DeviceOption, FlipOption, JsonOption, MarginOption, ModelOption, ModeOption
from fnet.cli.output import result


@command
def verify(
    a: Annotated[Path, typer.Argument(help="First photo.")],
    b: Annotated[Path, typer.Argument(help="Second photo.")],
    threshold: Annotated[
        float | None, typer.Option(help="Squared L2 distance at or below which it is the same person (default: the model's).")
    ] = None,
    face_a: Annotated[int | None, typer.Option(help="Which face of A, numbered from 0 left to right (default: the most central large one).")] = None,
    face_b: Annotated[int | None, typer.Option(help="Which face of B, as --face-a.")] = None,
    aligned: Annotated[bool, typer.Option("--aligned", help="A and B are aligned face crops already: skip detection.")] = False,
    flip: FlipOption = False,
    mode: ModeOption = "auto",
    margin: MarginOption = 32,
    detector: DetectorOption = "mtcnn",
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
    from fnet.io.images import read_head

    for photo in (a, b):  # a missing or empty photo fails here, before torch and the model load
        read_head(photo)
    from fnet.pipeline import load_pipeline
    from fnet.pipeline.verify import verify_photos

    pipeline = load_pipeline(model, detector=detector, device=device, mode=mode, margin=margin)
    verdict = verify_photos(pipeline, a, b, face_a, face_b, aligned, threshold, flip)
    word, colour, relation = ("Same person", "green", "<=") if verdict.same else ("Different people", "red", ">")
    sides = [Text(side.describe(), style="dim") for side in (verdict.a, verdict.b)]
    line = Text(word, style=f"bold {colour}") + Text(f": distance {verdict.distance:.3f} {relation} threshold {verdict.threshold:.3f}")
    result(verdict.to_dict(), Group(*sides, line))
    raise typer.Exit(0 if verdict.same else 1)
