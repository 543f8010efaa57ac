"""The one base of every error fnet reports to a user (no torch).

A front end needs no list of exception types: anything derived from ``FnetError`` is a
problem with the input or the settings, to be shown as one line (``str(err)``, which names
the file when there is one) and answered with ``exit_code``; anything else is a bug and
keeps its traceback. Subclasses keep their historic base (ValueError, RuntimeError) too,
so ``except ValueError`` in user code still catches them.
"""

from __future__ import annotations


class FnetError(Exception):
    """A problem the user can fix. ``path`` (when a file is at fault) and ``reason`` feed JSON errors."""

    exit_code = 2
    path: str | None = None  # set by errors about one file, with reason (the message without the path)
    reason: str | None = None


class SettingsError(FnetError, ValueError):
    """An option out of range or unknown (a detector, a loss, a mode...): the message says what is allowed."""
