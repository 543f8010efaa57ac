"""Clustering: quality on real labelled faces, and time and memory at a million faces.

Quality. LFW's people with at least 10 photos (158 people, 4,324 photos) and deepface-unit's
61 labelled single-person photos, each photo's central face aligned by fnet (crop, margin
32) and embedded by facenet-casia (cached in bench/out/cluster/). Every fnet method at the
model's threshold, and as the peer, scikit-learn's AgglomerativeClustering called directly
(average linkage, Euclidean distance cut at the square root of the same squared-L2
threshold), on the same embeddings in the same run. Reported: clusters found against the
true number of people, pairwise and BCubed precision / recall / F, seconds. Then a
threshold sweep for the default method and the peer.

Scale. `fnet cluster STORE` (the command line, in a child process) on synthetic 512-D
embeddings, 10 photos each of N/10 people (bench/synthetic.py): wall time, the child's
peak resident memory, and pairwise F against the true people.

    python bench/cluster.py [--scale 1000000] [--no-scale] [--no-quality]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from synthetic import synthetic, write_synthetic_store

import fnet
from fnet.clustering import METHODS, ClusterSettings, cluster
from fnet.evaluation.clustering import bcubed_scores, pairwise_scores
from fnet.io.store import Store
from fnet.io.tree import Item, tree_items
from fnet.pipeline import load_pipeline
from fnet.pipeline.embed import FALLBACK_CROP, embed_tree

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared/data"
OUT = ROOT / "bench/out/cluster"


def labelled_store(name: str, root: Path, items: list[Item], labels: dict[str, str], model: str = "facenet-casia") -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, true identities) of the items by `model`, embedded once and cached."""
    path = OUT / (f"{name}.h5" if model == "facenet-casia" else f"{name}-{model}.h5")
    if not path.exists():
        pipeline = load_pipeline(model)
        embed_tree(root, path, pipeline.embedder, pipeline.aligner(), items=items, fallback_crop=FALLBACK_CROP)
    with Store(path) as store:
        return store.embeddings(), np.array([labels[p] for p in store.paths()])


def lfw_people(min_photos: int = 10, model: str = "facenet-casia"):
    root = DATA / "lfw/lfw-deepfunneled"
    items = tree_items(root)
    count = Counter(item.label for item in items)
    items = [item for item in items if count[item.label] >= min_photos]
    return labelled_store(f"lfw-{min_photos}", root, items, {item.rel: item.label for item in items}, model)


def deepface_people():
    root = DATA / "deepface-unit"
    with open(root / "identities.csv", newline="") as handle:
        identity = {row["image"]: row["identity"] for row in csv.DictReader(handle)}
    items = [Item(root / name, name, identity[name]) for name in sorted(identity)]
    return labelled_store("deepface-unit", root, items, identity)


def sklearn_agglomerative(x: np.ndarray, threshold: float) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=None, linkage="average", distance_threshold=float(np.sqrt(threshold))).fit_predict(x)


def score_row(name: str, truth: np.ndarray, labels: np.ndarray, seconds: float) -> str:
    pair, cube = pairwise_scores(truth, labels), bcubed_scores(truth, labels)
    return (
        f"| {name} | {len(np.unique(labels))} / {len(np.unique(truth))} | {pair.precision:.3f} | {pair.recall:.3f} | "
        f"**{pair.f:.3f}** | {cube.precision:.3f} | {cube.recall:.3f} | {cube.f:.3f} | {seconds:.2f} |"
    )


def timed(function, *args):
    start = time.perf_counter()
    labels = function(*args)
    return labels, time.perf_counter() - start


def quality(threshold: float) -> None:
    for title, (x, truth) in (("LFW, people with >= 10 photos", lfw_people()), ("deepface-unit", deepface_people())):
        print(f"\n### {title}: {len(x)} faces of {len(np.unique(truth))} people, threshold {threshold}\n")
        print("| method | clusters / people | pairwise P | pairwise R | pairwise F | BCubed P | BCubed R | BCubed F | seconds |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for method in METHODS:
            settings = ClusterSettings(method=method, threshold=threshold, n_clusters=len(np.unique(truth)))
            labels, seconds = timed(cluster, x, settings)
            print(score_row(f"fnet {method}" + (" (k = true count)" if method == "kmeans" else ""), truth, labels, seconds))
        labels, seconds = timed(sklearn_agglomerative, x, threshold)
        print(score_row("scikit-learn agglomerative (peer)", truth, labels, seconds))
        print("\nPairwise F by threshold:\n\n| threshold | fnet whispers | scikit-learn agglomerative |\n| --- | --- | --- |")
        for t in (0.8, 0.9, 1.0, 1.1, 1.24, 1.4):
            ours = pairwise_scores(truth, cluster(x, ClusterSettings(threshold=t))).f
            peer = pairwise_scores(truth, sklearn_agglomerative(x, t)).f
            print(f"| {t} | {ours:.3f} | {peer:.3f} |")


# The command line in a child that prints its own peak resident memory on exit. (The child's
# getrusage peak would include this process's memory, which a fork copies before exec.)
PEAK_REPORTING_CLI = (
    "import atexit, sys; from fnet.cli import main; "
    "atexit.register(lambda: sys.stderr.write(open('/proc/self/status').read())); "
    "sys.argv[0] = 'fnet'; main()"
)


def scale(rows: int) -> None:
    with tempfile.TemporaryDirectory(prefix="fnet-cluster-") as work:
        base, truth, _, _ = synthetic(rows, rows // 10, 512, 0)
        store = write_synthetic_store(Path(work) / "synthetic.h5", base, truth)
        del base
        out = Path(work) / "clusters"
        command = [sys.executable, "-c", PEAK_REPORTING_CLI, "cluster", str(store), "-o", str(out), "--no-sheet", "--json"]
        start = time.perf_counter()
        child = subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        peak = int(child.stderr.split("VmHWM:")[-1].split()[0]) / 2**20  # kB -> GiB
        with open(out / "clusters.csv", newline="") as handle:
            labels = np.array([int(row["cluster"]) for row in csv.DictReader(handle)])
        pair = pairwise_scores(truth, labels)
        print(f"\n### Scale: fnet cluster on {rows:,} synthetic 512-D embeddings ({rows // 10:,} people)\n")
        print("| faces | clusters / people | wall time | peak memory | pairwise P | pairwise R | pairwise F |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        print(f"| {rows:,} | {len(np.unique(labels)):,} / {len(np.unique(truth)):,} | {seconds / 60:.1f} min | {peak:.2f} GiB | "
              f"{pair.precision:.3f} | {pair.recall:.3f} | {pair.f:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1_000_000, help="faces in the scale run")
    parser.add_argument("--no-scale", action="store_true")
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--threshold", type=float, default=fnet.load_model().info.threshold)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.no_quality:
        quality(args.threshold)
    if not args.no_scale:
        scale(args.scale)


if __name__ == "__main__":
    main()
