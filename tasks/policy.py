"""Retry policy shared by every task.

=====================  =======  ==========================================================
task                   retries  why
=====================  =======  ==========================================================
ingest (per scope)     3        feeds fail transiently (network, 5xx, rate limits)
predict round          1        a lock conflict; model failures are data, never retried
score / checkpoint     2        lock conflicts between overlapping runs
backtest chunk         0        deterministic: a retry would fail the same way
=====================  =======  ==========================================================

Only ``TransientError`` (and database ``OperationalError``) is retried: a permanent error (bad
configuration, invalid data) fails at once with its message. Every task uses ``NO_CACHE``: they
read and write the database, so a cached result would be stale.
"""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import OperationalError

from coordinator_core.errors import TransientError

TASK_DEFAULTS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only transient failures."""
    try:
        state.result()
    except (TransientError, OperationalError, TimeoutError, ConnectionError):
        return True
    except Exception:
        return False
    return False


def policy(retries: int, delays: list[float] | None = None) -> dict[str, Any]:
    return {
        **TASK_DEFAULTS,
        "retries": retries,
        "retry_delay_seconds": delays or [1, 5, 15][: max(retries, 1)],
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": retry_transient,
    }
