"""Torch's CPU thread pool on a shared machine: speed idle and beside other CPU-bound work.

Each setting runs in a fresh child process; the background load is N busy Python processes
started before and stopped after. Two measurements:
- the embed kernel: the same real LFW crops embedded for a fixed time (faces/s);
- whole commands: `fnet embed PHOTOS --align` and `fnet align` over 300 LFW photos (photos/s,
  wall clock).
The settings are the thread count (FNET_THREADS) and OpenMP's wait policy (ACTIVE spins at
barriers, PASSIVE sleeps, libgomp's GOMP_SPINCOUNT spins that long first): spinning threads
fight the other processes for the cores, sleeping ones take a while to wake.

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


def whole_command(photos: Path, hogs: int, env: dict, stage: str) -> float:
    """photos/s of `fnet embed --align` or `fnet align`, wall clock, start-up included."""
    with tempfile.TemporaryDirectory() as work:
        output = ["embed", str(photos), "-o", f"{work}/f.h5", "--align"] if stage == "embed" else ["align", str(photos), "-o", f"{work}/crops"]
        _, seconds = beside_busy_processes(hogs, [sys.executable, "-m", "fnet", *output, "--device", "cpu"], env)
    return sum(1 for _ in photos.rglob("*.jpg")) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--hogs", type=int, default=2, help="busy processes beside the measured one")
    parser.add_argument("--photos", type=int, default=300, help="LFW photos for the whole-command measurement")
    args = parser.parse_args()
    # Explicit wait policies: the kernel child does not go through the command line, which sets
    # PASSIVE with GOMP_SPINCOUNT=30000 when OMP_WAIT_POLICY is unset (fnet.cli.process).
    settings = {
        "spinning (OMP_WAIT_POLICY=ACTIVE)": {"OMP_WAIT_POLICY": "ACTIVE"},
        "libgomp's default (3 ms spin, GOMP_SPINCOUNT=300000)": {"GOMP_SPINCOUNT": "300000"},
        "sleep at once (OMP_WAIT_POLICY=PASSIVE)": {"OMP_WAIT_POLICY": "PASSIVE"},
        "fnet's default (PASSIVE, 0.3 ms spin: GOMP_SPINCOUNT=30000)": {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "30000"},
        "1 thread, fnet's default": {"FNET_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "30000"},
    }
    photos = lfw_set(args.photos)
    print(f"{os.cpu_count()} CPUs; kernel: 32 real LFW crops per batch for {args.seconds:g} s; "
          f"whole commands: `fnet embed --align` and `fnet align` over {args.photos} LFW photos, wall clock; "
          f"idle / beside {args.hogs} busy processes\n")
    print("| setting | threads | embed kernel, faces/s | `fnet embed --align`, photos/s | `fnet align`, photos/s |")
    print("| --- | --- | --- | --- | --- |")
    for name, env in settings.items():
        idle, busy = kernel(args.seconds, 0, env), kernel(args.seconds, args.hogs, env)
        embed = [whole_command(photos, hogs, env, "embed") for hogs in (0, args.hogs)]
        align = [whole_command(photos, hogs, env, "align") for hogs in (0, args.hogs)]
        print(f"| {name} | {idle['threads']} | {idle['faces_per_s']:.1f} / {busy['faces_per_s']:.1f} "
              f"| {embed[0]:.1f} / {embed[1]:.1f} | {align[0]:.1f} / {align[1]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
