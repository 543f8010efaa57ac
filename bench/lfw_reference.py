"""The FaceNet reference's own LFW protocol, step by step, on fnet's detector and model.

What davidsandberg/facenet did for the published 99.05% (align_dataset_mtcnn.py +
validate_on_lfw.py), rebuilt from fnet's parts so that only the data differs:

- MTCNN thresholds 0.6 / 0.7 / **0.7** (fnet follows the `mtcnn` package's 0.8);
- the kept face's box grown by 16 *source* pixels per side, clipped at the image border,
  and stretched to 160 x 160 (fnet scales the margin with the face, pads with black and
  keeps the aspect ratio);
- original and mirrored embeddings *concatenated*; the mean of the nine training folds
  subtracted; angular distance.

It also scores ensembles of the embeddings that `bench/lfw.py` cached (several margins,
mirror image) as test-time augmentation. Run `bench/lfw.py` first for those.

    python bench/lfw_reference.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

import fnet
from fnet.core.detector import DetectorSettings, FaceDetector
from fnet.crops import pick_faces
from fnet.evaluation.metrics import unit_rows
from fnet.io.ahead import load_ahead
from fnet.io.store import Store
from fnet.pipeline.evaluate import Evaluation, read_pairs

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared/data/lfw"
IMAGES = LFW / "lfw-deepfunneled"
OUT = ROOT / "bench/out/lfw"


def reference_crop(image: np.ndarray, box, margin: int = 32, size: int = 160) -> np.ndarray:
    """align_dataset_mtcnn.py's crop: box +- margin/2 source pixels, clipped, resized (aspect not kept)."""
    height, width = image.shape[:2]
    x1, y1 = int(max(box[0] - margin / 2, 0)), int(max(box[1] - margin / 2, 0))
    x2, y2 = int(min(box[2] + margin / 2, width)), int(min(box[3] + margin / 2, height))
    return np.asarray(Image.fromarray(image[y1:y2, x1:x2]).resize((size, size), Image.BILINEAR))


def reference_embeddings(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(original, mirrored) embeddings of every image, aligned the reference's way; cached."""
    cache = OUT / "reference-embeddings.npy"
    if cache.exists():
        plain, mirrored = np.load(cache)
        return plain, mirrored
    detector = FaceDetector("auto", DetectorSettings(thresholds=(0.6, 0.7, 0.7)))
    model = fnet.load_model()
    crops, batch = [], []

    def flush() -> None:
        for (path, image), faces in zip(batch, detector.detect([image for _, image in batch])):
            kept = pick_faces(faces, image.shape, "center")
            if not kept:
                raise SystemExit(f"{path}: no face detected")  # never happens on LFW; the reference would skip the pair
            crops.append(reference_crop(image, faces[kept[0]].box))
        batch.clear()

    start = time.perf_counter()
    for path, image in load_ahead(paths):
        if isinstance(image, Exception):
            raise SystemExit(str(image))
        batch.append((path, image))
        if len(batch) == 16:
            flush()
    flush()
    crops = np.stack(crops)
    plain, mirrored = model.embed(crops), model.embed(np.ascontiguousarray(crops[:, :, ::-1]))
    print(f"aligned and embedded {len(paths)} images the reference's way in {time.perf_counter() - start:.0f} s")
    OUT.mkdir(parents=True, exist_ok=True)
    np.save(cache, np.stack([plain, mirrored]))
    return plain, mirrored


def cached_embeddings(setting: str, paths: list[Path]) -> np.ndarray | None:
    """Embeddings bench/lfw.py stored for one setting, in the order of paths (None if not run)."""
    file = OUT / f"embeddings-{setting}.h5"
    if not file.exists():
        return None
    with Store(file) as store:
        rows = dict(zip(store.paths(), store.embeddings()))
    return np.stack([rows[p.relative_to(IMAGES).as_posix()] for p in paths]).astype(np.float64)


def main() -> None:
    pairs = read_pairs(LFW / "pairs.txt", IMAGES)
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    row = {path: i for i, path in enumerate(paths)}
    a = np.array([row[p.a] for p in pairs])
    b = np.array([row[p.b] for p in pairs])
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])

    plain, mirrored = reference_embeddings(paths)
    settings = {
        "reference crop, O-Net 0.7": plain,
        "reference crop, O-Net 0.7, mirror averaged": unit_rows(plain + mirrored),
        "reference crop, O-Net 0.7, mirror concatenated (the reference)": np.concatenate([plain, mirrored], 1),
    }
    margins = [cached_embeddings(f"crop-m{m}", paths) for m in (24, 32, 40)]
    mirror = cached_embeddings("crop-m32-flip", paths)
    if all(m is not None for m in margins):
        settings["fnet crop, margins 24 + 32 + 40 averaged"] = unit_rows(sum(margins))
        if mirror is not None:
            settings["fnet crop, margins 24 + 32 + 40 and mirror averaged"] = unit_rows(sum(margins) + mirror)

    print(f"LFW View 2 ({IMAGES.name}): {len(pairs)} pairs, 10 folds")
    print("| setting | mean subtracted | accuracy (10-fold, ± s.e.) | VAL @ FAR=1e-3 |")
    print("| --- | --- | --- | --- |")
    for name, embeddings in settings.items():
        for subtract_mean in (False, True):
            m = Evaluation(pairs, embeddings[a], embeddings[b], same, folds, subtract_mean=subtract_mean).metrics()
            print(
                f"| {name} | {'yes' if subtract_mean else 'no'} | {m['accuracy']:.2%} ± {m['accuracy_standard_error']:.2%} "
                f"| {m['val']:.2%} ± {m['val_std']:.2%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
