"""Peak memory of whole commands over photo libraries of growing size: it must stay flat.

`fnet align` and `fnet embed --align` run as child processes (start-up, decoding, detection,
writing included) on library trees of N photos (bench/photo_sets.py: 85% LFW 250 px, 12%
0.3-14 MP, 3% 12 MP phone photos stored sideways with an EXIF tag). The peak resident set
of each child comes from the kernel (wait4's ru_maxrss). Goal: flat within 10% from the
smallest to the largest tree, and under 2 GiB.

    python bench/memory.py [--sizes 1000,5000,20000] [--commands align,embed] [--pool] [--repeat N]

--pool adds a run over every large photo the trees draw from, once: a small tree holds only
some of them, so its peak can miss the heaviest photo a larger tree has.
--repeat runs each command on each tree N times: one tree's peak moves between runs (embed
--align over 1,000 photos: 0.73-0.83 GiB), as threads' timing decides which photos' buffers
meet in the heap. Flatness is then the largest peak at each size against the smallest size's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from photo_sets import describe, large_pool, library_tree

from fnet.cli.allocator import allocator_in_use

FNET = [sys.executable, "-m", "fnet"]


def run_measured(command: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in GiB, exit code) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss / 2**20, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--commands", default="align,embed")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pool", action="store_true", help="also each large photo of the trees once (what a small tree may miss)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each command on each tree")
    args = parser.parse_args()
    commands = {
        "align": lambda tree, out: [*FNET, "align", str(tree), "-o", str(out / "aligned"), "--device", args.device],
        "embed": lambda tree, out: [*FNET, "embed", str(tree), "-o", str(out / "faces.h5"), "--align", "--device", args.device],
    }
    print(f"allocator: {allocator_in_use()}\n")
    print("| command | photos | seconds | photos/s | peak RSS" + (" (each run)" if args.repeat > 1 else "") + " | exit |")
    print("| --- | --- | --- | --- | --- | --- |")
    peaks: dict[str, list[float]] = {}
    trees = [(f"{size:,}", size, library_tree(size), True) for size in (int(v) for v in args.sizes.split(","))]
    if args.pool:  # not a library size: left out of the flatness figure
        trees.append(("the 180 large photos the trees draw from, once", 180, large_pool(), False))
    for label_size, size, tree, library in trees:
        print(f"<!-- {tree}: {describe(tree)} -->", flush=True)
        for name in args.commands.split(","):
            runs = [measure(commands[name], tree) for _ in range(args.repeat)]
            seconds, peak, code = min(r[0] for r in runs), max(r[1] for r in runs), next((r[2] for r in runs if r[2]), 0)
            if library:
                peaks.setdefault(name, []).append(peak)
            label = f"fnet {name}" + (" --align" if name == "embed" else "")
            each = f" ({' / '.join(f'{r[1]:.2f}' for r in runs)})" if len(runs) > 1 else ""
            print(f"| `{label}` | {label_size} | {seconds:.0f} | {size / seconds:.1f} | {peak:.2f} GiB{each} | {code} |", flush=True)
    for name, values in peaks.items():
        print(f"{name}: peak RSS from {values[0]:.2f} to {values[-1]:.2f} GiB ({values[-1] / values[0] - 1:+.1%}); largest {max(values):.2f} GiB")


def measure(command, tree: Path) -> tuple[float, float, int]:
    """run_measured on a fresh output folder, removed afterwards."""
    out = Path(tempfile.mkdtemp(prefix="fnet-memory-"))
    try:
        return run_measured(command(tree, out))
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
