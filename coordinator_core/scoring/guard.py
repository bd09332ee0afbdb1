"""Calling a competition's scoring rule with a deadline per call (``SCORING_TIMEOUT_SECONDS``).

``call_each(calls, timeout)`` runs the calls one after the other in a worker thread and returns,
per call, what it returned, the exception it raised, or ``TimedOut``. The deadline of a call runs
from its own start; a call still running at its deadline is abandoned (Python cannot kill a
thread: it is left to finish in the background and its result is dropped) and the next calls go
on in a new thread. A call costs a counter update, not a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TimedOut:
    seconds: float


@dataclass(frozen=True)
class Raised:
    error: BaseException


_UNSET = object()


def call_each(calls: Sequence[Callable[[], Any]], timeout: float | None) -> list[Any]:
    """Each call's value, ``Raised(error)`` or ``TimedOut(timeout)``, in order (see the module docstring).
    Without a timeout the calls run in this thread."""
    if timeout is None:
        return [_run(call) for call in calls]
    results: list[Any] = [_UNSET] * len(calls)
    start = 0
    while start < len(calls):
        progress = _Progress(start)
        worker = threading.Thread(target=progress.work, args=(calls, results), name="scoring-rule", daemon=True)
        worker.start()
        while True:
            worker.join(min(timeout, 0.05))
            if not worker.is_alive():
                return results
            index, started = progress.current()
            if index < len(calls) and time.perf_counter() - started > timeout:
                progress.abandon()
                results[index] = TimedOut(timeout)
                start = index + 1
                break
    return results


def _run(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:
        return Raised(exc)


class _Progress:
    """Which call a worker is running and since when; an abandoned worker writes no more results."""

    def __init__(self, start: int) -> None:
        self.index, self.started = start, time.perf_counter()
        self.abandoned = False
        self.lock = threading.Lock()

    def current(self) -> tuple[int, float]:
        with self.lock:
            return self.index, self.started

    def abandon(self) -> None:
        with self.lock:
            self.abandoned = True

    def work(self, calls: Sequence[Callable[[], Any]], results: list[Any]) -> None:
        for index in range(self.index, len(calls)):
            with self.lock:
                if self.abandoned:
                    return
                self.index, self.started = index, time.perf_counter()
            value = _run(calls[index])
            with self.lock:
                if self.abandoned:
                    return
                results[index] = value
        with self.lock:
            self.index = len(calls)
