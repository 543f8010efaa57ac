"""Geometry: which face is kept, crops with margins, similarity warps."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_DATA

import fnet
from fnet.crops import TEMPLATE_160, crop_face, crop_region, pick_faces, similarity_transform, warp_face
from fnet.face import Face


def face(box, landmarks=None) -> Face:
    return Face(tuple(float(v) for v in box), 0.99, np.zeros((5, 2)) if landmarks is None else landmarks)


def test_center_pick_prefers_central_face_over_larger_bystander():
    image_shape = (1000, 1000, 3)
    bystander = face((0, 300, 360, 660))  # larger (360 px) but at the edge
    subject = face((360, 360, 640, 640))  # 280 px, centred
    assert pick_faces([bystander, subject], image_shape, "largest") == [0]
    assert pick_faces([bystander, subject], image_shape, "center") == [1]
    assert pick_faces([bystander, subject], image_shape, "all") == [0, 1]
    assert pick_faces([], image_shape, "center") == []
    with pytest.raises(ValueError):
        pick_faces([subject], image_shape, "random")


def test_crop_region_adds_the_margin_around_the_box():
    # a 128 px box with margin 32 at size 160: 16 output px = 12.8 photo px on each side
    assert crop_region((100, 100, 228, 228), 160, 32) == (84, 84, 244, 244)


def test_crop_at_the_border_is_padded_black_not_stretched():
    image = np.full((100, 100, 3), 200, np.uint8)
    crop = crop_face(image, (-20, 10, 60, 90), size=80, margin=0)
    assert crop.shape == (80, 80, 3)
    assert crop[:, :15].max() == 0 and crop[:, 25:].min() == 200  # left quarter is outside the photo


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = scale * source @ rotation.T + shift
    np.testing.assert_allclose(similarity_transform(source, target), np.c_[scale * rotation, shift], atol=1e-9)


def test_similarity_warp_puts_landmarks_on_the_template(detector):
    image = fnet.load_image(SHARED_DATA / "deepface-unit/img2.jpg")
    (found,) = detector.detect([image])[0][:1]
    warped = warp_face(image, found.landmarks)
    assert warped.shape == (160, 160, 3)
    again = detector.detect([warped])[0]
    assert len(again) == 1
    # detected again on the warped crop, the landmarks sit on the template
    assert np.abs(again[0].landmarks - TEMPLATE_160).max() < 6
