"""Robust photo decoding: any file a user may point at -> RGB uint8, or an ImageError naming it.

Handles EXIF orientation, grayscale / palette / alpha / CMYK / 16-bit / float images,
multi-frame files (first frame), truncated and corrupt data, non-images, and
decompression bombs (pixel count checked from the header, before decoding).
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from fnet.errors import FnetError

DEFAULT_MAX_PIXELS = 120_000_000  # 11k x 11k; larger is almost certainly not a photo
IMAGE_SUFFIXES = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".avif", ".ppm", ".pgm",
    ".heic", ".heif",  # listed so they are reported (Pillow cannot decode them), not silently left out
})


# Pillow's names for JPEG files; MPO (phones' multi-picture JPEG) opens with its main photo first
JPEG_FORMATS = frozenset({"JPEG", "MPO"})


class ImageError(FnetError, ValueError):
    """A file that cannot be used as a photo. ``str()`` is one line: 'path: reason'."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def read_head(path: str | os.PathLike) -> bytes:
    """A photo file's first bytes: ImageError (naming it) when it is missing, a folder, unreadable or empty.

    Cheap, so commands check their photo arguments with it before any model loads."""
    path = Path(path)
    if not path.exists():
        raise ImageError(path, "no such file")
    if path.is_dir():
        raise ImageError(path, "is a directory, not an image")
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError as err:
        raise ImageError(path, f"cannot be read ({err.strerror or err})") from None
    if not head:
        raise ImageError(path, "empty file")
    return head


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a photo to an H x W x 3 uint8 RGB array, upright as its EXIF orientation says."""
    return _decode(Path(path), Path(path), read_head(path), max_pixels)


@dataclasses.dataclass(frozen=True)
class Reduced:
    """A JPEG photo decoded at 1/2, 1/4 or 1/8 of its size (libjpeg scales while decoding: a
    12 MP photo decodes 3.8x as fast at half size, bench/reduced_decode.py), with what is needed
    to map back to it."""

    pixels: np.ndarray  # upright, H x W x 3 uint8
    scale: tuple[float, float]  # photo pixels per decoded pixel, (x, y)
    shape: tuple[int, int, int]  # the whole photo's, upright
    path: Path

    def whole(self) -> np.ndarray:
        return load_image(self.path)


def load_reduced(path: str | os.PathLike, side: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray | Reduced:
    """As load_image, but a JPEG whose longer side is at least twice `side` is decoded at the
    smallest of 1/2, 1/4, 1/8 of its size that keeps the longer side at least `side`."""
    return _decode(Path(path), Path(path), read_head(path), max_pixels, side)


def reduction(image: Image.Image, reduce_to: int | None) -> int:
    """1, 2, 4 or 8: what load_reduced divides an opened (not yet decoded) photo's sides by."""
    if not reduce_to or image.format not in JPEG_FORMATS:
        return 1
    return next((s for s in (8, 4, 2) if max(image.size) // s >= reduce_to), 1)


def decoded_pixels(image: np.ndarray | Reduced) -> np.ndarray:
    """What was decoded: a Reduced photo's reduced pixels, or the photo itself."""
    return image.pixels if isinstance(image, Reduced) else image


def whole_photo(image: np.ndarray | Reduced) -> np.ndarray:
    """The photo at its own size: a Reduced one is decoded again, whole."""
    return image.whole() if isinstance(image, Reduced) else image


def decode_image(data: bytes, name: str = "upload", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """As load_image, for a photo's bytes (an upload); errors name it `name`. The pixel limit is read
    from the header, before decoding: a decompression bomb is refused at a few bytes' cost."""
    if not data:
        raise ImageError(name, "empty file")
    return _decode(io.BytesIO(data), Path(name), data[:12], max_pixels)


def _decode(source, path: Path, head: bytes, max_pixels: int, reduce_to: int | None = None) -> np.ndarray | Reduced:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(path, f"too large: {width} x {height} pixels (limit {max_pixels:,}); resize it first")
                fraction = reduction(image, reduce_to)
                pixels = decode_jpeg(image, fraction)
                if pixels is not None:
                    orientation = image.getexif().get(ExifTags.Base.Orientation)
                    pixels = upright(pixels, orientation)
                else:
                    if fraction > 1:
                        image.draft(None, (width // fraction, height // fraction))  # libjpeg decodes at 1/fraction
                    image.load()
                    orientation = image.getexif().get(ExifTags.Base.Orientation)  # after load: a PNG may keep it last
                    ImageOps.exif_transpose(image, in_place=True)  # exif_transpose() copies even a photo it does not turn
                    pixels = to_rgb(image)
                if orientation in (5, 6, 7, 8):  # turned a quarter
                    width, height = height, width
                if pixels.shape[:2] == (height, width):
                    return pixels
                return Reduced(pixels, (width / pixels.shape[1], height / pixels.shape[0]), (height, width, 3), path)
    except ImageError:
        raise
    except UnidentifiedImageError:
        kind = _signature(head)
        if kind:
            raise ImageError(path, f"corrupt or truncated {kind} file") from None
        if path.suffix.lower() in (".heic", ".heif"):
            raise ImageError(path, "HEIC/HEIF photos cannot be decoded here; convert them to JPEG first") from None
        raise ImageError(path, "not an image, or a format Pillow cannot read") from None
    except Image.DecompressionBombError:
        raise ImageError(path, f"too large: over {max_pixels:,} pixels, maybe a decompression bomb; resize it first") from None
    except MemoryError:
        raise ImageError(path, "too large to decode in the memory available") from None
    except Exception as err:  # noqa: BLE001 (any decoder failure, e.g. AVIF RuntimeError, is about the file)
        reason = str(err) or type(err).__name__
        if "truncated" in reason.lower():
            raise ImageError(path, "truncated file (incomplete download or copy?)") from None
        raise ImageError(path, f"corrupt or unreadable image ({reason})") from None


def decode_jpeg(image: Image.Image, fraction: int = 1) -> np.ndarray | None:
    """An opened (not yet decoded) RGB JPEG's pixels at 1/fraction of its size, decoded by libjpeg-turbo
    straight into an array (simplejpeg); None for any other photo, or one it declines: Pillow decodes those.

    The same library as Pillow's, the same pixels (tests/test_images.py), 1.2-2.7x as fast
    (bench/jpeg_decode.py): Pillow decodes into 4 bytes a pixel and copies them out in 64 KB
    pieces, three copies of a photo in memory at once where this has one.
    """
    if image.format not in JPEG_FORMATS or image.mode != "RGB":
        return None
    image.fp.seek(0)
    data = image.fp.read()
    width, height = (math.ceil(side / fraction) for side in image.size)
    try:  # strict: a warning (truncated, corrupt data) leaves the photo to Pillow, which says what is wrong
        return simplejpeg.decode_jpeg(data, "RGB", min_width=width, min_height=height)
    except ValueError:  # e.g. a chroma subsampling libjpeg-turbo's header reader does not name
        return None


# EXIF orientation -> the turn that makes a photo upright (as Pillow's exif_transpose), on H x W pixels
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.T,
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].T,
    8: lambda a: np.rot90(a, 1),
}
_TILE = 256


def upright(pixels: np.ndarray, orientation: int | None) -> np.ndarray:
    """H x W x 3 pixels turned as their EXIF orientation says (1 or none: as they are).

    numpy copies a turned H x W x 3 array byte by byte, each pixel's three bytes far from its
    neighbours': 27 ms for a 3 MP phone photo, more than decoding it. Copied as 3-byte items,
    256 x 256 at a time: 6 ms.
    """
    turn = _UPRIGHT.get(orientation)
    if turn is None:
        return pixels
    turned = turn(np.ascontiguousarray(pixels).view("V3")[..., 0])
    out = np.empty(turned.shape, turned.dtype)
    for top in range(0, out.shape[0], _TILE):
        for left in range(0, out.shape[1], _TILE):
            out[top : top + _TILE, left : left + _TILE] = turned[top : top + _TILE, left : left + _TILE]
    return out.view(np.uint8).reshape(*out.shape, 3)


def to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> H x W x 3 uint8 RGB. Alpha is composited onto white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return _high_depth_to_rgb(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":  # convert() copies even an RGB image: a 12 MP photo's 20 ms and 48 MB
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _high_depth_to_rgb(image: Image.Image) -> np.ndarray:
    """16-bit / 32-bit integer or float grayscale: rescale to 8 bits instead of clipping."""
    array = np.asarray(image).astype(np.float64)
    if image.mode == "F":
        finite = np.isfinite(array)  # an Inf pixel must not stretch the range: the rest would turn black
        low, high = (float(array[finite].min()), float(array[finite].max())) if finite.any() else (0.0, 0.0)
        array = np.where(finite, array, np.where(array > 0, high, low))  # +Inf brightest; -Inf, NaN darkest
        array = (array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
    elif array.max(initial=0) > 255:
        array = array / 257.0  # 0..65535 -> 0..255
    gray = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG": "PNG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _signature(head: bytes) -> str | None:
    """The format a file's first bytes claim, to tell a damaged image from a non-image."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in _SIGNATURES.items() if head.startswith(magic)), None)


def name_problem(path: str | os.PathLike) -> str | None:
    """Why a file's name cannot be stored (HDF5 and JSON hold UTF-8 text), or None."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8; rename the file"
    return None


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
