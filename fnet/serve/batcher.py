"""Dynamic batching: face crops from concurrent requests share forward passes of the model.

Each request submits its crops and waits on a future; one worker thread takes what is queued,
up to ``max_batch`` crops, waiting at most ``max_wait`` seconds for more once the first
arrives, embeds them in one pass and hands each request its rows. Under load the batches
fill, so throughput grows with concurrency; alone, a request waits ``max_wait`` at most.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np


class Batcher:
    def __init__(self, embed: Callable[[np.ndarray], np.ndarray], max_batch: int = 32, max_wait: float = 0.005):
        self.embed, self.max_batch, self.max_wait = embed, max_batch, max_wait
        self.pending: queue.Queue[tuple[np.ndarray, Future] | None] = queue.Queue()
        self.batches = 0  # forward passes made (for tests and /health)
        self.worker = threading.Thread(target=self._run, name="fnet-batcher", daemon=True)
        self.worker.start()

    def submit(self, crops: np.ndarray) -> Future:
        """Embeddings of N x S x S x 3 uint8 crops, as a future of an N x D array."""
        done: Future = Future()
        if not len(crops):
            done.set_result(np.zeros((0, 0), np.float32))
        else:
            self.pending.put((crops, done))
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
            self._embed(jobs)

    def _embed(self, jobs: list[tuple[np.ndarray, Future]]) -> None:
        try:
            rows = self.embed(np.concatenate([crops for crops, _ in jobs]))
            self.batches += 1
        except Exception as err:  # noqa: BLE001 (handed to every waiting request)
            for _, done in jobs:
                done.set_exception(err)
            return
        start = 0
        for crops, done in jobs:
            done.set_result(rows[start : start + len(crops)])
            start += len(crops)
