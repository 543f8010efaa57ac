"""Which malloc a long command runs under: jemalloc, else tcmalloc, else the system's (docs/speed.md, Memory).

An allocator can only be chosen before a process starts, so the command runs itself again,
once, with the library preloaded.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

MALLOC = "FNET_MALLOC"  # "jemalloc" or "tcmalloc": that one only; "system": glibc's allocator
_PRELOADED = "FNET_MALLOC_PRELOADED"  # set in the re-run: the path preloaded
_preloaded_already = False  # this process is that re-run (the variable above is gone by then)


@dataclass(frozen=True)
class Allocator:
    """A malloc that can be preloaded: its shared library's names, and the settings it reads from the environment."""

    name: str
    libraries: tuple[str, ...]
    settings: dict[str, str]


# In the order tried. docs/speed.md has the runs behind each setting (1,000 / 5,000 / 20,000 photos).
ALLOCATORS = (
    # Debian/Ubuntu: libjemalloc2. One arena for every thread (the decoding threads' own arenas:
    # 563 instead of 479 MB over the mixed photos); large buffers in it too, not in an arena of
    # their own (540 MB); freed pages kept, not handed back and faulted in again (17.5 s instead of 12).
    Allocator("jemalloc", ("libjemalloc.so.2",),
              {"MALLOC_CONF": "narenas:1,oversize_threshold:0,dirty_decay_ms:-1,muzzy_decay_ms:-1"}),
    # Debian/Ubuntu: libtcmalloc-minimal4. It writes a line to stderr for every allocation over 1 GiB by
    # default: a large photo's tensors.
    Allocator("tcmalloc", ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"),
              {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(2**40)}),
)


def find_allocator(wanted: str | None = None) -> tuple[Allocator, Path] | None:
    """The first of ALLOCATORS (or the one named `wanted`, default $FNET_MALLOC) that the system has, and its
    library where the package manager (or conda) puts it; None for "system" or where none is found."""
    wanted = wanted or os.environ.get(MALLOC, "")
    if not sys.platform.startswith("linux") or wanted == "system":
        return None
    if wanted not in ("", *(allocator.name for allocator in ALLOCATORS)):
        print(f"fnet: ${MALLOC}={wanted} is none of {', '.join(a.name for a in ALLOCATORS)}, system: the system's malloc it is",
              file=sys.stderr)
        return None
    arch = sysconfig.get_config_var("MULTIARCH") or ""
    folders = [Path(sys.prefix, "lib"), *(Path(root, arch) for root in ("/usr/lib", "/lib") if arch), Path("/usr/lib64"), Path("/usr/lib")]
    for allocator in ALLOCATORS:
        if wanted in ("", allocator.name):
            library = next((folder / name for name in allocator.libraries for folder in folders if (folder / name).is_file()), None)
            if library is not None:
                return allocator, library
    return None


def allocator_in_use() -> str:
    """What a long command runs under, in words (the benchmarks print it)."""
    if os.environ.get("LD_PRELOAD"):
        return f"the user's preload ({os.environ['LD_PRELOAD']})"
    found = find_allocator()
    if found is None:
        return "glibc's malloc"
    allocator, library = found
    return f"{allocator.name} ({library}; {', '.join(f'{k}={v}' for k, v in with_settings(allocator).items())})"


def with_settings(allocator: Allocator) -> dict[str, str]:
    """The allocator's settings, each giving way to the user's: a comma list (MALLOC_CONF) gets the user's
    options after fnet's (the last one of a name counts); any other variable the user set stays as it is."""
    settings = {}
    for variable, value in allocator.settings.items():
        given = os.environ.get(variable)
        settings[variable] = value if not given else f"{value},{given}" if variable == "MALLOC_CONF" else given
    return settings


def use_allocator() -> None:
    """Run this command under jemalloc (else tcmalloc) when the system has it: its memory stays flat over a library.

    glibc's heap fills with free holes under photos of every size: `fnet align` peaked at 0.83
    GiB over 1,000 photos and 1.04 over 5,000; under tcmalloc 0.70 and 0.73, and 10% sooner.
    tcmalloc's peak still rose 9.5-13% from 1,000 photos to 20,000; jemalloc's, set as
    ALLOCATORS says, 4.7% (0.47 -> 0.50 GiB) at the same speed (docs/speed.md). The command
    runs itself again with the library preloaded (as torch's own CPU launcher does); the
    preload is not passed on to the programs it starts. `fnet.cli.process.prepare` calls it for
    LONG_RUNNING commands only (a quick `fnet verify` would pay 0.1-0.15 s for nothing); nothing
    happens when $LD_PRELOAD is already set or $FNET_MALLOC=system.
    """
    global _preloaded_already
    preloaded = os.environ.pop(_PRELOADED, None)
    # The re-run: children (Ray, worker processes) start under glibc as they would. MALLOC_CONF stays set:
    # glibc ignores it, and a child that preloads jemalloc itself gets the same settings.
    if preloaded is not None:
        if os.environ.get("LD_PRELOAD") == preloaded:
            del os.environ["LD_PRELOAD"]
        _preloaded_already = True  # a second call in this process must not run it once more
        return
    if _preloaded_already or os.environ.get("LD_PRELOAD"):
        return
    found = find_allocator()
    if found is None:
        return
    allocator, library = found
    env = os.environ | with_settings(allocator) | {"LD_PRELOAD": str(library), _PRELOADED: str(library)}
    sys.stdout.flush(), sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    except OSError:  # cannot re-run (odd interpreter path): glibc it is
        pass
