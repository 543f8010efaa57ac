"""A self-contained tour of the whole pipeline on photos that ship with installed packages.

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

from fnet.errors import FnetError
from fnet.io.images import load_image
from fnet.pipeline.build import Pipeline


@dataclasses.dataclass(frozen=True)
class Photo:
    who: str
    distribution: str
    resource: str


PHOTOS = (
    Photo("Grace Hopper", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg"),
    Photo("Eileen Collins", "scikit-image", "skimage/data/astronaut.png"),
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
    "photo shrunk to a 40 px face": lambda im: im.resize((im.width * 2 // 9, im.height * 2 // 9), Image.BILINEAR),
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


WHAT_IT_SHOWS = (
    "The same-person rows compare one photo of Grace Hopper with edited copies of that photo (no installed "
    "package ships two different photos of one person): they show robustness to edits, not recognition "
    "across photos. For that, see the LFW figures in docs/evaluate.md."
)


class DemoDataMissing(FnetError, RuntimeError):
    pass


def photo_path(photo: Photo) -> Path:
    try:
        path = Path(importlib.metadata.distribution(photo.distribution).locate_file(photo.resource))
    except importlib.metadata.PackageNotFoundError:
        raise DemoDataMissing(f"the demo photo of {photo.who} ships with '{photo.distribution}': pip install 'fnet[demo]'") from None
    if not path.is_file():
        raise DemoDataMissing(f"{path}: demo photo missing from the installed '{photo.distribution}'")
    return path


def run_demo(pipeline: Pipeline) -> list[Comparison]:
    """Every altered photo against the original (same person), and every Hopper photo against Collins.

    Each photo goes through the whole pipeline: face detection, alignment, embedding.
    """
    pipeline.preload()
    aligner = pipeline.aligner("center")
    hopper, collins = (load_image(photo_path(p)) for p in PHOTOS)
    photos = {"Grace Hopper": hopper}
    photos.update({f"Grace Hopper, {name}": np.asarray(change(Image.fromarray(hopper))) for name, change in ALTERATIONS.items()})
    photos["Eileen Collins"] = collins
    crops = []
    for name, faces in zip(photos, aligner.align(list(photos.values()))):
        if not faces:
            raise DemoDataMissing(f"no face found in the demo photo '{name}'")
        crops.append(faces[0].crop)
    model = pipeline.embedder
    emb = dict(zip(photos, model.embed(np.stack(crops))))

    def compare(first: str, second: str, same: bool) -> Comparison:
        distance = float(((emb[first] - emb[second]) ** 2).sum())
        return Comparison(first, second, distance, same, distance <= model.info.threshold)

    hoppers = [name for name in photos if name.startswith("Grace")]
    return [compare(hoppers[0], name, True) for name in hoppers[1:]] + [compare(name, "Eileen Collins", False) for name in hoppers]
