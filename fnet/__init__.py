"""fnet: FaceNet face recognition: align, embed, verify, search, cluster, train, evaluate.

The Python API (torch loads on first use, so `import fnet` stays fast). A photo is a path
or an H x W x 3 uint8 RGB array; settings are those of `load_pipeline` (model, device,
min_face, mode, ...), and calls with the same settings share one loaded pipeline:

    verify(a, b, **settings) -> Verdict             .same, .distance, .threshold, .a/.b (the faces used)
    faces(photo, **settings) -> list[FoundFace]     every face, left to right: .box, .score,
                                                    .landmarks, .crop, .embedding
    embed(photos, aligned=False, **settings)        one unit embedding per photo: N x D float32
    load_pipeline(model=None, **settings) -> Pipeline   to reuse explicitly, or pass as pipeline=
    load_model(name_or_path=None, device="auto", precision="auto", batch_size=None) -> Embedder
    load_image(path) -> H x W x 3 uint8 RGB array   (raises ImageError naming the file)

Errors a user can fix derive from FnetError (ImageError for unreadable photos, VerifyError
for a photo without a face, SettingsError for bad settings); `str(err)` names the file.

>>> import fnet
>>> fnet.verify("a.jpg", "b.jpg").same            # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from fnet.errors import FnetError, SettingsError
from fnet.io.images import ImageError, load_image
from fnet.pipeline.verify import VerifyError

if TYPE_CHECKING:
    import numpy as np

    from fnet.core.embedder import Embedder
    from fnet.pipeline.build import Pipeline
    from fnet.pipeline.faces import FoundFace
    from fnet.pipeline.verify import Photo, Verdict

__version__ = "0.1.0"

__all__ = [
    "FnetError", "ImageError", "SettingsError", "VerifyError", "__version__", "embed", "faces", "load_image", "load_model",
    "load_pipeline", "verify",
]


def load_model(
    name_or_path: str | os.PathLike | None = None, device: str = "auto", precision: str = "auto", batch_size: int | None = None
) -> Embedder:
    """The default pretrained model, a named one (`fnet models`), or an fnet checkpoint file.

    device: auto (CUDA, then MPS, then CPU), cpu, cuda[:N] or mps. precision: auto (bf16
    on GPUs and on CPUs with AMX, else fp32; fp16 on older GPUs), fp32, fp16 or bf16. The result's `embed(crops)` turns
    N x S x S x 3 uint8 aligned crops into N x D unit-length float32 embeddings, batch_size
    (default 16 on a CPU, 64 on a GPU) faces per forward pass.
    """
    from fnet.core.loading import load_model as load

    return load(name_or_path, device=device, precision=precision, batch_size=batch_size)


def load_pipeline(model: str | os.PathLike | None = None, **settings) -> Pipeline:
    """A model, a detector and an aligner, built once (see fnet.pipeline.PipelineSettings for the settings).

    Nothing heavy happens here: the weights load on first use. Settings: detector ("mtcnn"),
    device, precision, min_face (20 px), detect_size (1024 px), mode ("auto": the model's own; "crop", "similarity", "chip"),
    margin (32), pick ("center", "largest", "all"), size (the model's), batch_size (16 on a CPU, 64 on a GPU).
    """
    from fnet.pipeline.build import load_pipeline as load

    return load(model, **settings)


@functools.lru_cache(maxsize=4)
def _shared(model: str | None, settings: tuple) -> Pipeline:
    return load_pipeline(model, **dict(settings))


def _pipeline(pipeline: Pipeline | None, model: str | os.PathLike | None, settings: dict) -> Pipeline:
    if pipeline is not None:
        return pipeline
    return _shared(None if model is None else str(model), tuple(sorted(settings.items())))


def verify(
    a: Photo, b: Photo, *, threshold: float | None = None, aligned: bool = False, face_a: int | None = None,
    face_b: int | None = None, model: str | os.PathLike | None = None, pipeline: Pipeline | None = None, **settings,
) -> Verdict:
    """Are the people in photos a and b the same? `.same`, `.distance` (squared L2, 0 to 4), `.threshold`.

    Each photo's most central large face is used unless face_a / face_b number one (left to
    right from 0). threshold: default the model's. aligned: the photos are aligned crops.
    A photo without a face raises VerifyError naming it; an unreadable one, ImageError.
    """
    from fnet.pipeline.verify import verify_photos

    return verify_photos(_pipeline(pipeline, model, settings), a, b, face_a, face_b, aligned, threshold)


def faces(
    photo: Photo, *, embed: bool = True, model: str | os.PathLike | None = None, pipeline: Pipeline | None = None,
    **settings,
) -> list[FoundFace]:
    """Every face in the photo, left to right: `.box` (x1, y1, x2, y2), `.score`, `.landmarks` (5 x 2),
    `.crop` (the aligned face) and `.embedding` (unit length; skipped, and no model loaded, with embed=False)."""
    from fnet.pipeline.faces import find_faces

    return find_faces(_pipeline(pipeline, model, settings), photo, embed)


def embed(
    photos: list[Photo], *, aligned: bool = False, model: str | os.PathLike | None = None,
    pipeline: Pipeline | None = None, **settings,
) -> np.ndarray:
    """One unit embedding per photo (N x D float32), from its most central large face, or from the
    whole image with aligned=True (crops from `fnet align`). Compare rows by squared L2 distance."""
    from fnet.pipeline.faces import embed_photos

    return embed_photos(_pipeline(pipeline, model, settings), list(photos), aligned)
