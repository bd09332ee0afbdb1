"""The runtime of this process, for the Prefect layer.

Tasks take only ids and timestamps; each gets the runtime (settings, contract, engine, gateway,
sources) from here, built once per process by ``coordinator_core.bootstrap.build_runtime`` (a
model-runner gateway keeps its connections across the tasks of a flow run). ``reset_runtime()``
forgets it, e.g. after changing ``os.environ`` in a notebook.
"""

from __future__ import annotations

import threading

from coordinator_core.bootstrap import Runtime, build_runtime

_RUNTIME: Runtime | None = None
_LOCK = threading.Lock()


def get_runtime() -> Runtime:
    global _RUNTIME
    with _LOCK:
        if _RUNTIME is None:
            _RUNTIME = build_runtime()
        return _RUNTIME


def reset_runtime() -> None:
    global _RUNTIME
    with _LOCK:
        if _RUNTIME is not None:
            _RUNTIME.close()
        _RUNTIME = None
