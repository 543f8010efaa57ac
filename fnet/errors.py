"""The one base of every error fnet reports to a user (no torch).

A front end needs no list of exception types: anything derived from ``FnetError`` is a
problem with the input or the settings, to be shown as one line (``str(err)``, which names
the file when there is one) and answered with ``exit_code``; anything else is a bug and
keeps its traceback. Subclasses keep their historic base (ValueError, RuntimeError) too,
so ``except ValueError`` in user code still catches them.
"""

from __future__ import annotations

import errno


class FnetError(Exception):
    """A problem the user can fix. ``path`` (when a file is at fault) and ``reason`` feed JSON errors."""

    exit_code = 2
    path: str | None = None  # set by errors about one file, with reason (the message without the path)
    reason: str | None = None


class SettingsError(FnetError, ValueError):
    """An option out of range or unknown (a detector, a loss, a mode...): the message says what is allowed."""


class DiskFullError(FnetError, OSError):
    """No space left on the disk an output goes to. Finished work is kept: the same command resumes."""


def disk_full(err: OSError) -> DiskFullError | None:
    """The OSError of a full disk or quota (h5py's included) as one clear error naming the file; else None."""
    if err.errno not in (errno.ENOSPC, errno.EDQUOT) and "No space left on device" not in str(err):
        return None
    where = err.filename or "an output"
    full = DiskFullError(f"{where}: no space left on its disk; free some and run the same command again (finished work is kept)")
    full.path, full.reason = (str(err.filename) if err.filename else None), "no space left on its disk"
    return full
