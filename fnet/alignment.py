"""Cutting aligned face crops out of photos."""

from __future__ import annotations

import numpy as np
from PIL import Image


def crop_face(image: np.ndarray, box: tuple[float, float, float, float], size: int = 160, margin: float = 32) -> np.ndarray:
    """The square-resized crop of box (x1, y1, x2, y2) grown by margin/2 on each side.

    margin is in pixels of the output crop (FaceNet's reference: 32 at size 160), scaled to
    the box's size in the photo. Parts outside the photo are black, as in the reference
    pipeline: clipping would stretch faces at the border.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    grow_x = (x2 - x1) * margin / (size - margin) / 2
    grow_y = (y2 - y1) * margin / (size - margin) / 2
    left, top, right, bottom = (int(round(v)) for v in (x1 - grow_x, y1 - grow_y, x2 + grow_x, y2 + grow_y))
    height, width = image.shape[:2]
    canvas = np.zeros((bottom - top, right - left, 3), dtype=np.uint8)
    sx1, sy1, sx2, sy2 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
    if sx2 > sx1 and sy2 > sy1:
        canvas[sy1 - top : sy2 - top, sx1 - left : sx2 - left] = image[sy1:sy2, sx1:sx2]
    return np.asarray(Image.fromarray(canvas).resize((size, size), Image.BILINEAR))
