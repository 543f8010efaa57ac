"""The paper's 128 bytes per face: LFW verification accuracy of compact codes against float embeddings.

Every LFW photo's central face embedded by facenet-casia (crop, margin 32; cached by
bench/cluster.py's helper). The codes are trained (PCA, and each dimension's byte range) on
the photos of LFW people who appear in no pair of View 2, so nothing evaluated is trained
on; every photo is then encoded and decoded (FAISS `sa_encode` / `sa_decode`, as `fnet index
--kind codes128` stores them), and the 6,000 pairs are scored with the usual 10 folds.

    python bench/compact_codes.py
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
from cluster import lfw_people

from fnet.evaluation.verification import Evaluation
from fnet.pipeline.evaluate import read_pairs

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"
CODES = {  # name -> FAISS factory string
    "float32 (2,048 bytes)": None,
    "SQ8 (512 bytes)": "SQ8",
    "PCA 128 + SQ8 (128 bytes; `fnet index --kind codes128`)": "PCA128,SQ8",
    "PCA 256 + SQ4 (128 bytes)": "PCA256,SQ4",
    "PCA 64 + SQ8 (64 bytes)": "PCA64,SQ8",
}


def main() -> None:
    x, labels = lfw_people(1)
    from fnet.io.store import Store

    with Store(Path(__file__).resolve().parents[1] / "bench/out/cluster/lfw-1.h5") as store:
        paths = store.paths()
    pairs = read_pairs(LFW / "pairs.txt", LFW / "lfw-deepfunneled")
    row = {p: i for i, p in enumerate(paths)}
    key = lambda p: p.relative_to(LFW / "lfw-deepfunneled").as_posix()
    paired = {key(p.a).split("/")[0] for p in pairs} | {key(p.b).split("/")[0] for p in pairs}
    train = np.array([i for i, p in enumerate(paths) if p.split("/")[0] not in paired])
    print(f"LFW View 2, 6,000 pairs; codes trained on {len(train):,} photos of {len(set(labels[train])):,} people in no pair")
    print("| representation | bytes per face | accuracy (10-fold) | VAL @ FAR=1e-3 | vs float |")
    print("| --- | --- | --- | --- | --- |")
    base = None
    for name, spec in CODES.items():
        e = x
        if spec:
            codec = faiss.index_factory(x.shape[1], spec)
            codec.train(x[train])
            e = codec.sa_decode(codec.sa_encode(x))
            e = e / np.linalg.norm(e, axis=1, keepdims=True)
        a, b = (np.stack([e[row[key(getattr(p, side))]] for p in pairs]) for side in ("a", "b"))
        m = Evaluation(pairs, a, b, np.array([p.same for p in pairs]), np.array([p.fold for p in pairs])).metrics()
        base = base if base is not None else m["accuracy"]
        size = codec.sa_code_size() if spec else 4 * x.shape[1]
        print(f"| {name} | {size} | {m['accuracy']:.2%} ± {m['accuracy_standard_error']:.2%} | {m['val']:.2%} | "
              f"{(m['accuracy'] - base) * 100:+.2f} points |", flush=True)


if __name__ == "__main__":
    main()
