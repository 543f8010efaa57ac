"""Torch's CPU thread pool on a shared machine: embedding speed idle and beside other CPU-bound work.

Each setting runs in a fresh child process that embeds the same real LFW crops for a fixed
time; the background load is N busy Python processes started before and stopped after. The
settings are the thread count (FNET_THREADS) and OpenMP's wait policy (ACTIVE spins at
barriers, PASSIVE sleeps): spinning threads fight the other processes for the cores.

    python bench/threads.py [--seconds 8] [--hogs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

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


def measure(seconds: float, hogs: int, env: dict) -> dict:
    background = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
    try:
        time.sleep(0.5 if hogs else 0)
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(seconds)], env={**os.environ, **env}, capture_output=True, text=True, check=True,
            timeout=seconds + 120,
        )
    finally:
        for process in background:
            process.kill()
            process.wait()
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--hogs", type=int, default=2, help="busy processes beside the measured one")
    args = parser.parse_args()
    settings = {
        "fnet default": {},
        "1 thread": {"FNET_THREADS": "1"},
        "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
        "1 thread, PASSIVE": {"FNET_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"},
    }
    print(f"embedding 32 real LFW crops per batch, {args.seconds:g} s per cell, {os.cpu_count()} CPUs")
    print(f"| setting | threads | idle faces/s | beside {args.hogs} busy processes, faces/s |")
    print("| --- | --- | --- | --- |")
    for name, env in settings.items():
        idle, busy = measure(args.seconds, 0, env), measure(args.seconds, args.hogs, env)
        print(f"| {name} | {idle['threads']} | {idle['faces_per_s']:.1f} | {busy['faces_per_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
