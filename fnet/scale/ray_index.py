"""``fnet index --ray``: an IVF / IVF-PQ index built from shards of a store in parallel on Ray.

The quantiser (and PQ codebooks) are trained once, here, on a sample of the store. Ray tasks each
add one contiguous range of rows to a copy of that empty trained index, with the row numbers as
ids, and write it as an immutable shard file beside the output (``OUT.shards/``, read by every
node: a shared file system). The shards are then merged in row order into one index, saved with
its sidecar as ``fnet index`` saves it; its ids are the store's rows, as in a single-process build.
With ``on_disk``, the merge streams the shards' lists (memory-mapped) into one file beside the index
(FAISS's OnDiskInvertedLists, as ``faiss.contrib.ondisk``): the driver never holds the whole index,
and searches map the lists instead of loading them. A rerun after a crash reuses the trained index
and the shards already written.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
from pathlib import Path

from fnet.io.atomic import atomic_path
from fnet.io.lock import exclusive
from fnet.io.stores import open_store
from fnet.pipeline.index import add_rows, ivfdata_path, save_index, store_meta, trained_index
from fnet.retrieval.faiss_index import IndexFileError, IndexParams, _faiss, quiet_stdout
from fnet.scale.cluster import import_ray, ray_failures

SHARDABLE = ("ivf", "ivfpq")  # indexes whose inverted lists merge; flat needs no training, HNSW does not merge


def build_index_on_ray(store_path: Path, output: Path, params: IndexParams, shards: int = 0, on_disk: bool = False) -> dict:
    """Build the index of a store from `shards` row ranges added in parallel (0: one per cluster CPU);
    `on_disk`: its inverted lists merged into a file beside it rather than in memory."""
    ray = import_ray()
    store_path, output = Path(store_path), Path(output)
    if params.kind not in SHARDABLE:
        raise IndexFileError(f"--ray builds {' or '.join(SHARDABLE)} indexes (shards of inverted lists merge); "
                             f"--kind {params.kind} is built in one process")
    if output.resolve() == store_path.resolve():
        raise IndexFileError(f"{output}: is the store itself; the index needs another file name (e.g. faces.faiss)")
    folder = output.with_name(output.name + ".shards")
    with exclusive(output), open_store(store_path) as store:
        rows = len(store)
        plan = {"store": str(store_path.resolve()), "rows": rows, "created": store.attrs.get("created"), "params": dataclasses.asdict(params)}
        params, trained = _trained(folder, plan, store, store_path, params)
        count = shards or max(1, int(ray.cluster_resources().get("CPU", 1)))
        bounds = [rows * i // count for i in range(count + 1)]
        ranges = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
        paths = [folder / f"shard-{a:012d}-{b:012d}.faiss" for a, b in ranges]
        add_task = ray.remote(num_cpus=1, max_retries=3)(_add_range)
        waiting = [add_task.remote(str(folder / "trained.faiss"), str(store_path), a, b, str(path))
                   for (a, b), path in zip(ranges, paths) if not path.exists()]
        with ray_failures("adding rows to the shards"):
            ray.get(waiting)
        # In row order: the merged ids stay the store's rows.
        index, lists = (_merged_on_disk(trained, paths, ivfdata_path(output)) if on_disk
                        else (_merged_in_memory(trained, paths), None))
        meta = {"kind": params.kind, **dataclasses.asdict(params), **store_meta(store, store_path, int(index.ntotal)),
                "shards": len(paths), **({"ivfdata": lists.name} if lists else {})}
        save_index(index, meta, output)
        shutil.rmtree(folder, ignore_errors=True)
    return meta


def _merged_in_memory(trained, paths: list[Path]):
    for path in paths:
        trained.merge_from(_faiss().read_index(str(path)), 0)
    return trained


def _merged_on_disk(trained, paths: list[Path], lists: Path):
    """(the trained index with the shards' lists merged into the file `lists`, that file)."""
    faiss = _faiss()
    shards = [faiss.read_index(str(path), faiss.IO_FLAG_MMAP) for path in paths]  # mapped, not loaded
    sources = faiss.InvertedListsPtrVector()
    for shard in shards:
        sources.push_back(faiss.extract_index_ivf(shard).invlists)
    ivf = faiss.extract_index_ivf(trained)
    merged = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(lists))
    with quiet_stdout():
        trained.ntotal = ivf.ntotal = merged.merge_from_multiple(sources.data(), sources.size(), False)
    ivf.replace_invlists(merged, True)
    merged.this.disown()  # the index owns it now
    return trained, lists


def _trained(folder: Path, plan: dict, store, store_path: Path, params: IndexParams):
    """(the sizes chosen, the empty trained index): those a crashed run saved for this store and these options, or new ones."""
    faiss = _faiss()
    saved = folder / "plan.json"
    if saved.exists():
        earlier = json.loads(saved.read_text())
        if {k: v for k, v in earlier.items() if k != "chosen"} == plan:
            return IndexParams(**earlier["chosen"]), faiss.read_index(str(folder / "trained.faiss"))
    shutil.rmtree(folder, ignore_errors=True)  # another store or other options: start again
    folder.mkdir(parents=True)
    chosen, index = trained_index(store, store_path, params)
    with atomic_path(folder / "trained.faiss") as tmp:
        faiss.write_index(index, str(tmp))
    with atomic_path(saved) as tmp:
        tmp.write_text(json.dumps({**plan, "chosen": dataclasses.asdict(chosen)}))
    return chosen, index


def _add_range(trained: str, store_path: str, start: int, stop: int, shard: str) -> int:
    """A Ray task: rows [start, stop) of the store added to a copy of the trained index, saved as a shard."""
    faiss = _faiss()
    index = faiss.read_index(trained)
    with open_store(store_path) as store:
        if len(store) < stop:
            raise IndexFileError(f"{store_path}: has {len(store)} rows, fewer than when the index was planned")
        add_rows(index, store, Path(store_path), start, stop, with_ids=True)
    with atomic_path(shard) as tmp:
        faiss.write_index(index, str(tmp))
    return stop - start
