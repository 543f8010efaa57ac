"""fnet.io.png: the crops' PNG encoder writes files any reader decodes to the very same pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import lfw_face
from PIL import Image

from fnet.io.atomic import write_atomic
from fnet.io.png import encode_png
from fnet.pipeline.align import write_png


def decoded(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    image.load()
    return np.asarray(image)


def test_real_crops_decode_to_the_same_pixels_in_grey_rgb_and_rgba():
    face = lfw_face("Colin_Powell", 1, crop=160)  # a view into the photo: not contiguous
    grey = np.asarray(Image.fromarray(face).convert("L"))
    rgba = np.dstack([face, np.arange(160 * 160, dtype=np.uint32).reshape(160, 160).astype(np.uint8)])
    for pixels, mode in ((face, "RGB"), (grey, "L"), (rgba, "RGBA")):
        data = encode_png(pixels)
        assert Image.open(io.BytesIO(data)).mode == mode
        np.testing.assert_array_equal(decoded(data), pixels)
    # The Up filter must wrap modulo 256: rows that fall from 255 to 0 and climb back.
    stripes = np.where(np.arange(64)[:, None, None] % 2 == 0, 255, 0).astype(np.uint8).repeat(48, 1).repeat(3, 2)
    np.testing.assert_array_equal(decoded(encode_png(stripes)), stripes)
    # As compact as Pillow's fastest setting, give or take (it tries five filters a row).
    pillow = io.BytesIO()
    Image.fromarray(face).save(pillow, "PNG", compress_level=1)
    assert len(encode_png(face)) < 1.1 * pillow.tell()


def test_only_8_bit_grey_rgb_or_rgba_is_taken():
    with pytest.raises(ValueError, match="8-bit"):
        encode_png(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        encode_png(np.zeros((4, 4, 2), np.uint8))


def test_write_atomic_leaves_the_file_readable_and_nothing_else(tmp_path):
    path = tmp_path / "new" / "folder" / "crop.png"
    write_atomic(path, b"first")
    write_atomic(path, b"second")
    assert path.read_bytes() == b"second" and (path.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["crop.png"]
    with pytest.raises(TypeError):
        write_atomic(path, "not bytes")  # the write fails: the old file stays, no temporary is left
    assert path.read_bytes() == b"second" and [p.name for p in path.parent.iterdir()] == ["crop.png"]


def test_crops_are_written_whole_readable_and_nothing_else(tmp_path):
    """write_png (fnet align's crop writer): atomic, 0644, no temporary left, also when encoding fails."""
    face = lfw_face("Tony_Blair", 1, crop=160)
    path = tmp_path / "new" / "folder" / "crop.png"
    write_png(face[::-1], path)
    write_png(face, path)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), face)
    assert (path.stat().st_mode & 0o777) == 0o644 and [p.name for p in path.parent.iterdir()] == ["crop.png"]
    with pytest.raises(ValueError):
        write_png(face.astype(np.float32), path)  # the write fails: the old crop stays, no temporary is left
    np.testing.assert_array_equal(np.asarray(Image.open(path)), face)
    assert [p.name for p in path.parent.iterdir()] == ["crop.png"]
