"""The one error map from exceptions to exit codes, applied to every command.

Exit codes: 0 success; 1 a result that is a "no" (different people, some photos without a
face or unreadable, a demo verdict wrong); 2 the command could not do its work (bad
option, unreadable input, a locked output, a broken store or checkpoint). Every error a user
can fix derives from fnet.errors.FnetError and carries its own code; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fnet.cli.output import fail
from fnet.errors import FnetError, disk_full


def exit_code(err: BaseException) -> int | None:
    """The exit code an error ends a command with, or None for a bug (shown with its traceback)."""
    return err.exit_code if isinstance(err, FnetError) else None


def reported(command: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command so that a user's error ends it as one line (or JSON) with its exit code."""

    @functools.wraps(command)  # typer reads the wrapped signature and docstring
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except FnetError as err:
            fail(err, exit_code(err))
        except OSError as err:  # a full disk is the user's to fix, not a bug: one line, exit 2
            full = disk_full(err)
            if full is None:
                raise
            fail(full, full.exit_code)

    return run
