"""The face record every stage shares: a detector's box, confidence and five landmarks (no torch)."""

from __future__ import annotations

import dataclasses

import numpy as np

# Photos longer than this (pixels) are searched for faces on a downscaled copy: a 12 MP photo
# then costs what a 1 MP one does (DetectorSettings.max_side, the CLI's --detect-size). On the
# 40 deepface-unit photos over 1,024 px every face was still found, its crop within squared
# distance 0.10 of the full-resolution one; faces under min_face x (longest side / 1,024) are
# missed (79 px in a 12 MP photo).
DETECT_SIZE = 1024

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclasses.dataclass(frozen=True)
class Face:
    """One detection: box (x1, y1, x2, y2) in image pixels, confidence, and 5 landmarks (x, y)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, mouth left, mouth right

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def rescaled(self, sx: float, sy: float, shape: tuple[int, ...]) -> Face:
        """This face, found on a copy of a photo shrunk by (sx, sy), in the photo's pixels (shape: the photo's).

        Pixel centres map as x_photo = (x + 0.5) * sx - 0.5; the box stays inside the photo.
        """
        scale, shift = np.array([sx, sy]), 0.5 * (np.array([sx, sy]) - 1)
        corners = np.clip(np.array(self.box).reshape(2, 2) * scale + shift, 0, [shape[1] - 1, shape[0] - 1])
        return Face(tuple(float(v) for v in corners.ravel()), self.score, self.landmarks * scale + shift)

    def to_dict(self) -> dict:
        return {
            "box": [round(v, 2) for v in self.box],
            "score": round(self.score, 5),
            "landmarks": {n: [round(float(x), 2), round(float(y), 2)] for n, (x, y) in zip(LANDMARK_NAMES, self.landmarks)},
        }
