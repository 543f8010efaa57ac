"""The face record every stage shares: a detector's box, confidence and five landmarks (no torch)."""

from __future__ import annotations

import dataclasses

import numpy as np

# Photos longer than this (pixels) are searched for faces on a downscaled copy: a 12 MP photo
# then costs what a 2 MP one does (DetectorSettings.max_side, the CLI's --detect-size).
DETECT_SIZE = 1600

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

    def to_dict(self) -> dict:
        return {
            "box": [round(v, 2) for v in self.box],
            "score": round(self.score, 5),
            "landmarks": {n: [round(float(x), 2), round(float(y), 2)] for n, (x, y) in zip(LANDMARK_NAMES, self.landmarks)},
        }
