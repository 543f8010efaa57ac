"""Open-set recognition on LFW: does `fnet search` name enrolled people and turn strangers away?

Every LFW photo's central face, aligned as the model aligns (facenet-casia: crop, margin 32)
and embedded by it (cached by bench/cluster.py's helper in bench/out/cluster/lfw-1*.h5).
Thresholds are swept in proportion to the model's verification threshold (facenet-casia's
1.24 gives the table's 0.6 to 1.1). People with two or more
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
of thresholds, the loosest threshold whose FPIR stays at or below 1%, and what
`fnet search --fpir 0.01` does: the threshold it estimates on the gallery alone, and the
DIR and FPIR that threshold gets on the probes.

Then what `fnet recognize` does with no flags (fnet.people.identify): each probe is named its
nearest enrolled person when within the gallery's own threshold, chosen for 1% FPIR from the
gallery and the LFW curve; DIR and FPIR at 10 / 100 / 1,000 / 5,000 enrolled people (a gallery
larger than the enrolled pool takes people LFW has one photo of, who then leave the strangers).

    python bench/open_set.py [--model dlib-resnet] [--sizes 10,100,1000] [--default-sizes 10,100,1000,5000] [--seed 0]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from cluster import lfw_people

import fnet
from fnet.retrieval.faiss_index import IndexParams, make_index
from fnet.retrieval.recognition import UNKNOWN, nearest_matches, threshold_for_fpir, vote

ROOT = Path(__file__).resolve().parents[1]
TABLE_THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1)
PER_PERSON = 10
STRANGER_PEOPLE = 500


def split(labels: np.ndarray, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({enrolled-pool person: their photo rows}, non-mated probe rows: the strangers' photos, then the single-photo people)."""
    rows = defaultdict(list)
    for row, label in enumerate(labels):
        rows[label].append(row)
    several = sorted(p for p, r in rows.items() if len(r) >= 2)
    strangers = set(rng.choice(several, STRANGER_PEOPLE, replace=False).tolist())
    pool = {p: np.array(rows[p]) for p in several if p not in strangers}
    non_mated = [r for p in strangers for r in rows[p][:PER_PERSON]] + [r[0] for r in rows.values() if len(r) == 1]
    return pool, np.array(non_mated)


def rates(x, labels, gallery_people, pool, non_mated, thresholds, target: float) -> tuple[np.ndarray, np.ndarray]:
    """(DIR, FPIR) per threshold for one gallery, through fnet's index and vote; and (threshold, DIR, FPIR)
    where `fnet search --fpir target` puts it, estimated on the gallery (NaN when it has too few people)."""
    gallery = np.array([pool[p][0] for p in gallery_people])
    mated = np.concatenate([pool[p][1 : 1 + PER_PERSON] for p in gallery_people])
    index = make_index(IndexParams("flat"), x.shape[1])
    index.add(x[gallery])
    names, paths = labels[gallery].tolist(), [str(r) for r in gallery]

    mated_matches = nearest_matches(x[mated], index, names, paths, k=5)  # searched once, voted at every threshold
    stranger_matches = nearest_matches(x[non_mated], index, names, paths, k=5)

    def measure(t: float) -> tuple[float, float]:
        named = np.array([vote(m, t)[0] for m in mated_matches])
        return float(np.mean(named == labels[mated])), float(np.mean([vote(m, t)[0] != UNKNOWN for m in stranger_matches]))

    try:
        t = threshold_for_fpir(index, names, lambda rows: x[gallery[rows]], target).threshold
        estimate = np.array([t, *measure(t)])
    except ValueError:  # too few people to estimate it
        estimate = np.full(3, np.nan)
    return np.array([measure(t) for t in thresholds]), estimate


