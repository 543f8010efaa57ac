"""An append-only JSONL log of what a stage did to each input, safe to resume after a kill.

Each finished input gets one line, written after its outputs, flushed and fsynced: a
line present means its outputs are complete. A line cut short by a crash is dropped on
reopening, so that input is simply redone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Self

MANIFEST = "manifest.jsonl"  # the file name a stage's log has in its output folder


class Manifest:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []  # as on disk when opened; appended lines are not kept (memory stays flat)
        if self.path.exists():
            self._load_and_repair()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (open for the manifest's lifetime; close() shuts it)

    def _load_and_repair(self) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # drop a trailing partial line
        if len(complete) != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))
        for line in complete.decode("utf-8").splitlines():
            if line.strip():
                self.records.append(json.loads(line))

    def done(self, key: str = "source") -> set[str]:
        return {record[key] for record in self.records}

    def append(self, *records: dict[str, Any]) -> None:
        for record in records:
            self._handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
