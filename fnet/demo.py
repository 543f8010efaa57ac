"""A self-contained tour of the pretrained model on photos that ship with installed packages.

Grace Hopper (matplotlib's sample photo) against altered copies of herself and against
Eileen Collins (scikit-image's astronaut photo): the same person should stay within the
model's threshold through every alteration, the other person should not.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from fnet.alignment import crop_face
from fnet.core.embedder import Embedder
from fnet.io.images import load_image


@dataclasses.dataclass(frozen=True)
class Photo:
    who: str
    distribution: str
    resource: str
    face_box: tuple[int, int, int, int]  # x1, y1, x2, y2, found once by MTCNN


PHOTOS = (
    Photo("Grace Hopper", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg", (173, 116, 357, 340)),
    Photo("Eileen Collins", "scikit-image", "skimage/data/astronaut.png", (182, 63, 269, 174)),
)


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


ALTERATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "mirrored": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "JPEG quality 15": lambda im: _jpeg(im, 15),
    "40% darker": lambda im: ImageEnhance.Brightness(im).enhance(0.6),
    "rotated 8 degrees": lambda im: im.rotate(8, resample=Image.BILINEAR),
    "40 px face, upscaled": lambda im: im.resize((40, 40), Image.BILINEAR).resize(im.size, Image.BILINEAR),
    "grayscale": lambda im: im.convert("L").convert("RGB"),
}


@dataclasses.dataclass(frozen=True)
class Comparison:
    first: str
    second: str
    distance: float
    same_person: bool  # the truth
    predicted_same: bool

    @property
    def correct(self) -> bool:
        return self.same_person == self.predicted_same


class DemoDataMissing(RuntimeError):
    pass


def photo_path(photo: Photo) -> Path:
    try:
        path = Path(importlib.metadata.distribution(photo.distribution).locate_file(photo.resource))
    except importlib.metadata.PackageNotFoundError:
        raise DemoDataMissing(f"the demo photo of {photo.who} ships with '{photo.distribution}': pip install 'fnet[demo]'") from None
    if not path.is_file():
        raise DemoDataMissing(f"{path}: demo photo missing from the installed '{photo.distribution}'")
    return path


def run_demo(model: Embedder) -> list[Comparison]:
    """Every altered copy against the original (same person), and every Hopper image against Collins."""
    size = model.info.input_size
    hopper, collins = (crop_face(load_image(photo_path(p)), p.face_box, size) for p in PHOTOS)
    altered = {f"Grace Hopper, {name}": np.asarray(change(Image.fromarray(hopper))) for name, change in ALTERATIONS.items()}
    names = ["Grace Hopper", *altered]
    emb = model.embed(np.stack([hopper, *altered.values(), collins]))
    hopper_embs, collins_emb = dict(zip(names, emb[:-1])), emb[-1]

    def compare(first: str, second: str, a: np.ndarray, b: np.ndarray, same: bool) -> Comparison:
        distance = float(((a - b) ** 2).sum())
        return Comparison(first, second, distance, same, distance <= model.info.threshold)

    rows = [compare(names[0], name, hopper_embs[names[0]], hopper_embs[name], True) for name in names[1:]]
    rows += [compare(name, "Eileen Collins", e, collins_emb, False) for name, e in hopper_embs.items()]
    return rows
