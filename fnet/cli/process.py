"""What the command line sets in its own process before any thread starts or torch loads.

Each setting gives way to the user's own (an environment variable already set wins), and
docs/speed.md has the measurements behind each.
"""

from __future__ import annotations

import ctypes
import os
import sys

from fnet.cli.allocator import use_allocator

SPIN_COUNT = "30000"  # libgomp's GOMP_SPINCOUNT: about 0.3 ms (its own default, 3 ms; PASSIVE alone, 0)
M_ARENA_MAX = -8  # glibc's mallopt parameter
KERNEL_CACHE = "64"  # oneDNN kernels kept by commands that stream photos
# Commands that run long over many photos, or serve: worth the 0.1-0.15 s of starting twice (the allocator)
LONG_RUNNING = frozenset({"align", "embed", "index", "search", "cluster", "evaluate", "train", "serve", "people", "recognize"})


def prepare(argv: list[str]) -> None:
    """Everything below, in order: the allocator first (it may re-run the process)."""
    if LONG_RUNNING & set(argv) and not {"-h", "--help", "--version"} & set(argv):
        use_allocator()
    wait_briefly()
    cap_malloc_arenas()
    bound_kernel_cache(argv)


def wait_briefly() -> None:
    """OpenMP's idle threads spin about 0.3 ms for the next parallel region, then sleep.

    Spinning for good (OMP_WAIT_POLICY=ACTIVE) fights other busy processes for the cores: a
    whole `fnet embed --align` beside two of them ran 1.2-1.7x as fast with PASSIVE (sleep at
    once). But sleeping at once makes MTCNN, hundreds of small operations per batch, wait for a
    thread to wake at each: the detector took 8.2 s instead of 4.9 over 1,000 LFW photos. A
    brief spin keeps both (bench/threads.py, docs/speed.md). GOMP_SPINCOUNT is libgomp's (torch's
    OpenMP on Linux; about 100,000 per ms); other runtimes get PASSIVE. Read once, when torch
    loads; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT stays as it is.
    """
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)


def cap_malloc_arenas(arenas: int = 1) -> None:
    """At most `arenas` glibc heaps, unless $MALLOC_ARENA_MAX says otherwise (moot under jemalloc or tcmalloc).

    glibc gives each allocating thread its own heap (up to 8 per core), and photo buffers of
    0.1-40 MB freed across the decoding threads fragment them. `fnet align` over 5,000 photos
    peaked at 1.73 GiB with glibc's default, 1.56 with two heaps, 1.30 with one, at the same
    speed. Set before any thread starts.
    """
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):  # not glibc (musl has no arenas to cap)
        pass


def bound_kernel_cache(argv: list[str]) -> None:
    """Keep 64 compiled oneDNN kernels instead of 1,024 in commands that stream photos.

    oneDNN compiles a kernel per layer and input shape, and a photo library brings the
    detector a new shape with nearly every photo size: a full cache pins a thousand
    allocations across the heap. With 64, `fnet align` over 5,000 photos peaked at 0.96
    instead of 1.22 GiB at the same speed; `fnet embed --align` over 1,000 took 3-5% longer.
    `fnet serve` (a batch of any size 1-16) and `fnet train` keep the default; so does
    anyone who sets $ONEDNN_PRIMITIVE_CACHE_CAPACITY. Read when torch first runs a network.
    """
    if not {"serve", "train"} & set(argv):
        os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", KERNEL_CACHE)
