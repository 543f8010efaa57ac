"""What every command prints, in one place: results (a table or text, or JSON under --json), one-line
errors (JSON too under --json), warnings and notes on stderr, and progress bars with true rates.

User-supplied strings (paths, names) are never rendered as markup: a file named '[red]' prints as is.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console()
errors = Console(stderr=True)


def printable(text: str) -> str:
    """Text any terminal can take: bytes of a file name that is not UTF-8 shown as \\xNN escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def error(message: str) -> None:
    """One line on stderr, the file first: 'error: path: reason'. Messages are never markup (paths may hold '[/]')."""
    errors.print(Text("error:", style="bold red") + Text(f" {printable(message)}"), highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    errors.print(Text("warning:", style="bold yellow") + Text(f" {printable(message)}"), highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """Information on stderr, so that stdout (a table or --json) stays the result."""
    errors.print(Text(printable(message), style="dim"), highlight=False, soft_wrap=True)


_json_mode = False  # set by a command's --json: fatal errors then go to stdout as JSON


def json_mode(enabled: bool | None) -> bool:
    """Typer callback of every --json option (eager, so it is set before other options are checked)."""
    global _json_mode
    _json_mode = bool(enabled)
    return bool(enabled)


def result(data: Any, human: Any = None) -> None:
    """A command's result: `data` as JSON under --json; else `human`, a rich renderable or plain text (no markup)."""
    if _json_mode:
        print_json(data)
    elif isinstance(human, str):
        console.print(Text(printable(human)), highlight=False, soft_wrap=True)
    elif human is not None:
        console.print(human)


def fail(problem: str | Exception, code: int = 2) -> NoReturn:
    """End the command: one line on stderr, or with --json {"error", "path", "reason"} on stdout; exit `code`.

    Errors that name a file carry `path` and `reason` (fnet.ImageError, for one); other
    messages read 'path: reason' when they are about a file.
    """
    import typer

    message = str(problem)
    if _json_mode:
        path = getattr(problem, "path", None)
        reason = getattr(problem, "reason", None) or message
        print_json({"error": message, "path": None if path is None else str(path), "reason": reason, "exit_code": code})
    else:
        error(message)
    raise typer.Exit(code)


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: such numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """Always valid JSON (non-finite numbers as null), for scripts."""
    sys.stdout.write(json.dumps(_finite(data), indent=2, default=str, allow_nan=False) + "\n")


class RateColumn(ProgressColumn):
    """Throughput since the task started, e.g. '84.2 faces/s'.

    An average over the whole run, not rich's short-window estimate: a burst of items
    finishing together (one batch) would read as thousands per second.
    """

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        done = task.completed - task.fields.get("resumed", 0)  # work of an earlier run is no speed of this one
        if not elapsed or done <= 0:
            return Text("")
        return Text(f"{done / elapsed:,.1f} {self.unit}/s", style="cyan")


def starter(bar: Progress, task: TaskID) -> Callable[[int], None]:
    """An on_start callback for a task added with start=False: the total is known and the clock starts now."""

    def start(total: int) -> None:
        bar.update(task, total=total)
        bar.start_task(task)

    return start


def progress(unit: str = "faces") -> Progress:
    """A progress bar with count, throughput and time left, on stderr (off when not a terminal)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeRemainingColumn(),
        console=errors,
        disable=not errors.is_terminal,
    )
