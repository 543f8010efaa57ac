"""`fnet faces`: what faces are in a photo: boxes, landmarks, scores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from fnet.cli.app import command
from fnet.cli.options import DetectorOption, DetectSizeOption, DeviceOption, JsonOption, MinFaceOption
from fnet.cli.output import result
from fnet.face import DETECT_SIZE


@command
def faces(
    photo: Annotated[Path, typer.Argument(help="A photo.")],
    draw: Annotated[Path | None, typer.Option("--draw", help="Write the photo with each face boxed and numbered, as JPEG.")] = None,
    detector: DetectorOption = "mtcnn",
    min_face: MinFaceOption = 20,
    detect_size: DetectSizeOption = DETECT_SIZE,
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """List every face in a photo, left to right: box, detector confidence and five landmarks.

    Boxes are (x1, y1, x2, y2) in the photo's pixels, after EXIF rotation. No model weights
    load: only the detector runs. Exit code 1 when no face is found.

    Example: fnet faces group.jpg --json
    """
    from fnet.io.drawing import draw_faces
    from fnet.io.images import load_image
    from fnet.pipeline import load_pipeline
    from fnet.pipeline.faces import find_faces

    pipeline = load_pipeline(detector=detector, device=device, min_face=min_face, detect_size=detect_size)
    image = load_image(photo)
    found = find_faces(pipeline, image, embed=False)
    if draw is not None:
        draw_faces(image, [f.box for f in found], [f"{f.number}: {f.score:.2f}" for f in found], [True] * len(found), draw)
    table = Table(title=Text(f"{photo}: {len(found)} face(s)"), title_justify="left")
    for column in ("face", "box (x1, y1, x2, y2)", "width", "confidence"):
        table.add_column(column)
    for f in found:
        table.add_row(str(f.number), ", ".join(f"{v:.0f}" for v in f.box), f"{f.face.width:.0f} px", f"{f.score:.3f}")
    result({"photo": str(photo), "faces": [f.to_dict() for f in found]}, table)
    if not found:
        raise typer.Exit(1)
