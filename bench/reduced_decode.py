"""Large JPEGs decoded at a fraction of their size: as fast as promised, and the same faces?

`fnet align` and `fnet embed --align` search faces on a copy of at most 1,024 px, so a JPEG of
2,048 px or more is decoded at 1/2, 1/4 or 1/8 of its size (libjpeg scales while decoding)
and its faces cut from that when each is at least a crop's size across there, else from the
whole photo, decoded again. On every JPEG of 2,048 px or more in the photo sets of
bench/photo_sets.py (12 MP phone photos, mixed 0.2-14 MP) and deepface-unit, against decoding
each photo whole:

- decoding time (EXIF rotation included), whole and reduced;
- faces found either way, and found one way only (no box of the other at IoU >= 0.5: faces
  near the detector's threshold); for each face found both ways, the largest box difference in pixels of the 1,024 px copy detection sees, and the squared distance
  between the embeddings of the two crops (facenet-casia;
  0 is identical, its same-person threshold is 1.24);
- how many photos were decoded again whole (a face too small in the reduced copy).

    python bench/reduced_decode.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from photo_sets import mixed_set, phone_set

import fnet
from fnet.io.ahead import decode_cost
from fnet.io.images import load_image, load_reduced
from fnet.io.tree import find_images

DEEPFACE = Path(__file__).resolve().parents[2] / "shared/data/deepface-unit"


def iou(a, b) -> float:
    wide = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    high = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = wide * high
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def seconds(load, paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        load(path)
    return time.perf_counter() - start


def main() -> None:
    pipeline = fnet.load_pipeline(device="cpu", precision="fp32")
    aligner, model = pipeline.aligner("all"), pipeline.embedder
    size = aligner.decode_size
    sets = {"phone, 12 MP": phone_set(30), "mixed, 0.2-14 MP": mixed_set(150), "deepface-unit": DEEPFACE}
    print("| photos | JPEGs >= 2,048 px | decode whole | decode reduced | faces (whole / reduced) | "
          "found one way only | largest box difference | largest squared distance | decoded again whole |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, folder in sets.items():
        paths = [p for p in find_images(folder) if decode_cost(p, size).pixels < decode_cost(p).pixels]  # from the headers
        if not paths:
            continue
        whole_s, reduced_s = seconds(load_image, paths), seconds(lambda p: load_reduced(p, size), paths)
        faces = [0, 0]
        box_gap, distance, again, alone = 0.0, 0.0, 0, 0
        for path in paths:
            whole, reduced = load_image(path), load_reduced(path, size)
            a, b = aligner.align([whole])[0], aligner.align([reduced])[0]
            faces[0] += len(a)
            faces[1] += len(b)
            again += any(max(f.face.width, f.face.height) / reduced.scale[0] < aligner.settings.size for f in b)
            to_detection = size / max(whole.shape[:2])  # photo pixels -> pixels of the copy detection sees
            pairs = [(x, y) for x in a for y in b if iou(x.face.box, y.face.box) >= 0.5]  # the same face, found both ways
            alone += len(a) + len(b) - 2 * len(pairs)
            for x, y in pairs:  # each face found whole with the nearest found reduced
                box_gap = max(box_gap, float(np.abs(np.subtract(x.face.box, y.face.box)).max()) * to_detection)
            if pairs:
                e = model.embed(np.stack([f.crop for pair in pairs for f in pair]))
                distance = max(distance, float(((e[0::2] - e[1::2]) ** 2).sum(1).max()))
        n = len(paths)
        print(f"| {name} | {n} | {whole_s / n * 1000:.0f} ms | {reduced_s / n * 1000:.0f} ms ({whole_s / reduced_s:.1f}x) | "
              f"{faces[0]} / {faces[1]} | {alone} | {box_gap:.1f} px | {distance:.3f} | {again} |", flush=True)


if __name__ == "__main__":
    main()
