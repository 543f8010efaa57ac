"""One writer at a time: an OS-level lock beside whatever a run writes (a store, an index, an output folder).

`exclusive(path)` takes an flock on `path.lock` (`exclusive(folder, folder=True)`: on
`folder/.fnet.lock`) for as long as the block runs, and refuses at once, naming the process that holds it, when
another run has it. The kernel drops the lock when its holder dies, even by kill -9, so a
crash never leaves a run locked out.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from fnet.errors import FnetError


class LockedError(FnetError, RuntimeError):
    """Another process is writing there. ``str()`` names the path and the holder."""

    def __init__(self, path: Path, holder: dict):
        command = " ".join(holder.get("command", [])) or "unknown command"
        since = time.strftime("%H:%M:%S", time.localtime(holder["since"])) if "since" in holder else "?"
        super().__init__(
            f"{path}: in use by another fnet run (process {holder.get('pid', '?')}, `{command}`, since {since}); "
            "wait for it to finish, or stop it"
        )
        self.path = str(path)
        self.reason = str(self).split(": ", 1)[1]


@contextlib.contextmanager
def exclusive(path: str | os.PathLike, folder: bool = False) -> Iterator[None]:
    """Hold the write lock of `path` (a file, or with folder=True a folder, made if missing) for the block.

    Raises LockedError at once when another process holds it.
    """
    path = Path(path)
    lock = path / ".fnet.lock" if folder else path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(lock, "a+")  # noqa: SIM115 (held open for the lock's lifetime)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _holder(handle.read())
            handle.close()
            raise LockedError(path, holder) from None
        # the lock file may have been removed by its last holder between our open and flock: retry on the new one
        if lock.exists() and os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino:
            break
        handle.close()
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "command": sys.argv, "since": time.time()}))
        handle.flush()
        yield
    finally:
        lock.unlink(missing_ok=True)  # before unlocking: a newcomer then makes a fresh file
        handle.close()


def _holder(text: str) -> dict:
    try:
        return json.loads(text)
    except ValueError:
        return {}
