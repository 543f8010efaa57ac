"""What the command line sets in its own process before any thread starts or torch loads.

Each setting gives way to the user's own (an environment variable already set wins), and
docs/speed.md has the measurements behind each.
"""

from __future__ import annotations

import ctypes
import os
import sys
import sysconfig
from pathlib import Path

MALLOC = "FNET_MALLOC"  # "system" keeps glibc's allocator
_PRELOADED = "FNET_TCMALLOC_PRELOADED"  # set in the re-run: the path preloaded
_ran_under_tcmalloc = False  # this process is that re-run (the variable above is gone by then)
TCMALLOC_NAMES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4")  # Debian/Ubuntu: libtcmalloc-minimal4
SPIN_COUNT = "30000"  # libgomp's GOMP_SPINCOUNT: about 0.3 ms (its own default, 3 ms; PASSIVE alone, 0)
M_ARENA_MAX = -8  # glibc's mallopt parameter
KERNEL_CACHE = "64"  # oneDNN kernels kept by commands that stream photos
# Commands that run long over many photos, or serve: worth the 0.1-0.15 s of starting twice (tcmalloc)
LONG_RUNNING = frozenset({"align", "embed", "index", "search", "cluster", "evaluate", "train", "serve", "people", "recognize"})


def prepare(argv: list[str]) -> None:
    """Everything below, in order: the allocator first (it may re-run the process)."""
    if LONG_RUNNING & set(argv) and not {"-h", "--help", "--version"} & set(argv):
        use_tcmalloc()
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


def find_tcmalloc() -> Path | None:
    """tcmalloc's shared library where the system's package manager (or conda) puts it, or None."""
    if not sys.platform.startswith("linux"):
        return None
    arch = sysconfig.get_config_var("MULTIARCH") or ""
    folders = [Path(sys.prefix, "lib"), *(Path(root, arch) for root in ("/usr/lib", "/lib") if arch), Path("/usr/lib64"), Path("/usr/lib")]
    return next((folder / name for name in TCMALLOC_NAMES for folder in folders if (folder / name).is_file()), None)


def use_tcmalloc() -> None:
    """Run this command under tcmalloc when the system has it: its memory stays flat over a library.

    glibc's heap fills with free holes under photos of every size: `fnet align` peaked at 0.83
    GiB over 1,000 photos and 1.04 over 5,000; under tcmalloc 0.70 and 0.73, and 10% sooner
    (docs/speed.md). An allocator can only be chosen before a process starts, so the command
    runs itself again, once, with tcmalloc preloaded (as torch's own CPU launcher does); the
    preload is not passed on to the programs it starts. Only for LONG_RUNNING commands (a
    quick `fnet verify` would pay 0.1-0.15 s for nothing); not when $LD_PRELOAD is already set
    or $FNET_MALLOC=system.
    """
    global _ran_under_tcmalloc
    preloaded = os.environ.pop(_PRELOADED, None)
    if preloaded is not None:  # the re-run: children (Ray, worker processes) start as they would
        if os.environ.get("LD_PRELOAD") == preloaded:
            del os.environ["LD_PRELOAD"]
        _ran_under_tcmalloc = True  # a second call in this process must not run it once more
        return
    if _ran_under_tcmalloc:
        return
    if os.environ.get(MALLOC, "tcmalloc") != "tcmalloc" or os.environ.get("LD_PRELOAD"):
        return
    library = find_tcmalloc()
    if library is None:
        return
    env = os.environ | {
        "LD_PRELOAD": str(library),
        _PRELOADED: str(library),
        # tcmalloc writes a line to stderr for every allocation over 1 GiB by default: a large photo's tensors
        "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": os.environ.get("TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD", str(2**40)),
    }
    sys.stdout.flush(), sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    except OSError:  # cannot re-run (odd interpreter path): glibc it is
        pass


def cap_malloc_arenas(arenas: int = 1) -> None:
    """At most `arenas` glibc heaps, unless $MALLOC_ARENA_MAX says otherwise (moot under tcmalloc).

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
