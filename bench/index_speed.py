"""Search speed and recall of each index kind against exact search, on 1M synthetic face embeddings.

The vectors imitate face embeddings: 512-D unit vectors, 10 photos each of 100,000 people
(same-person squared L2 about 0.5, different people about 2). Queries are new photos of
enrolled people. Reported per kind: build time, index size, process peak memory, queries/s
(batches of 100, 2 threads) and recall@1 / recall@10 of the exact nearest neighbour, and
how often the top hit is the right person. Real embeddings: --store faces.h5.

    python bench/index_speed.py [--rows 1000000] [--queries 1000] [--kinds flat,ivf,ivfpq,hnsw]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from synthetic import synthetic, write_synthetic_store

from fnet.io.store import Store
from fnet.pipeline.index import build_index, load_index
from fnet.retrieval.faiss_index import IndexParams, auto_params, search


def qps(index, queries: np.ndarray) -> tuple[float, np.ndarray]:
    search(index, queries[:100], 10)  # warm-up
    start = time.perf_counter()
    ids = np.concatenate([search(index, queries[i : i + 100], 10)[1] for i in range(0, len(queries), 100)])
    return len(queries) / (time.perf_counter() - start), ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--kinds", default="flat,ivf,ivfpq,hnsw")
    parser.add_argument("--store", help="use this real embeddings store instead (queries: a sample of its rows)")
    parser.add_argument("--nprobe", default="", help="extra IVF probe counts to measure, e.g. 64,128")
    parser.add_argument("--nlist", type=int, default=0, help="IVF cells (default: automatic)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fnet-bench-"))
    if args.store:
        store_path = Path(args.store)
        with Store(store_path) as store:
            base, base_labels = store.embeddings(), np.array(store.labels())
        picks = np.random.default_rng(0).choice(len(base), min(args.queries, len(base)), replace=False)
        queries, query_labels = base[picks], base_labels[picks]
    else:
        base, base_labels, queries, query_labels = synthetic(args.rows, args.rows // 10, 512, args.queries)
        store_path = write_synthetic_store(work / "synthetic.h5", base, base_labels, threshold=1.17)
    print(f"{len(base):,} vectors of {base.shape[1]} dimensions, {len(queries)} queries")

    exact_ids = None
    flat_rate = None
    print(f"{'kind':<7} {'params':<28} {'build s':>8} {'size MB':>8} {'peak RSS GB':>11} {'queries/s':>10} {'x flat':>7} {'R@1':>6} {'R@10':>6} {'person@1':>8}")
    for kind in args.kinds.split(","):
        params = auto_params(IndexParams(kind, nlist=args.nlist if kind.startswith("ivf") else 0), len(base), base.shape[1])
        start = time.perf_counter()
        build_index(store_path, work / f"{kind}.faiss", params)
        built = time.perf_counter() - start
        index, _ = load_index(work / f"{kind}.faiss")
        rate, ids = qps(index, queries)
        if exact_ids is None:
            if kind != "flat":
                raise SystemExit("list flat first: it is the reference")
            exact_ids, flat_rate = ids, rate
        r1 = (ids[:, 0] == exact_ids[:, 0]).mean()
        r10 = np.mean([truth in found for truth, found in zip(exact_ids[:, 0], ids)])
        person = (base_labels[ids[:, 0]] == query_labels).mean()
        detail = {"flat": "exact", "ivf": f"nlist {params.nlist}, nprobe {params.nprobe}",
                  "ivfpq": f"nlist {params.nlist}, nprobe {params.nprobe}, m {params.pq_m}", "hnsw": f"M {params.hnsw_m}, efSearch {params.ef_search}"}[kind]
        size = (work / f"{kind}.faiss").stat().st_size / 2**20
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"{kind:<7} {detail:<28} {built:>8.1f} {size:>8.0f} {peak:>11.1f} {rate:>10.0f} {rate / flat_rate:>7.1f} {r1:>6.3f} {r10:>6.3f} {person:>8.3f}", flush=True)
        for nprobe in [int(n) for n in args.nprobe.split(",") if n] if kind.startswith("ivf") else []:
            index.nprobe = nprobe
            rate, ids = qps(index, queries)
            r1 = (ids[:, 0] == exact_ids[:, 0]).mean()
            r10 = np.mean([truth in found for truth, found in zip(exact_ids[:, 0], ids)])
            person = (base_labels[ids[:, 0]] == query_labels).mean()
            detail = f"  same, --nprobe {nprobe}"
            print(f"{kind:<7} {detail:<28} {'':>8} {'':>8} {'':>11} {rate:>10.0f} {rate / flat_rate:>7.1f} {r1:>6.3f} {r10:>6.3f} {person:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
