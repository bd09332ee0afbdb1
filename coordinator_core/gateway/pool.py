"""A bounded pool of threads for calling in-process models, with a deadline per call.

Each call's deadline runs from the moment a worker starts it (time spent queued behind other
models does not count). A call still running at its deadline is reported as timed out and its
worker is abandoned, not killed (Python cannot kill a thread): the pool starts a replacement, so
it keeps ``size`` workers free to run the other models, and the abandoned one exits when its call
returns. No thread is started per call.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Call:
    """One submitted call; ``started`` / ``finished`` are ``time.perf_counter()`` readings."""

    fn: Callable[[], Any]
    key: str
    started: float | None = None
    finished: float | None = None
    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class _Worker(threading.Thread):
    def __init__(self, pool: WorkerPool, index: int) -> None:
        super().__init__(name=f"{pool.name}-{index}", daemon=True)
        self.pool = pool
        self.retired = False

    def run(self) -> None:
        while not self.retired:
            call = self.pool.tasks.get()
            if call is None:
                return
            call.started = time.perf_counter()
            self.pool.events.put(("start", call, self))
            try:
                call.value = call.fn()
            except BaseException as exc:  # reported to the waiter, never lost
                call.error = exc
            call.finished = time.perf_counter()
            call.done.set()
            self.pool.events.put(("end", call, self))


class WorkerPool:
    """``run_all({key: fn}, timeout)`` runs every function on the pool and returns, per key, its
    ``Call``: finished, or ``timed_out`` when it did not finish within ``timeout`` seconds of its
    own start (``done`` is set if and when it returns later). One ``run_all`` at a time."""

    def __init__(self, size: int, name: str = "model") -> None:
        self.size = size
        self.name = name
        self.tasks: queue.SimpleQueue[Call | None] = queue.SimpleQueue()
        self.events: queue.SimpleQueue[tuple[str, Call, _Worker]] = queue.SimpleQueue()
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
            calls = {key: Call(fn, key) for key, fn in functions.items()}
            for call in calls.values():
                self.tasks.put(call)
            out: dict[str, Call] = {}
            deadlines: list[tuple[float, int, Call, _Worker]] = []
            pending = set(calls)
            sequence = 0
            while pending:
                wait = None
                while deadlines and (deadlines[0][2].key not in pending):
                    heapq.heappop(deadlines)
                if deadlines:
                    wait = max(0.0, deadlines[0][0] - time.perf_counter())
                try:
                    kind, call, worker = self.events.get(timeout=wait)
                except queue.Empty:
                    _, _, call, worker = heapq.heappop(deadlines)
                    if call.key in pending and not call.done.is_set():
                        call.timed_out = True  # abandon its worker, start another
                        out[call.key] = call
                        pending.discard(call.key)
                        self._retire(worker)
                    continue
                if call.key not in pending or calls.get(call.key) is not call:
                    continue  # a late event of an earlier, abandoned call
                if kind == "start":
                    sequence += 1
                    heapq.heappush(deadlines, ((call.started or 0.0) + timeout, sequence, call, worker))
                elif call.finished is not None and call.started is not None and call.finished - call.started <= timeout:
                    out[call.key] = call
                    pending.discard(call.key)
                else:
                    call.timed_out = True
                    out[call.key] = call
                    pending.discard(call.key)
            return out

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
