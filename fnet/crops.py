"""Geometry of aligned faces: which face to keep, and cutting it out (box + margin, or 5-point similarity)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from fnet.errors import SettingsError
from fnet.face import Face

PICKS = ("center", "largest", "all")
MODES = ("crop", "similarity", "chip", "wide")

# Where `similarity` mode puts the five landmarks in a 160 x 160 crop: their mean position in
# `crop`-mode crops (margin 32) of 400 MTCNN-detected LFW faces, made mirror-symmetric
# (bench/landmark_template.py), so both modes frame a face alike and `similarity` only
# removes roll, scale and offset.
TEMPLATE_160 = np.array(
    [[51.0, 65.2], [109.0, 65.2], [80.0, 90.5], [54.0, 111.9], [106.0, 111.9]], dtype=np.float64
)


# Where `chip` mode puts MTCNN's five landmarks: dlib's face chip (the input of its ResNet), on
# dlib's unit face (the mean of its 68-point training shapes: the centres of the six points of
# each eye, the nose tip, the mouth corners), with dlib's padding of 0.25 on every side.
DLIB_UNIT_FACE = np.array(
    [[0.225492, 0.215990], [0.754761, 0.215990], [0.490127, 0.515625], [0.254149, 0.780233], [0.726104, 0.780233]]
)
DLIB_PADDING = 0.25
# `wide`: the same with twice the padding, the frame an ensemble cuts each member's view from
# (fnet.core.ensemble); at 200 px its centre 150 px are the 150 px chip, pixel for pixel.
TEMPLATES = {
    "similarity": TEMPLATE_160 / 160.0,
    "chip": (DLIB_UNIT_FACE + DLIB_PADDING) / (1 + 2 * DLIB_PADDING),
    "wide": (DLIB_UNIT_FACE + 2 * DLIB_PADDING) / (1 + 4 * DLIB_PADDING),
}
# The landmarks each template is fitted to (default all five). dlib's chips are fitted to the
# eyes and mouth corners: MTCNN's nose tip follows every turn of the head, and on LFW chips
# fitted without it embed better (bench/dlib_alignment.py).
FITTED_LANDMARKS = {"chip": [0, 1, 3, 4], "wide": [0, 1, 3, 4]}


def pick_faces(faces: Sequence[Face], image_shape: tuple[int, ...], pick: str = "center") -> list[int]:
    """Indices of the faces to keep.

    'center' (the FaceNet reference's choice) keeps the face with the largest box area minus
    twice its squared distance from the image centre: big and central wins, so a large
    bystander at the edge does not. 'largest' keeps the largest box; 'all' keeps every face.
    """
    if pick not in PICKS:
        raise SettingsError(f"pick must be one of {PICKS}, not {pick!r}")
    if not faces:
        return []
    if pick == "all":
        return list(range(len(faces)))
    boxes = np.array([f.box for f in faces], dtype=np.float64)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    if pick == "largest":
        return [int(area.argmax())]
    height, width = image_shape[:2]
    offset = (boxes[:, [0, 1]] + boxes[:, [2, 3]]) / 2 - [width / 2, height / 2]
    return [int((area - 2.0 * (offset**2).sum(1)).argmax())]


def crop_region(box: Sequence[float], size: int = 160, margin: float = 32) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in the photo: the box grown by margin/2 on each side.

    margin is in pixels of the output crop (FaceNet's evaluation used 32 at size 160),
    scaled to the box's size in the photo.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    grow_x = (x2 - x1) * margin / (size - margin) / 2
    grow_y = (y2 - y1) * margin / (size - margin) / 2
    left, top, right, bottom = (round(v) for v in (x1 - grow_x, y1 - grow_y, x2 + grow_x, y2 + grow_y))
    return left, top, max(right, left + 1), max(bottom, top + 1)


def crop_face(image: np.ndarray, box: Sequence[float], size: int = 160, margin: float = 32) -> np.ndarray:
    """The crop_region of the box, resized to size x size (bilinear).

    Parts outside the photo are black, as in the reference detector; clipping instead
    would stretch faces at the border.
    """
    left, top, right, bottom = crop_region(box, size, margin)
    height, width = image.shape[:2]
    canvas = np.zeros((bottom - top, right - left, 3), dtype=np.uint8)
    sx1, sy1, sx2, sy2 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
    if sx2 > sx1 and sy2 > sy1:
        canvas[sy1 - top : sy2 - top, sx1 - left : sx2 - left] = image[sy1:sy2, sx1:sx2]
    return np.asarray(Image.fromarray(canvas).resize((size, size), Image.BILINEAR))


def centre_box(shape: tuple[int, ...], fraction: float) -> tuple[float, float, float, float]:
    """A centred square of `fraction` of the shorter side, as a box in the photo's pixels."""
    height, width = shape[:2]
    side = max(1, int(min(height, width) * fraction))
    top, left = (height - side) // 2, (width - side) // 2
    return (float(left), float(top), float(left + side), float(top + side))


def centre_crop(image: np.ndarray, fraction: float, size: int) -> np.ndarray:
    """The centre_box, resized to size x size: the face of a photo in which none was detected."""
    left, top, right, bottom = (int(v) for v in centre_box(image.shape, fraction))
    return np.asarray(Image.fromarray(image[top:bottom, left:right]).resize((size, size), Image.BILINEAR))


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2 x 3 rotation + uniform scale + translation mapping source points onto target (least squares, Umeyama)."""
    src_mean, dst_mean = source.mean(0), target.mean(0)
    src, dst = source - src_mean, target - dst_mean
    u, singular, vt = np.linalg.svd(dst.T @ src / len(source))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])  # no reflections
    rotation = u @ d @ vt
    scale = (singular * np.diag(d)).sum() / (src**2).sum(1).mean()
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def warp_face(image: np.ndarray, landmarks: np.ndarray, size: int = 160, template: str = "similarity") -> np.ndarray:
    """Warp so the five landmarks land on the template (scaled to size); outside the photo is black.

    A face much larger than the output is first shrunk by a whole factor (a box filter) so that
    bilinear sampling never skips photo pixels: a 1,000 px face in a phone photo would
    otherwise come out aliased.
    """
    use = FITTED_LANDMARKS.get(template, slice(None))
    target = TEMPLATES[template][use] * size
    forward = np.vstack([similarity_transform(np.asarray(landmarks, np.float64)[use], target), [0, 0, 1]])
    inverse = np.linalg.inv(forward)
    source = Image.fromarray(image)
    shrink = math.ceil(0.5 / float(np.hypot(*forward[0, :2])))  # output pixels per photo pixel below 1/2: shrink
    if shrink > 1:
        corners = inverse @ np.array([[0, size, 0, size], [0, 0, size, size], [1, 1, 1, 1]], np.float64)
        height, width = image.shape[:2]
        left, top = (max(0, math.floor(v.min()) - shrink) for v in corners[:2])
        right, bottom = min(width, math.ceil(corners[0].max()) + shrink), min(height, math.ceil(corners[1].max()) + shrink)
        if right > left and bottom > top:
            source = source.crop((left, top, right, bottom)).reduce(shrink)
            # photo pixel p = shrink * q + (left, top) for a pixel q of the shrunk region
            inverse = np.diag([1 / shrink, 1 / shrink, 1.0]) @ np.array([[1, 0, -left], [0, 1, -top], [0, 0, 1]]) @ inverse
    warped = source.transform((size, size), Image.AFFINE, tuple(inverse[:2].ravel()), resample=Image.BILINEAR)
    return np.asarray(warped)


def align_face(image: np.ndarray, face: Face, mode: str = "crop", size: int = 160, margin: float = 32) -> np.ndarray:
    if mode == "crop":
        return crop_face(image, face.box, size, margin)
    if mode in TEMPLATES:
        return warp_face(image, face.landmarks, size, mode)
    raise SettingsError(f"mode must be one of {MODES}, not {mode!r}")
