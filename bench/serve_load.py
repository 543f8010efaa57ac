"""`fnet serve` under load: N concurrent clients on loopback recognising faces, then bad uploads mixed in.

Starts `fnet serve` as its own process (the model loaded once, a gallery of deepface-unit's
13 people), then for each client count (1, 4, 16, 64) runs that many client threads, each
posting LFW photos (250 px, one face) to /recognize back to back for a fixed time (after a
503, a client waits the Retry-After second, as a well-behaved client does). Reports
throughput (answered requests per second), p50 / p99 latency, 503s (the queue bound, 32 by
default) and any other failure. Then 16 clients send good photos with truncated files,
non-images, oversized uploads and decompression bombs mixed in: every bad request must get
a 4xx and every good one a 200. Last, the server's peak resident memory (VmHWM).

    python bench/serve_load.py [--seconds 15] [--clients 1,4,16,64]
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LFW = DATA / "lfw" / "lfw-deepfunneled"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bomb() -> bytes:
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


def load(url: str, photos: list[bytes], clients: int, seconds: float, bad: list[tuple[bytes, int]] | None = None) -> dict:
    """Run `clients` threads for `seconds`; with `bad`, every third request of each client is a bad upload."""
    latencies, statuses, wrong, lock = [], [], [], threading.Lock()
    stop = time.monotonic() + seconds

    def client(number: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as session:
            sent = 0
            while time.monotonic() < stop:
                if bad and sent % 3 == 2:
                    data, want = bad[(number + sent) % len(bad)]
                else:
                    data, want = photos[(number * 7 + sent) % len(photos)], 200
                start = time.perf_counter()
                answer = session.post("/recognize", files={"image": ("photo.jpg", data, "image/jpeg")})
                took = time.perf_counter() - start
                with lock:
                    statuses.append(answer.status_code)
                    if answer.status_code == 200:
                        latencies.append(took)
                    if answer.status_code not in (want, 503):
                        wrong.append((want, answer.status_code, answer.text[:120]))
                sent += 1
                if answer.status_code == 503:  # a well-behaved client waits as told before trying again
                    time.sleep(float(answer.headers.get("retry-after", "1")))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {
        "clients": clients, "ok": len(latencies), "per_s": len(latencies) / elapsed, "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)), "busy": statuses.count(503), "wrong": wrong,
        "bad_answered": sum(400 <= s < 500 for s in statuses),
    }


def peak_rss_gib(pid: int) -> float:
    """The largest resident set a running process has had (the kernel's VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmHWM")).split()[1]) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", default="1,4,16,64")
    args = parser.parse_args()
    photos = [p.read_bytes() for p in sorted(LFW.glob("*/*_0001.jpg"))[:200]]
    work = Path(tempfile.mkdtemp(prefix="fnet-serve-load-"))
    tree = work / "people"
    for line in (DATA / "deepface-unit" / "identities.csv").read_text().splitlines()[1:]:
        image, person = line.split(",")
        (tree / person).mkdir(parents=True, exist_ok=True)
        (tree / person / image).symlink_to(DATA / "deepface-unit" / image)
    fnet = [sys.executable, "-m", "fnet"]
    subprocess.run([*fnet, "people", "enrol", str(tree), "-g", str(work / "people.db")], check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen([*fnet, "serve", "--port", str(port), "-g", str(work / "people.db"), "--max-upload-mb", "3"],
                              stderr=subprocess.DEVNULL, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        load(url, photos, 2, 3)  # warm-up
        print(f"fnet serve, /recognize, LFW photos, {args.seconds:g} s per row, this machine ({os.cpu_count()} CPUs)")
        print("| clients | answered/s | x 1 client | p50 ms | p99 ms | 503 (queue full) | wrong answers |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        base = None
        for clients in (int(c) for c in args.clients.split(",")):
            r = load(url, photos, clients, args.seconds)
            base = base or r["per_s"]
            print(f"| {clients} | {r['per_s']:.1f} | {r['per_s'] / base:.2f} | {r['p50'] * 1000:.0f} | {r['p99'] * 1000:.0f} | {r['busy']} | {len(r['wrong'])} |", flush=True)
        good = photos[0]
        bad = [(good[: len(good) // 3], 400), (b"not an image at all", 400), (good + b"\0" * (4 * 2**20), 413), (bomb(), 413)]
        r = load(url, photos, 16, args.seconds, bad)
        print(f"\nmalformed uploads mixed in (16 clients): {r['ok']} good answered, {r['bad_answered']} bad ones answered 4xx, "
              f"{r['busy']} 503, {len(r['wrong'])} wrong {r['wrong'][:3]}")
        print(f"server peak RSS: {peak_rss_gib(server.pid):.2f} GiB")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