def default_policy(x, labels, pool, non_mated, size: int, rng, info) -> tuple[float, float, float, str]:
    """(threshold, DIR, FPIR, why) of `fnet recognize` with no flags, on one random gallery of `size` people."""
    from fnet.people.identify import Identifier

    people = sorted(pool)
    chosen = rng.choice(people, min(size, len(people)), replace=False)
    gallery = [int(pool[p][0]) for p in chosen]
    singles = non_mated[np.isin(labels[non_mated], [lab for lab, n in zip(*np.unique(labels, return_counts=True)) if n == 1])]
    extra = singles[: max(0, size - len(people))]  # a gallery larger than the pool: single-photo people join it
    gallery = np.array(gallery + extra.tolist())
    strangers = np.setdiff1d(non_mated, extra)
    mated = np.concatenate([pool[p][1 : 1 + PER_PERSON] for p in chosen])
    identifier = Identifier(x[gallery], labels[gallery].tolist(), np.arange(len(gallery)))
    choice = identifier.threshold(info.name, info.threshold)
    named = np.array([i.name for i in identifier.identify(x[mated], choice.value)], object)
    refused = [i.name for i in identifier.identify(x[strangers], choice.value)]
    return choice.value, float(np.mean(named == labels[mated])), float(np.mean([n is not None for n in refused])), choice.why


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
    axis.set_title(f"fnet search on LFW, thresholds {thresholds[0]:.2f}-{thresholds[-1]:.2f} (circle: {default})", fontsize=9)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="facenet-casia", help="a pretrained model name")
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--default-sizes", default="10,100,1000,5000", help="gallery sizes for `fnet recognize` with no flags")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fpir", type=float, default=0.01, help="the target of `fnet search --fpir` to check")
    parser.add_argument("--plot", help="default: docs/img/open_set.png (facenet-casia), docs/img/open_set-MODEL.png")
    args = parser.parse_args()
    suffix = "" if args.model == "facenet-casia" else f"-{args.model}"
    args.plot = args.plot or str(ROOT / f"docs/img/open_set{suffix}.png")

    x, labels = lfw_people(1, args.model)
    info = fnet.load_pipeline(args.model).info
    default = info.threshold
    scale = default / 1.24  # the sweep follows the model's distances
    table_thresholds = tuple(round(t * scale, 4) for t in TABLE_THRESHOLDS)
    rng = np.random.default_rng(args.seed)
    pool, non_mated = split(labels, rng)
    people = sorted(pool)
    thresholds = np.unique(np.round(np.r_[np.arange(0.5, 1.45, 0.05) * scale, table_thresholds, default], 4))
    print(f"LFW: {len(x):,} faces by {args.model}; enrolled pool {len(people):,} people, {len(non_mated):,} non-mated probes; k=5")
    curves, estimates = {}, {}
    for size in (int(s) for s in args.sizes.split(",")):
        draws = max(1, min(20, 1000 // size))
        runs = [rates(x, labels, rng.choice(people, size, replace=False), pool, non_mated, thresholds, args.fpir) for _ in range(draws)]
        curves[size] = np.mean([curve for curve, _ in runs], axis=0)
        estimates[size] = np.mean([estimate for _, estimate in runs], axis=0)
        print(f"gallery {size:,}: {draws} random galleries", flush=True)

    shown = [t for t in thresholds if t in table_thresholds or t == default]
    print("\n| threshold | " + " | ".join(f"{s:,} enrolled: DIR / FPIR" for s in curves) + " |")
    print("| --- |" + " --- |" * len(curves))
    for t in shown:
        i = int(np.flatnonzero(thresholds == t)[0])
        cells = " | ".join(f"{r[i, 0]:.1%} / {r[i, 1]:.2%}" for r in curves.values())
        print(f"| {t:g}{' (model)' if t == default else ''} | {cells} |")
    cells = " | ".join("too few people" if np.isnan(e[0]) else f"{e[1]:.1%} / {e[2]:.2%} (threshold {e[0]:.2f})" for e in estimates.values())
    print(f"| `--fpir {args.fpir:g}` (estimated on the gallery) | {cells} |")
    for size, r in curves.items():
        ok = np.flatnonzero(r[:, 1] <= 0.01)
        if not len(ok):
            print(f"{size:,} enrolled: FPIR above 1% at every threshold of the sweep")
            continue
        i = ok[-1]
        print(f"{size:,} enrolled: loosest threshold with FPIR <= 1%: {thresholds[i]:.2f} (DIR {r[i, 0]:.1%}, FPIR {r[i, 1]:.2%})")
    plot(curves, thresholds, default, Path(args.plot))
    print(f"plot: {args.plot}")

    print("\n`fnet recognize` with no flags (nearest person within the gallery's threshold, chosen for FPIR 1%):")
    print("| enrolled | galleries | threshold (mean) | DIR | FPIR | how the threshold was chosen (first gallery) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in (int(s) for s in args.default_sizes.split(",")):
        draws = max(1, min(20, 1000 // size))
        runs = [default_policy(x, labels, pool, non_mated, size, rng, info) for _ in range(draws)]
        t, dir_, fpir = (np.mean([r[i] for r in runs]) for i in range(3))
        print(f"| {size:,} | {draws} | {t:.3f} | {dir_:.1%} | {fpir:.2%} | {runs[0][3].split(': ', 1)[1]} |", flush=True)


if __name__ == "__main__":
    main()
