"""`fnet embed --align --ray` against plain `fnet embed --align` on this machine: whole commands, same photos, same run.

Each row is one fresh `fnet embed` process (start-up, decoding, detection, embedding, writing):
plain fnet; Ray started by the command itself (`--ray local`); and an already running Ray cluster
(ray.cluster_utils: a head node that only drives, plus worker nodes on this machine) with one
node of 2 CPUs and with two nodes of 1 CPU, as `ray start` would give. Photos: bench/photo_sets.py's
library tree (85% LFW 250 px, 12% 0.3-14 MP, 3% 12 MP phone photos). Peak memory: the driver's
from the kernel (wait4), each actor's as the largest VmHWM of Ray's embedding actor processes,
sampled while it runs. Every setup runs on two library sizes; the difference gives its steady
rate (photos per second once running) and the fixed cost of starting (seconds beyond what the
steady rate explains). Goal (issue #16): Ray on one node no more than 15% below plain fnet.

    python bench/ray_scale.py [--sizes 200,600] [--setups plain,local,local-default,node1,node1-default,nodes2]

`local-default` and `node1-default` give no actor options: on a node of 2 CPUs, fnet's default is
one single-thread replica per CPU (two actors), which is what a user who types `--ray local` gets.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from memory import FNET, run_measured
from photo_sets import describe, library_tree

NODE_MEMORY = {"object_store_memory": 300 * 2**20}
ONE_BY_TWO = ["--actors", "1", "--actor-cpus", "2"]  # plain fnet's own parallelism: one model, two threads
# name: (row label, CPUs of each worker node of a running cluster or None for `--ray local`, actor options)
SETUPS = {
    "local": ("`--ray local` (Ray started by the command), 1 actor x 2 CPUs", None, ONE_BY_TWO),
    "local-default": ("`--ray local`, default replicas (2 actors x 1 CPU)", None, []),
    "node1": ("running cluster, 1 node x 2 CPUs, 1 actor x 2 CPUs", [2], ONE_BY_TWO),
    "node1-default": ("running cluster, 1 node x 2 CPUs, default replicas (2 actors x 1 CPU)", [2], []),
    "nodes2": ("running cluster, 2 nodes x 1 CPU, 2 actors x 1 CPU", [1, 1], ["--actors", "2", "--actor-cpus", "1"]),
}


class ActorMemory:
    """The largest peak RSS (VmHWM) of any Ray embedding actor process seen while it runs."""

    def __init__(self):
        self.peak_kib, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            for proc in Path("/proc").glob("[0-9]*"):
                try:
                    if b"EmbedActor" not in (proc / "cmdline").read_bytes():
                        continue
                    hwm = next(line for line in (proc / "status").read_text().splitlines() if line.startswith("VmHWM"))
                except (OSError, StopIteration):
                    continue
                self.peak_kib = max(self.peak_kib, int(hwm.split()[1]))


def measure(command: list[str], tree: Path) -> tuple[float, float, float, int]:
    """(seconds, driver peak RSS GiB, actor peak RSS GiB, exit code) of one whole command."""
    out = Path(tempfile.mkdtemp(prefix="fnet-ray-"))
    try:
        with ActorMemory() as actors:
            seconds, driver_gib, code = run_measured([*command, str(tree), "-o", str(out / "faces.h5")])
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return seconds, driver_gib, actors.peak_kib / 2**20, code


def report(name: str, command: list[str], trees: list[tuple[int, Path]], plain: float | None) -> float:
    """Print one setup's row; return its steady rate."""
    (small, small_tree), (large, large_tree) = trees
    runs = [measure(command, tree) for tree in (small_tree, large_tree)]
    rate = (large - small) / (runs[1][0] - runs[0][0])
    fixed = runs[1][0] - large / rate
    seconds = " / ".join(f"{run[0]:.1f}" for run in runs)
    whole = " / ".join(f"{n / run[0]:.1f}" for n, run in zip((small, large), runs))
    actor = f"{max(run[2] for run in runs):.2f} GiB" if runs[0][2] else "-"
    print(f"| {name} | {seconds} | {whole} | {rate:.2f} | {rate / (plain or rate):.2f}x | {fixed:.1f} | "
          f"{max(run[1] for run in runs):.2f} GiB | {actor} | {max(run[3] for run in runs)} |", flush=True)
    return rate


def on_cluster(nodes: list[int], run) -> float:
    """Run `run(address)` against a Ray cluster of worker nodes with these CPU counts, started here."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**NODE_MEMORY, "num_cpus": 0, "include_dashboard": False})
    try:
        for cpus in nodes:
            cluster.add_node(num_cpus=cpus, **NODE_MEMORY)
        cluster.wait_for_nodes()
        return run(cluster.address)
    finally:
        ray.shutdown()
        cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200,600")
    parser.add_argument("--setups", default=",".join(["plain", *SETUPS]), help="which rows to run (plain always runs)")
    args = parser.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no network, in the clusters started here too
    trees = [(size, library_tree(size)) for size in (int(v) for v in args.sizes.split(","))]
    for _, tree in trees:
        print(f"<!-- {tree}: {describe(tree)} -->")
        for path in tree.rglob("*"):  # every run reads the photos from the page cache
            if path.is_file():
                path.read_bytes()
    embed = [*FNET, "embed", "--align", "--device", "cpu", "--json"]
    sizes = " / ".join(str(size) for size, _ in trees)
    print(f"| setup | seconds ({sizes} photos) | photos/s, whole command | steady photos/s | steady vs plain "
          "| fixed cost (s) | driver peak RSS | actor peak RSS | exit |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    plain = report("plain `fnet embed --align`", embed, trees, None)
    for key in args.setups.split(","):
        if key == "plain":
            continue
        label, nodes, actors = SETUPS[key]
        if nodes is None:  # Ray started by the command
            report(label, [*embed, "--ray", "local", *actors], trees, plain)
        else:
            on_cluster(nodes, lambda address, label=label, actors=actors: report(label, [*embed, "--ray", address, *actors], trees, plain))


if __name__ == "__main__":
    main()
