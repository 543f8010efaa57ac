"""Connecting to Ray: a cluster's address, or a Ray started here for this run."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from fnet.errors import FnetError, SettingsError

LOCAL = "local"


def import_ray():
    try:
        import ray
        import ray.data  # the embed job needs Ray Data, not only Ray core
    except ImportError:
        raise SettingsError("--ray needs Ray Data: pip install 'fnet[ray]'") from None
    return ray


@contextlib.contextmanager
def connected(address: str, cpus: int | None = None) -> Iterator[object]:
    """Ray, connected to `address` ("local": a Ray started here with `cpus` CPUs, stopped afterwards;
    "auto": the cluster this machine belongs to, as after `ray start`; or "ray://HEAD:10001").

    A session that was already connected (a test, a notebook) is used as it is and left running.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    for name in ("ray", "ray.data"):  # fnet reports progress and failures itself: Ray's notices stay quiet
        logging.getLogger(name).setLevel(logging.ERROR)
    if address == LOCAL:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # fnet never uses the network at run time
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise SettingsError(f"--ray {address}: cannot connect to a Ray cluster there ({err})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


@contextlib.contextmanager
def ray_failures(what: str) -> Iterator[None]:
    """A failed Ray task or actor (a missing model, no CUDA, a bad store) as one FnetError line, not a remote traceback."""
    ray = import_ray()
    try:
        yield
    except ray.exceptions.RayError as err:
        cause = getattr(err, "cause", None) or err
        if isinstance(cause, FnetError):
            raise cause from None  # fnet's own error, raised in a task: the same exit code as without Ray
        raise FnetError(f"{what} failed on Ray: {str(cause).strip().splitlines()[-1]}") from None
