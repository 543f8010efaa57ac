"""`fnet index`: a FAISS index over an embeddings store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from fnet.cli.app import command
from fnet.cli.options import JsonOption, RayOption, check_output
from fnet.cli.output import result
from fnet.errors import SettingsError


@command
def index(
    store: Annotated[Path, typer.Argument(help="An HDF5 store made by `fnet embed`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The FAISS index file (metadata goes to OUTPUT.json).")],
    kind: Annotated[str, typer.Option(help="flat (exact), ivf, ivfpq (compressed), hnsw (graph) or codes128 (the paper's 128 bytes per face, exact search).")] = "flat",
    nlist: Annotated[int, typer.Option(help="IVF cells (0: about 4 sqrt(N)).")] = 0,
    nprobe: Annotated[int, typer.Option(help="IVF cells searched per query (0: automatic).")] = 0,
    add: Annotated[bool, typer.Option("--add", help="Extend the existing index with the store's new rows.")] = False,
    gpu: Annotated[bool, typer.Option("--gpu", help="Build on the GPU (needs faiss-gpu: pip install 'fnet[gpu]').")] = False,
    ray: RayOption = None,
    shards: Annotated[int, typer.Option(min=0, help="With --ray: row ranges added in parallel (0: one per cluster CPU).")] = 0,
    on_disk: Annotated[bool, typer.Option("--on-disk", help="With --ray: merge the shards' inverted lists into a file beside the index "
                                          "(OUTPUT.<id>.ivfdata, memory-mapped by searches) instead of in memory: for indexes larger than RAM.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Build a FAISS index over an embeddings store for fast k-NN search.

    `flat` is exact and needs no training; `ivf`, `ivfpq` and `hnsw` are approximate and
    much faster on large collections (see docs/search.md for measured recall and speed).
    Index ids are the store's row numbers. The index is written atomically. With --ray
    (ivf, ivfpq), the quantiser is trained once here and shards of rows are added in
    parallel on a Ray cluster, then merged (docs/scale.md).
    """
    from fnet.pipeline.index import build_index
    from fnet.retrieval.faiss_index import KINDS, IndexParams

    check_output(output, folder=False)
    if kind not in KINDS:
        raise SettingsError(f"--kind must be one of {', '.join(KINDS)}")
    start = time.perf_counter()
    params = IndexParams(kind=kind, nlist=nlist, nprobe=nprobe)
    if on_disk and not ray:
        raise SettingsError("--on-disk merges the shards of --ray; add --ray (local, auto or an address)")
    if ray:
        if add or gpu:
            raise SettingsError("--ray builds a new index on CPUs: without --add and --gpu")
        from fnet.scale.cluster import connected
        from fnet.scale.ray_index import build_index_on_ray

        with connected(ray):
            meta = build_index_on_ray(store, output, params, shards, on_disk=on_disk)
    else:
        meta = build_index(store, output, params, add=add, use_gpu=gpu)
    meta["seconds"] = round(time.perf_counter() - start, 2)
    result(meta, f"{output}: {meta['kind']} index of {meta['rows']} faces ({meta['model']}) in {meta['seconds']} s")
