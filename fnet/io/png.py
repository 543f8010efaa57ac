"""PNG encoding for face crops, seven times as fast as Pillow's fastest setting.

Pillow tries PNG's five row filters on every row and deflates with zlib: 1.6 ms for a
160 px crop at compress_level=1, a third of what detecting its face costs on a CPU. One
filter (Up: each row minus the row above) deflated by ISA-L (the `isal` package) takes
0.22 ms, for files 2% larger (1,000 LFW crops: 0.22 vs 1.58 ms, 38.3 vs 37.6 KB;
bench/png_speed.py). The files are ordinary 8-bit PNGs that any reader opens.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

try:
    from isal.isal_zlib import compress as _deflate  # ISA-L: zlib's format, ~5x zlib's speed at level 1
except ImportError:  # a platform without its wheel: the same files, slower
    from zlib import compress as _deflate

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type: grey, RGB, RGBA
UP = 2  # PNG's filter type "Up"


def encode_png(pixels: np.ndarray) -> bytes:
    """An 8-bit image (H x W grey, H x W x 3 RGB or H x W x 4 RGBA) as the bytes of a PNG file."""
    channels = 1 if pixels.ndim == 2 else pixels.shape[2] if pixels.ndim == 3 else 0
    if pixels.dtype != np.uint8 or channels not in COLOUR_TYPES:
        raise ValueError(f"encode_png takes 8-bit grey, RGB or RGBA pixels, not {pixels.dtype} of shape {pixels.shape}")
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, width * channels)
    filtered = np.empty((height, 1 + width * channels), np.uint8)
    filtered[:, 0] = UP
    filtered[:, 1:] = rows
    filtered[1:, 1:] -= rows[:-1]  # wraps modulo 256, as PNG's filters do; the first row stays as it is
    header = struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPES[channels], 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", _deflate(filtered, 1)) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
