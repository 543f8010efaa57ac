"""Console helpers shared by the commands: one console, one-line errors, progress bars, JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

console = Console()
errors = Console(stderr=True)


def error(message: str) -> None:
    """One line on stderr, the file first: 'fnet: error: path: reason'."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    errors.print(f"[bold yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """Information on stderr, so that stdout (a table or --json) stays the result."""
    errors.print(message, highlight=False, soft_wrap=True, style="dim")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


class RateColumn(ProgressColumn):
    """Throughput, e.g. '84.2 faces/s'."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.1f} {self.unit}/s", style="cyan")


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
