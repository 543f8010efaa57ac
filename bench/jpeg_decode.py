"""JPEG photos decoded by libjpeg-turbo straight into numpy (simplejpeg) against Pillow's way.

fnet.io.images decodes an RGB JPEG with simplejpeg (decode_jpeg) and turns it upright in
numpy; Pillow decodes into 4 bytes a pixel, copies them out in 64 KB pieces and joins them,
and its exif_transpose() copies even a photo it does not turn. Both run the same libjpeg-turbo
at the same scale, so the pixels must be identical: checked here on every photo. On the photo
sets of bench/photo_sets.py (LFW 250 px, mixed 0.2-14 MP, 12 MP phone photos stored sideways),
each decoded as `fnet align` does (JPEGs of twice the detection size or more at 1/2-1/8):

- seconds per photo set, best of three, Pillow's way (the code before) and fnet's;
- photos whose pixels differ (must be 0) and photos left to Pillow (not RGB JPEGs, or declined).

    python bench/jpeg_decode.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from photo_sets import lfw_set, mixed_set, phone_set
from PIL import Image, ImageOps

from fnet.face import DETECT_SIZE
from fnet.io.images import decode_jpeg, decoded_pixels, load_reduced, reduction
from fnet.io.tree import find_images


def pillow_way(path: Path) -> np.ndarray:
    """What fnet.io.images did before: Pillow's draft, load, exif_transpose, asarray."""
    with Image.open(path) as image:
        if (fraction := reduction(image, DETECT_SIZE)) > 1:
            image.draft(None, (image.width // fraction, image.height // fraction))
        image.load()
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def fnet_way(path: Path) -> np.ndarray:
    return decoded_pixels(load_reduced(path, DETECT_SIZE))


def best_of(load, paths: list[Path], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for path in paths:
            load(path)
        times.append(time.perf_counter() - start)
    return min(times)


def left_to_pillow(path: Path) -> bool:
    with Image.open(path) as image:
        return decode_jpeg(image, reduction(image, DETECT_SIZE)) is None


def main() -> None:
    sets = {"LFW, 250 px": lfw_set(1000), "mixed, 0.2-14 MP": mixed_set(150), "phone, 12 MP": phone_set(30)}
    print("| photos | files | Pillow's way | fnet (libjpeg-turbo into numpy) | speed-up | pixels differ | left to Pillow |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, folder in sets.items():
        paths = find_images(folder)
        differ = sum(not np.array_equal(pillow_way(p), fnet_way(p)) for p in paths)
        pillow, ours = best_of(pillow_way, paths), best_of(fnet_way, paths)
        declined = sum(left_to_pillow(p) for p in paths)
        print(f"| {name} | {len(paths)} | {pillow:.2f} s | {ours:.2f} s | {pillow / ours:.2f}x | {differ} | {declined} |", flush=True)


if __name__ == "__main__":
    main()
