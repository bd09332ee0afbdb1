"""A bounded pool of threads for calling in-process models, with a deadline per call.

Each call's deadline runs from the moment a worker starts it (time spent queued behind other
models does not count). A call still running at its deadline is reported as timed out and its
worker is abandoned, not killed (Python cannot kill a thread): the pool starts a replacement, so
it keeps ``size`` workers free to run the other models, and the abandoned one exits when its call
returns. No thread is started per call.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class _Batch:
    """The calls of one ``run_all``: the last one to finish wakes the waiter (once, not per call)."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.lock = threading.Lock()
        self.all_done = threading.Event()
        if count == 0:
            self.all_done.set()

    def count(self, call: Call) -> None:
        """``call`` no longer holds up the waiter (it returned, or was abandoned); counted once."""
        with self.lock:
            if call.counted:
                return
            call.counted = True
            self.left -= 1
            if self.left == 0:
                self.all_done.set()


@dataclass(eq=False)
class Call:
    """One submitted call; ``started`` / ``finished`` are ``time.perf_counter()`` readings."""

    fn: Callable[[], Any]
    key: str
    batch: _Batch | None = None
    started: float | None = None
    finished: float | None = None
    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False
    counted: bool = False

    @property
    def done(self) -> bool:
        """The function has returned (or raised), in time or late."""
        return self.finished is not None


class _Worker(threading.Thread):
    def __init__(self, pool: WorkerPool, index: int) -> None:
        super().__init__(name=f"{pool.name}-{index}", daemon=True)
        self.pool = pool
        self.retired = False
        self.current: Call | None = None

    def run(self) -> None:
        while not self.retired:
            call = self.pool.tasks.get()
            if call is None:
                return
            call.started = time.perf_counter()
            self.current = call
            try:
                call.value = call.fn()
            except BaseException as exc:  # reported to the waiter, never lost
                call.error = exc
            call.finished = time.perf_counter()
            self.current = None
            if call.batch is not None:
                call.batch.count(call)


class WorkerPool:
    """``run_all({key: fn}, timeout)`` runs every function on the pool and returns, per key, its
    ``Call``: finished, or ``timed_out`` when it did not finish within ``timeout`` seconds of its
    own start (its ``done`` turns true if and when it returns later). One ``run_all`` at a time."""

    def __init__(self, size: int, name: str = "model") -> None:
        self.size = size
        self.name = name
        self.tasks: queue.SimpleQueue[Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._started = 0

    def _spawn(self) -> None:
        self._started += 1
        worker = _Worker(self, self._started)
        self._workers.append(worker)
        worker.start()

    def run_all(self, functions: Mapping[str, Callable[[], Any]], timeout: float) -> dict[str, Call]:
        with self._lock:
            while len(self._workers) < self.size:
                self._spawn()
            batch = _Batch(len(functions))
            calls = {key: Call(fn, key, batch) for key, fn in functions.items()}
            for call in calls.values():
                self.tasks.put(call)
            abandoned: set[str] = set()
            watch = min(0.05, timeout / 4)  # how often running calls are checked against their deadline
            while not batch.all_done.wait(watch):
                now = time.perf_counter()
                for worker in list(self._workers):  # at most ``size`` calls run at once
                    running = worker.current
                    if (
                        running is not None
                        and running.batch is batch
                        and running.started is not None
                        and now - running.started > timeout
                        and not running.done
                    ):
                        running.timed_out = True  # abandon its worker, start another
                        abandoned.add(running.key)
                        self._retire(worker)
                        batch.count(running)  # the waiter stops waiting for it
            for call in calls.values():
                if call.key not in abandoned:
                    assert call.started is not None and call.finished is not None
                    call.timed_out = call.finished - call.started > timeout
            return calls

    def _retire(self, worker: _Worker) -> None:
        worker.retired = True
        if worker in self._workers:
            self._workers.remove(worker)
        self._spawn()

    def close(self) -> None:
        with self._lock:
            for worker in self._workers:
                worker.retired = True
                self.tasks.put(None)
            self._workers.clear()
