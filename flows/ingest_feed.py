"""Pull new records for every configured feed scope, then prune expired ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from coordinator_core.clock import resolve_now
from coordinator_core.runtime import get_runtime
from coordinator_core.services.ingest import feed_scopes
from tasks.competition import ingest_scope, prune_feed_records


@flow(name="ingest-feed", log_prints=True)
def ingest_feed(as_of: datetime | None = None) -> list[dict[str, Any]]:
    now = resolve_now(as_of)
    futures = [ingest_scope.submit(scope.key, now) for scope in feed_scopes(get_runtime().settings)]
    results = [future.result() for future in futures]
    prune_feed_records(now)
    return results
