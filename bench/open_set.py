"""Open-set recognition on LFW: does `fnet search` name enrolled people and turn strangers away?

Every LFW photo's central face, aligned (crop, margin 32) and embedded by facenet-casia
(cached by bench/cluster.py's helper in bench/out/cluster/lfw-1.h5). People with two or more
photos are split at random into an enrolled pool and a stranger pool. A gallery of N
enrolled people holds one photo of each (their first: a watch list built from ID photos).
Searched through fnet's own flat index and weighted k-NN vote (k = 5):

- mated probes: the gallery people's other photos (at most 10 each, so that the few people
  with hundreds of photos do not decide the figure); DIR, the detection and identification
  rate, is the share named correctly;
- non-mated probes: the stranger pool's photos (at most 10 each) and every person LFW has a
  single photo of; FPIR, the false positive identification rate, is the share given a name.

A stranger is named when any of the N enrolled faces falls within the threshold, so FPIR
grows with N: the threshold that suits a door with ten people is wrong for a thousand.
Reported per gallery size (averaged over random galleries for the small ones) for a sweep
of thresholds, and the loosest threshold whose FPIR stays at or below 1%.

    python bench/open_set.py [--sizes 10,100,1000] [--seed 0]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from cluster import lfw_people

import fnet
from fnet.index import IndexParams, make_index
from fnet.search import recognize

ROOT = Path(__file__).resolve().parents[1]
TABLE_THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1)
PER_PERSON = 10
STRANGER_PEOPLE = 500


def split(labels: np.ndarray, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({enrolled-pool person: their photo rows}, non-mated probe rows)."""
    rows = defaultdict(list)
    for row, label in enumerate(labels):
        rows[label].append(row)
    several = sorted(p for p, r in rows.items() if len(r) >= 2)
    strangers = set(rng.choice(several, STRANGER_PEOPLE, replace=False).tolist())
    pool = {p: np.array(rows[p]) for p in several if p not in strangers}
    non_mated = [r for p in strangers for r in rows[p][:PER_PERSON]] + [r[0] for r in rows.values() if len(r) == 1]
    return pool, np.array(non_mated)


def rates(x, labels, gallery_people, pool, non_mated, thresholds) -> np.ndarray:
    """(DIR, FPIR) per threshold for one gallery, through fnet's index and vote."""
    gallery = np.array([pool[p][0] for p in gallery_people])
    mated = np.concatenate([pool[p][1 : 1 + PER_PERSON] for p in gallery_people])
    index = make_index(IndexParams("flat"), x.shape[1])
    index.add(x[gallery])
    names, paths = labels[gallery].tolist(), [str(r) for r in gallery]
    out = []
    for t in thresholds:
        named = [r.identity for r in recognize(x[mated], index, names, paths, k=5, threshold=t)]
        strangers = recognize(x[non_mated], index, names, paths, k=5, threshold=t)
        out.append((np.mean(np.array(named) == labels[mated]), np.mean([r.known for r in strangers])))
    return np.array(out)


def plot(curves: dict[int, np.ndarray], thresholds: np.ndarray, default: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4.5), dpi=120)
    at_default = int(np.argmin(np.abs(thresholds - default)))
    for size, r in curves.items():
        named = r[:, 1] > 0  # thresholds at which no stranger was named have no place on a log axis
        (line,) = axis.plot(r[named, 1], r[named, 0], marker=".", label=f"{size:,} enrolled")
        axis.plot(r[at_default, 1], r[at_default, 0], "o", markersize=9, mfc="none", color=line.get_color())
    axis.set_xscale("log")
    axis.set_xlabel("strangers given a name (FPIR)")
    axis.set_ylabel("enrolled people named correctly (DIR)")
    axis.set_title(f"fnet search on LFW, thresholds {thresholds[0]:.1f}-{thresholds[-1]:.2f} (circle: {default})", fontsize=9)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default=str(ROOT / "docs/img/open_set.png"))
    args = parser.parse_args()

    x, labels = lfw_people(1)
    default = fnet.load_model().info.threshold
    rng = np.random.default_rng(args.seed)
    pool, non_mated = split(labels, rng)
    people = sorted(pool)
    thresholds = np.unique(np.round(np.r_[np.arange(0.5, 1.45, 0.05), TABLE_THRESHOLDS, default], 4))
    print(f"LFW: {len(x):,} faces; enrolled pool {len(people):,} people, {len(non_mated):,} non-mated probes; k=5")
    curves = {}
    for size in (int(s) for s in args.sizes.split(",")):
        draws = max(1, min(20, 1000 // size))
        curves[size] = np.mean([
            rates(x, labels, rng.choice(people, size, replace=False), pool, non_mated, thresholds) for _ in range(draws)
        ], axis=0)
        print(f"gallery {size:,}: {draws} random galleries", flush=True)

    shown = [t for t in thresholds if t in TABLE_THRESHOLDS or t == default]
    print("\n| threshold | " + " | ".join(f"{s:,} enrolled: DIR / FPIR" for s in curves) + " |")
    print("| --- |" + " --- |" * len(curves))
    for t in shown:
        i = int(np.flatnonzero(thresholds == t)[0])
        cells = " | ".join(f"{r[i, 0]:.1%} / {r[i, 1]:.2%}" for r in curves.values())
        print(f"| {t:g}{' (model)' if t == default else ''} | {cells} |")
    for size, r in curves.items():
        ok = np.flatnonzero(r[:, 1] <= 0.01)
        if not len(ok):
            print(f"{size:,} enrolled: FPIR above 1% at every threshold of the sweep")
            continue
        i = ok[-1]
        print(f"{size:,} enrolled: loosest threshold with FPIR <= 1%: {thresholds[i]:.2f} (DIR {r[i, 0]:.1%}, FPIR {r[i, 1]:.2%})")
    plot(curves, thresholds, default, Path(args.plot))
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
