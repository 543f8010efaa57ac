"""Sensitivity to image quality, as in the FaceNet paper (section 5.3): LFW View 2 with degraded probes.

Every image of the 6,000 pairs is aligned once (crop mode, 160 px). The first image of each
pair stays as it is; the second (the probe) is JPEG-compressed to quality 10/20/50, or
shrunk to a 40/60/80/120 px face and scaled back up. Reported per degradation: the 10-fold
accuracy and VAL at FAR=1e-3. Writes docs/img/quality.png.

    python bench/quality.py
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from fnet.crops import centre_crop
from fnet.io.ahead import load_ahead
from fnet.pipeline import load_pipeline
from fnet.pipeline.embed import FALLBACK_CROP
from fnet.pipeline.evaluate import Evaluation, read_pairs

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared/data/lfw"


def jpeg(crop: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def shrink(crop: np.ndarray, pixels: int) -> np.ndarray:
    # the face fills ~128 of the crop's 160 px: scale so that it spans `pixels`
    small = max(8, round(crop.shape[0] * pixels / 128))
    image = Image.fromarray(crop).resize((small, small), Image.BILINEAR)
    return np.asarray(image.resize(crop.shape[:2][::-1], Image.BILINEAR))


DEGRADATIONS = {
    "original": lambda c: c,
    "JPEG q50": lambda c: jpeg(c, 50),
    "JPEG q20": lambda c: jpeg(c, 20),
    "JPEG q10": lambda c: jpeg(c, 10),
    "120 px face": lambda c: shrink(c, 120),
    "80 px face": lambda c: shrink(c, 80),
    "60 px face": lambda c: shrink(c, 60),
    "40 px face": lambda c: shrink(c, 40),
}


def main() -> None:
    pairs = read_pairs(LFW / "pairs.txt", LFW / "lfw-deepfunneled")
    images = sorted({p.a for p in pairs} | {p.b for p in pairs})
    pipeline = load_pipeline()
    aligner, model = pipeline.aligner(), pipeline.embedder
    crops = {}
    for path, image in load_ahead(images):
        faces = aligner.align([image])[0]
        crops[path] = faces[0].crop if faces else centre_crop(image, FALLBACK_CROP, 160)
    gallery = dict(zip(images, model.embed(np.stack([crops[p] for p in images]))))
    probes = sorted({p.b for p in pairs})
    same, folds = np.array([p.same for p in pairs]), np.array([p.fold for p in pairs])
    rows = []
    print("| probe image | accuracy (10-fold) | VAL @ FAR=1e-3 |")
    print("| --- | --- | --- |")
    for name, degrade in DEGRADATIONS.items():
        emb = dict(zip(probes, model.embed(np.stack([degrade(crops[p]) for p in probes]))))
        m = Evaluation(pairs, np.stack([gallery[p.a] for p in pairs]), np.stack([emb[p.b] for p in pairs]), same, folds).metrics()
        rows.append((name, m["accuracy"], m["val"]))
        print(f"| {name} | {m['accuracy']:.2%} ± {m['accuracy_standard_error']:.2%} | {m['val']:.2%} ± {m['val_std']:.2%} |", flush=True)
    plot(rows, ROOT / "docs/img/quality.png")


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.6), dpi=110)
    names = [r[0] for r in rows]
    x = np.arange(len(rows))
    axis.bar(x - 0.2, [r[1] for r in rows], 0.4, label="accuracy (10-fold)")
    axis.bar(x + 0.2, [r[2] for r in rows], 0.4, label="VAL @ FAR=1e-3")
    axis.set_xticks(x, names, rotation=30, ha="right")
    axis.set_ylim(0.8, 1.0)  # the differences live in the top fifth
    axis.set_title("LFW with degraded probe images (facenet-casia, crop alignment)")
    axis.legend(loc="lower left", fontsize=8)
    axis.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


if __name__ == "__main__":
    main()
