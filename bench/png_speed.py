"""The crops' PNG encoder against Pillow's: milliseconds per crop and bytes, on real LFW crops.

Each crop is the 160 x 160 centre of an LFW photo (what `fnet align` writes), encoded in
memory: fnet.io.png.encode_png (Up filter, ISA-L's deflate at level 1) and Pillow's PNG
writer at compress_level 1 (its fastest that compresses) and 6 (its default). Every fnet
file is decoded back by Pillow and compared pixel for pixel.

    python bench/png_speed.py [--crops 1000]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from photo_sets import lfw_set

import fnet
from fnet.io.png import encode_png
from fnet.io.tree import find_images


def pillow(level: int):
    def encode(crop: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(crop).save(buffer, "PNG", compress_level=level)
        return buffer.getvalue()

    return encode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=1000)
    args = parser.parse_args()
    crops = [np.ascontiguousarray(fnet.load_image(p)[45:205, 45:205]) for p in find_images(lfw_set(args.crops))]
    for crop in crops:
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(crop)))), crop)
    print(f"{len(crops)} LFW crops of 160 x 160, encoded in memory (all of fnet's decode back to the same pixels)\n")
    print("| encoder | ms a crop | KB a crop |")
    print("| --- | --- | --- |")
    for name, encode in (("fnet.io.png", encode_png), ("Pillow, compress_level=1", pillow(1)), ("Pillow, compress_level=6 (default)", pillow(6))):
        start = time.perf_counter()
        size = sum(len(encode(crop)) for crop in crops)
        seconds = time.perf_counter() - start
        print(f"| {name} | {seconds / len(crops) * 1000:.2f} | {size / len(crops) / 1024:.1f} |")


if __name__ == "__main__":
    main()
