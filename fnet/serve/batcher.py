"""Dynamic batching: work from concurrent requests shares passes of a network.

Each request submits its items (photos to detect, crops to embed) and waits on a future; one
worker thread takes what is queued, up to ``max_batch`` items, waiting at most ``max_wait``
seconds for more once the first arrives, runs ``process`` on them all at once and hands each
request its results. Under load the batches fill, so throughput grows with concurrency, and
the networks run on one thread each instead of one per request (no oversubscribed cores);
alone, a request waits ``max_wait`` at most.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any


class Batcher:
    def __init__(self, process: Callable[[list], Sequence], max_batch: int = 32, max_wait: float = 0.005, name: str = "batcher"):
        self.process, self.max_batch, self.max_wait = process, max_batch, max_wait
        self.pending: queue.Queue[tuple[list, Future] | None] = queue.Queue()
        self.batches = 0  # passes made (for tests and /health)
        self.worker = threading.Thread(target=self._run, name=f"fnet-{name}", daemon=True)
        self.worker.start()

    def submit(self, items: Sequence[Any]) -> Future:
        """The results of `process` for these items, in order, as a future of a list."""
        done: Future = Future()
        if not len(items):
            done.set_result([])
        else:
            self.pending.put((list(items), done))
        return done

    def close(self) -> None:
        self.pending.put(None)
        self.worker.join(timeout=5)

    def _run(self) -> None:
        while True:
            first = self.pending.get()
            if first is None:
                return
            jobs, count = [first], len(first[0])
            while count < self.max_batch:
                try:
                    job = self.pending.get(timeout=self.max_wait)
                except queue.Empty:
                    break
                if job is None:
                    self.pending.put(None)  # finish this batch, then stop
                    break
                jobs.append(job)
                count += len(job[0])
            self._process(jobs)

    def _process(self, jobs: list[tuple[list, Future]]) -> None:
        try:
            rows = self.process([item for items, _ in jobs for item in items])
            self.batches += 1
        except Exception as err:  # noqa: BLE001 (handed to every waiting request)
            for _, done in jobs:
                done.set_exception(err)
            return
        start = 0
        for items, done in jobs:
            done.set_result(list(rows[start : start + len(items)]))
            start += len(items)
