"""Triplet loss against ArcFace, trained through the same loop on the same LFW-identity split.

LFW's people with at least 10 photos (158) are aligned by `fnet align`; `fnet train` then
trains the small network from scratch once per loss, with the same steps, batches (16 people
x 4 faces), optimizer, schedule, augmentation and the default identity split (20% of people
held out, seed 0). Prints the held-out 10-fold accuracy and VAL at FAR=1e-3 of the last
validation, and the wall time, as a markdown table (docs/train.md).

    python bench/train_losses.py [--steps 1500] [--work /tmp/fnet-bench/train-losses]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw" / "lfw-deepfunneled"
FNET = [sys.executable, "-m", "fnet"]
LOSSES = {"triplet": [], "arcface": ["--loss", "arcface"]}


def aligned_tree(work: Path, min_photos: int = 10) -> Path:
    """LFW's people with at least min_photos photos, aligned (resumable: a second call reuses it)."""
    photos, aligned = work / "lfw10", work / "lfw10-aligned"
    if not photos.exists():
        photos.mkdir(parents=True)
        for person in sorted(LFW.iterdir()):
            if len(list(person.glob("*.jpg"))) >= min_photos:
                (photos / person.name).symlink_to(person)
    subprocess.run([*FNET, "align", str(photos), "-o", str(aligned)], check=False)  # exit 1: a photo without a face
    return aligned


def train(aligned: Path, out: Path, loss: str, steps: int) -> tuple[dict, dict, float]:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    command = [*FNET, "train", str(aligned), "-o", str(out), "--steps", str(steps), "--validate-every", str(steps // 6), *LOSSES[loss]]
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    vals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"kind": "val"' in line]
    return vals[0], vals[-1], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--work", type=Path, default=Path("/tmp/fnet-bench/train-losses"))
    args = parser.parse_args()
    aligned = aligned_tree(args.work)
    rows = []
    for loss in LOSSES:
        first, last, seconds = train(aligned, args.work / loss, loss, args.steps)
        rows.append(
            f"| {loss} | {first['accuracy']:.4f} -> **{last['accuracy']:.4f}** | {first['val_at_far_1e-3']:.4f} -> "
            f"**{last['val_at_far_1e-3']:.4f}** | {last['pairs']} | {seconds / 60:.1f} min |"
        )
    print(f"\n{args.steps} steps, small network from scratch, {aligned}\n")
    print("| loss | held-out accuracy | held-out VAL @ FAR=1e-3 | pairs | time |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
