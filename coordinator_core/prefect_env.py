"""Defaults for Prefect's environment, applied before Prefect is imported.

Lives in the core package only as data (it imports nothing from Prefect). Each value is a
``setdefault``: an operator's own setting always wins.
"""

from __future__ import annotations

import os

DEFAULTS = {
    # a fresh ephemeral server takes 18-28 s to start on 2 cores; Prefect's default limit is 20 s
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # offline machines: no telemetry, no noise
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    # database tasks must never be served from a result cache
    "PREFECT_TASKS_DEFAULT_NO_CACHE": "true",
    # library logs reach the Prefect UI
    "PREFECT_LOGGING_EXTRA_LOGGERS": "coordinator_core",
}


def apply_defaults() -> None:
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
