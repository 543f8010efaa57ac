"""Torch's CPU thread pool on a shared machine: speed idle and beside other CPU-bound work.

Each setting runs in a fresh child process; the background load is N busy Python processes
started before and stopped after. Two measurements:
- the embed kernel: the same real LFW crops embedded for a fixed time (faces/s);
- a whole command: `fnet embed PHOTOS --align` over 300 LFW photos (photos/s, wall clock).
The settings are the thread count (FNET_THREADS) and OpenMP's wait policy (ACTIVE spins at
barriers, PASSIVE sleeps): spinning threads fight the other processes for the cores.

    python bench/threads.py [--seconds 8] [--hogs 2] [--photos 300]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from photo_sets import lfw_set

CHILD = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, "bench")
from embed_speed import real_crops
import fnet
model = fnet.load_model(device="cpu")
crops = real_crops(32)
model.embed(crops)
done, start = 0, time.perf_counter()
while time.perf_counter() - start < float(sys.argv[1]):
    model.embed(crops)
    done += len(crops)
import torch
print(json.dumps({"faces_per_s": done / (time.perf_counter() - start), "threads": torch.get_num_threads()}))
"""


def beside_busy_processes(hogs: int, command: list[str], env: dict) -> tuple[str, float]:
    """(stdout, wall seconds) of `command` while `hogs` busy processes run."""
    background = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
    try:
        time.sleep(0.5 if hogs else 0)
        start = time.perf_counter()
        result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=True, timeout=900)
        return result.stdout, time.perf_counter() - start
    finally:
        for process in background:
            process.kill()
            process.wait()


def kernel(seconds: float, hogs: int, env: dict) -> dict:
    output, _ = beside_busy_processes(hogs, [sys.executable, "-c", CHILD, str(seconds)], env)
    return json.loads(output.strip().splitlines()[-1])


def whole_command(photos: Path, hogs: int, env: dict) -> float:
    """photos/s of `fnet embed --align`, wall clock, start-up included."""
    with tempfile.TemporaryDirectory() as work:
        command = [sys.executable, "-m", "fnet", "embed", str(photos), "-o", f"{work}/f.h5", "--align", "--device", "cpu"]
        _, seconds = beside_busy_processes(hogs, command, env)
    return sum(1 for _ in photos.rglob("*.jpg")) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--hogs", type=int, default=2, help="busy processes beside the measured one")
    parser.add_argument("--photos", type=int, default=300, help="LFW photos for the whole-command measurement")
    args = parser.parse_args()
    # explicit wait policies: the command line sets PASSIVE when unset, the kernel child would not
    settings = {
        "spinning (OMP_WAIT_POLICY=ACTIVE)": {"OMP_WAIT_POLICY": "ACTIVE"},
        "1 thread, spinning": {"FNET_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"},
        "fnet default (PASSIVE)": {"OMP_WAIT_POLICY": "PASSIVE"},
        "1 thread, PASSIVE": {"FNET_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"},
    }
    photos = lfw_set(args.photos)
    print(f"{os.cpu_count()} CPUs; kernel: 32 real LFW crops per batch for {args.seconds:g} s; "
          f"whole command: `fnet embed --align` over {args.photos} LFW photos, wall clock\n")
    print(f"| setting | threads | kernel idle, faces/s | kernel beside {args.hogs} busy, faces/s "
          f"| command idle, photos/s | command beside {args.hogs} busy, photos/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, env in settings.items():
        idle, busy = kernel(args.seconds, 0, env), kernel(args.seconds, args.hogs, env)
        command_idle, command_busy = whole_command(photos, 0, env), whole_command(photos, args.hogs, env)
        print(f"| {name} | {idle['threads']} | {idle['faces_per_s']:.1f} | {busy['faces_per_s']:.1f} "
              f"| {command_idle:.1f} | {command_busy:.1f} |", flush=True)


if __name__ == "__main__":
    main()
