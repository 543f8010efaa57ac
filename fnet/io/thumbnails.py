"""Small face pictures for HTML reports, embedded as data URIs so a report is one file."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from fnet.crops import crop_face


def thumbnail_jpeg(image: np.ndarray, size: int = 96) -> bytes:
    """A face crop as a small JPEG (kept in the people gallery)."""
    buffer = io.BytesIO()
    Image.fromarray(image).resize((size, size), Image.BILINEAR).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def thumbnail_uri(image: np.ndarray, size: int = 112) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).resize((size, size), Image.BILINEAR).save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def face_picture(image: np.ndarray, box: Sequence[float], size: int = 112) -> np.ndarray:
    """The face in a photo (its box and some margin), or the whole image when the box is unknown (an aligned crop)."""
    if any(math.isnan(float(v)) for v in box):
        return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    return crop_face(image, box, size, margin=size / 5)
