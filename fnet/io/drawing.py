"""Photos with their faces boxed and labelled (``--draw``): what a person would rather look at than read."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fnet.io.atomic import atomic_path

KNOWN, UNKNOWN = (46, 204, 113), (241, 196, 15)  # green for a name, amber for unknown


def draw_faces(image: np.ndarray, boxes: Sequence[Sequence[float]], labels: Sequence[str], known: Sequence[bool], path: str | os.PathLike) -> None:
    """Write the photo (a JPEG, atomically) with each box outlined and its label above it, sized to the photo."""
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    scale = max(picture.size) / 1000
    width, size = max(2, round(3 * scale)), max(12, round(22 * scale))
    font = ImageFont.load_default(size=size)
    for box, label, named in zip(boxes, labels, known):
        colour = KNOWN if named else UNKNOWN
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        left, top, right, bottom = draw.textbbox((x1, y1), label, font=font)
        lift = bottom - top + 2 * width
        y = y1 - lift if y1 - lift >= 0 else y2  # above the box, or below it at the photo's top edge
        draw.rectangle((x1, y, x1 + right - left + 2 * width, y + lift), fill=colour)
        draw.text((x1 + width, y + width - (top - y1)), label, fill=(0, 0, 0), font=font)
    with atomic_path(path, suffix=".jpg") as tmp:
        picture.save(tmp, "JPEG", quality=90)
