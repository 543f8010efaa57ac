"""The pretrained model's accuracy on LFW View 2 with fnet's own detection and alignment.

Runs the `fnet evaluate` stage over the official 6,000 pairs for each setting (alignment
mode, margin, mirror-image test-time augmentation, input normalisation) and prints one
table row per setting, plus a ROC plot of all of them. Embeddings are cached under
bench/out/lfw/, so a rerun only computes new settings.

    python bench/lfw.py [--settings crop-m32,crop-m32-flip,similarity,similarity-flip,crop-m32-prewhiten,crop-m32-mean]
    python bench/lfw.py --model dlib-resnet --settings chip,chip-flip
    python bench/lfw.py --precision bf16 --settings crop-m32   # bfloat16 inference (AMX CPUs, GPUs)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fnet.evaluation.report import roc_png
from fnet.pipeline import load_pipeline
from fnet.pipeline.evaluate import evaluate, read_pairs

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared/data/lfw"


def parse(setting: str) -> dict:
    """'crop-m32-flip-mean' -> mode crop, margin 32, mirror TTA, mean subtraction; 'similarity-prewhiten' -> ..."""
    parts = setting.split("-")
    margin = next((float(p[1:]) for p in parts if p.startswith("m") and p[1:].replace(".", "").isdigit()), 32.0)
    return {
        "mode": parts[0], "margin": margin, "flip": "flip" in parts, "mean": "mean" in parts,
        "normalization": "prewhiten" if "prewhiten" in parts else None,  # None: the model's own
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default="crop-m32,crop-m32-flip,similarity,similarity-flip,crop-m32-prewhiten,crop-m32-mean")
    parser.add_argument("--images", default=str(LFW / "lfw-deepfunneled"), help="LFW's image folder (e.g. the original, not deep-funneled, images)")
    parser.add_argument("--pairs", default=str(LFW / "pairs.txt"))
    parser.add_argument("--model", default="facenet-casia", help="a pretrained name or a checkpoint")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", help="fp32 (the tables in docs), bf16, or auto (the command line's default)")
    parser.add_argument("--out", help="where embeddings are cached (default: bench/out/lfw, one folder per image set)")
    args = parser.parse_args()

    images = Path(args.images)
    out = Path(args.out or ROOT / "bench/out" / ("lfw" if images.name == "lfw-deepfunneled" else f"lfw-{images.name}"))
    if args.model != "facenet-casia":
        out = out / args.model.replace("/", "_")
    if args.precision != "fp32":
        out = out / args.precision
    out.mkdir(parents=True, exist_ok=True)
    pairs = read_pairs(Path(args.pairs), images)
    curves = {}
    print(f"LFW View 2 ({images}): {len(pairs)} pairs, 10 folds; model {args.model}, {args.precision}; MTCNN alignment by fnet")
    print("| setting | accuracy (10-fold) | VAL @ FAR=1e-3 | ROC AUC | EER | best threshold | no face detected | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for setting in args.settings.split(","):
        s = parse(setting)
        pipeline = load_pipeline(args.model, device=args.device, precision=args.precision, mode=s["mode"], margin=s["margin"])
        model = pipeline.embedder
        if s["normalization"]:
            model.info = model.info.replace(normalization=s["normalization"])
        aligner = pipeline.aligner()
        start = time.perf_counter()
        cache = out / f"embeddings-{setting.replace('-mean', '')}.h5"  # mean subtraction reuses the embeddings
        result = evaluate(images, pairs, model, aligner, cache, flip=s["flip"], subtract_mean=s["mean"])
        m = result.metrics()
        curves[setting] = (result.distances, result.same)
        print(
            f"| {setting} | {m['accuracy']:.2%} ± {m['accuracy_standard_error']:.2%} | {m['val']:.2%} ± {m['val_std']:.2%} "
            f"| {m['auc']:.5f} | {m['eer']:.2%} | {m['best_threshold']:.3f} | {m['images_without_detected_face']} "
            f"| {time.perf_counter() - start:.0f} |",
            flush=True,
        )
    roc_png(curves, out / "roc.png")
    print(f"ROC: {out / 'roc.png'}")


if __name__ == "__main__":
    main()
