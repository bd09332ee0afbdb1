"""Backfill any range of one or every configured feed scope (re-running is a no-op)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from coordinator_core.clock import ensure_utc, resolve_now
from coordinator_core.reports import backfill_summary
from coordinator_core.services.ingest import feed_scopes
from tasks.competition import backfill_range
from tasks.context import get_runtime


@flow(name="backfill-feed", log_prints=True)
def backfill_feed(
    start: datetime,
    end: datetime,
    source: str | None = None,
    subject: str | None = None,
    kind: str | None = None,
    granularity: str | None = None,
    as_of: datetime | None = None,
) -> list[dict[str, Any]]:
    """Backfill [start, end]; scope fields left empty mean every configured value."""
    now = resolve_now(as_of)
    start, end = ensure_utc(start, "start"), ensure_utc(end, "end")
    settings = get_runtime().settings
    scopes = {
        (source or s.source, subject or s.subject, kind or s.kind, granularity or s.granularity)
        for s in feed_scopes(settings)
    }
    results = [backfill_range(*scope, start, end, now) for scope in sorted(scopes)]
    for result in results:
        print(
            f"{result['scope']}: {result['written']} rows written in {result['pages']} pages, "
            f"{len(result['gaps'])} gap(s) left"
        )
    print(backfill_summary(results))
    return results
