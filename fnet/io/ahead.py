"""Decoding photos ahead of the detector, within bounds: however many photos, however large.

``load_ahead`` decodes on threads while the consumer works, holding at most a window of photos
whose decoding memory (``decode_cost``, read from the headers) fits a budget; ``photo_batches``
groups them into detector batches of bounded pixels.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from PIL import ExifTags, Image

from fnet.io.images import JPEG_FORMATS, ImageError, Reduced, decoded_pixels, load_image, load_reduced, reduction


@dataclasses.dataclass(frozen=True)
class DecodeCost:
    """What decoding a photo takes, read from its header before decoding it."""

    pixels: int  # decoded, as load_reduced decodes them (at 1/2, 1/4 or 1/8 when reduced)
    peak_bytes: int  # the most memory decoding holds at once, the decoded pixels included


def decode_cost(path: str | os.PathLike, reduce_to: int | None = None) -> DecodeCost:
    """The pixels decoding will give and the memory it will hold at its peak: the pixels, the
    file's bytes (read whole), a turned copy (EXIF), Pillow's own 4-byte pixels (not JPEG), and
    a progressive JPEG's coefficients, 2 bytes a sample of the whole photo at any fraction
    (libjpeg keeps every scan: a 14 MP one took 45 MB decoded to 2 MB at 1/4). 0 and 0 when
    unreadable (decoding will say why)."""
    try:
        with Image.open(path) as image:
            fraction = reduction(image, reduce_to)
            pixels = math.ceil(image.width / fraction) * math.ceil(image.height / fraction)
            turned = image.getexif().get(ExifTags.Base.Orientation) not in (None, 1)
            if image.format in JPEG_FORMATS:
                # the file's bytes (simplejpeg reads them whole); a grey or CMYK JPEG goes to Pillow, 4 bytes a pixel
                work = os.path.getsize(path) + (0 if image.mode == "RGB" else 4 * pixels)
                if image.info.get("progressive") or image.info.get("progression"):
                    work += int(2 * _samples_per_pixel(image) * image.width * image.height)
            else:
                work = 4 * pixels
            return DecodeCost(pixels, 3 * pixels * (2 if turned else 1) + work)
    except Exception:  # noqa: BLE001 (any failure here is reported by load_image, with its reason)
        return DecodeCost(0, 0)


def _samples_per_pixel(jpeg: Image.Image) -> float:
    """Colour samples a JPEG stores per pixel: 1.5 with chroma at a quarter (4:2:0), 3 with none."""
    factors = [(h, v) for _, h, v, _ in getattr(jpeg, "layer", [])] or [(1, 1)] * len(jpeg.getbands())
    most = max(h for h, _ in factors) * max(v for _, v in factors)
    return sum(h * v for h, v in factors) / most


T = TypeVar("T")


def load_ahead(
    items: Iterable[T],
    workers: int = 2,
    path_of: Callable[[T], str | os.PathLike] = lambda item: item,
    ahead: int = 16,
    max_bytes: int | None = None,
    reduce_to: int | None = None,
    in_turn_below: int = 0,
) -> Iterator[tuple[T, np.ndarray | Reduced | ImageError]]:
    """(item, image or its ImageError) in order, decoded on a thread pool (Pillow releases the GIL).

    At most `ahead` photos are decoded or decoding before the consumer takes them, and with
    max_bytes, photos whose decoding holds at most that much memory at its peak (decode_cost,
    from the files' headers; one photo always): memory stays bounded however many items there
    are, however large, however slow the consumer, and two photos that are costly to decode
    (large progressive JPEGs) never decode at once.
    reduce_to: large JPEGs come Reduced to about that size (load_reduced).
    in_turn_below (with max_bytes): photos of fewer pixels are decoded on the consumer's
    thread when it takes them, not ahead (SMALL_PHOTO says when that is faster).
    """

    def load(item: T) -> tuple[T, np.ndarray | Reduced | ImageError]:
        try:
            return item, load_reduced(path_of(item), reduce_to) if reduce_to else load_image(path_of(item))
        except ImageError as err:
            return item, err

    source = iter(items)
    pending: deque[tuple[Future, int]] = deque()  # (decoding, the memory it was counted for)
    window = 0  # bytes counted for pending
    waiting: list[tuple[T, DecodeCost]] = []  # the next item, when it did not fit in the window yet

    def refill(pool: ThreadPoolExecutor) -> None:
        nonlocal window
        while len(pending) < max(1, ahead):
            if not waiting:
                item = next(source, _END)
                if item is _END:
                    return
                waiting.append((item, decode_cost(path_of(item), reduce_to) if max_bytes else DecodeCost(0, 0)))
            item, cost = waiting[0]
            if pending and max_bytes and window + cost.peak_bytes > max_bytes:
                return
            waiting.clear()
            pending.append((pool.submit(load, item) if cost.pixels >= in_turn_below else _DecodeWhenTaken(load, item),
                            cost.peak_bytes))
            window += cost.peak_bytes

    with ThreadPoolExecutor(max(1, workers)) as pool:
        try:
            refill(pool)
            while pending:
                future, counted = pending.popleft()
                window -= counted
                done = future.result()
                refill(pool)
                yield done
        finally:  # the consumer stopped early: drop what is queued, not decode it
            for future, _ in pending:
                future.cancel()


_END = object()


class _DecodeWhenTaken:
    """A decode left for the consumer's thread, in the place of a Future (result, cancel)."""

    def __init__(self, load: Callable, item) -> None:
        self.load, self.item = load, item

    def result(self):
        return self.load(self.item)

    def cancel(self) -> bool:
        return True


# On a CPU the detector's threads already fill every core: handing a photo under 1 MP to a
# decoding thread cost more than decoding it in turn (1,000 LFW photos, `fnet align`: 7.1 s
# ahead, 6.5 in turn), while larger ones are still worth decoding ahead (150 mixed photos:
# 9.4 s ahead, 10.1 in turn).
SMALL_PHOTO = 1_000_000

# Pixels of decoded photos in one detector batch (a larger photo goes alone). The peak memory of a
# run is its busiest batch's: 16 MP let it rise 20% from 1,000 to 20,000 photos (bench/memory.py).
# 4 MP lowers every peak by 0.03-0.08 GiB but not their rise (0.50 -> 0.56 GiB), and costs whole
# `fnet align` 3% of its speed on mixed-size photos and 7% on phone photos (docs/speed.md).
BATCH_PIXELS = 8_000_000

# Memory that photos decoding ahead of the detector may hold (decode_cost), as much as a batch's
# decoded pixels. Counting decoded pixels alone let two large progressive JPEGs decode at once,
# 85 MB for 5 MB of pixels: over 5,000 photos the run's peak grew by 28 MB when they met.
DECODE_BYTES = 3 * BATCH_PIXELS


def photo_batches(
    items: Iterable[T],
    batch_size: int,
    workers: int = 2,
    path_of: Callable[[T], str | os.PathLike] = lambda item: item,
    max_pixels: int = BATCH_PIXELS,
    reduce_to: int | None = None,
    for_cpu: bool = False,
) -> Iterator[list[tuple[T, np.ndarray | Reduced | ImageError]]]:
    """Batches of (item, image or its ImageError), in order, decoded at most one batch ahead.

    A batch holds at most batch_size photos and max_pixels pixels: eight 250 px photos go
    together, 12 MP photos one or two at a time, so memory follows the pixels, not the count.
    reduce_to: large JPEGs come Reduced to about that size (load_reduced).
    for_cpu: the batches go to a detector on the CPU; small photos are then decoded in turn (SMALL_PHOTO).
    """
    batch: list[tuple[T, np.ndarray | Reduced | ImageError]] = []
    pixels = 0
    for item, image in load_ahead(items, workers, path_of, ahead=batch_size, max_bytes=DECODE_BYTES, reduce_to=reduce_to,
                                  in_turn_below=SMALL_PHOTO if for_cpu else 0):
        size = 0 if isinstance(image, ImageError) else math.prod(decoded_pixels(image).shape[:2])
        if batch and pixels + size > max_pixels:
            yield batch
            batch, pixels = [], 0
        batch.append((item, image))
        pixels += size
        if len(batch) == batch_size:
            yield batch
            batch, pixels = [], 0
    if batch:
        yield batch
