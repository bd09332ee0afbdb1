"""Pull new records for every configured feed scope, then prune expired ones.

Scopes are ingested independently: one failing source does not stop the others, and the flow
fails at the end, naming every failed scope, so the failure shows in the UI and in the logs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from coordinator_core.clock import resolve_now
from coordinator_core.errors import CoordinatorError
from coordinator_core.reports import ingest_summary
from coordinator_core.services.ingest import feed_scopes
from tasks.competition import ingest_scope, prune_feed_records
from tasks.context import get_runtime


class IngestFailed(CoordinatorError):
    """One or more feed scopes could not be ingested."""


@flow(name="ingest-feed", log_prints=True)
def ingest_feed(as_of: datetime | None = None) -> list[dict[str, Any]]:
    now = resolve_now(as_of)
    scopes = [scope.key for scope in feed_scopes(get_runtime().settings)]
    submitted = {key: ingest_scope.submit(key, now) for key in scopes}
    results, failures = [], []
    for key, future in submitted.items():
        future.wait()
        state = future.state
        if state.is_completed():
            results.append(future.result())
        else:
            failures.append(f"{key}: {state.message or state.name}")
    prune_feed_records(now)
    if failures:
        raise IngestFailed("feed ingestion failed for " + "; ".join(failures))
    print(ingest_summary(results, now))
    return results
