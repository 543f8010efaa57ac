"""Progress of a stage over many files, on stderr: a bar with the true rate, and each failed file named."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator

from fnet.cli.output import error, progress, starter, warn


@dataclasses.dataclass
class Feedback:
    on_start: Callable[[int], None]  # the stage knows how many files it will do
    on_item: Callable[[object, str | None], None]  # a file is done: None, or why it gave nothing
    on_progress: Callable[[int], None]  # n more units of a second task (e.g. faces clustered)
    errors: int = 0  # files that could not be read (not those without a usable face)


def is_facelessness(reason: str) -> bool:
    """A photo that was read but gave no usable face: a warning, not an error."""
    return reason == "no face found" or reason.startswith("face too")


@contextlib.contextmanager
def stage_progress(unit: str, description: str, then: str | None = None) -> Iterator[Feedback]:
    """A bar for the files of a stage (and, with `then`, one for a second step); missing faces are warnings,
    unreadable files errors (counted in `errors`), each naming the file (an item, or its `.path`)."""
    with progress(unit) as bar:
        task = bar.add_task(description, total=None, start=False)
        second = bar.add_task(then, total=None, start=False) if then else None

        def on_item(item, reason: str | None) -> None:
            if reason and is_facelessness(reason):
                warn(f"{getattr(item, 'path', item)}: {reason}")
            elif reason:
                error(f"{getattr(item, 'path', item)}: {reason}")
                feedback.errors += 1
            bar.advance(task)

        def on_progress(count: int) -> None:
            if second is not None:
                bar.start_task(second)
                bar.advance(second, count)

        feedback = Feedback(starter(bar, task), on_item, on_progress)
        yield feedback


def remind_faceless(report) -> None:
    """After an embed stage: photos skipped because an earlier run found no face in them."""
    if report is not None and report.no_face_before:
        warn(f"{report.no_face_before} photos without a face in an earlier run were not detected again (--retry-failed does)")
