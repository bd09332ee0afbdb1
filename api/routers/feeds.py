"""Feeds (private tier): one entry per feed scope, and the newest records of a scope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.deps import SessionDep
from api.pagination import PAGINATED, decode_cursor, set_next
from api.params import Cursor, Text, UTCDateTime, check_range
from api.schemas import FeedOut, FeedRecordOut
from api.security import AUTH_RESPONSES, PRIVATE
from coordinator_core import queries

router = APIRouter(responses=AUTH_RESPONSES, prefix="/reports/feeds", tags=["feeds"], dependencies=PRIVATE)


@router.get("", response_model=list[FeedOut], responses=PAGINATED)
def feeds(
    request: Request,
    response: Response,
    session: SessionDep,
    source: Text | None = None,
    subject: Text | None = None,
    kind: Text | None = None,
    granularity: Text | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    cursor: Cursor = None,
) -> list[dict[str, Any]]:
    """Per feed scope (from ``feed_ingestion_state``): the watermark, and the oldest and newest event
    and the record count of the scope (three bounded queries on its unique index; the count is
    exact up to 100,000, see ``record_count_capped``)."""
    page = queries.feed_states_page(
        session,
        after=decode_cursor("feeds", cursor, (str,)),
        limit=limit,
        source=source,
        subject=subject,
        kind=kind,
        granularity=granularity,
    )
    out = []
    for state in page.rows:
        stats = queries.feed_scope_stats(
            session, state["source"], state["subject"], state["kind"], state["granularity"]
        )
        out.append(
            {
                "source": state["source"],
                "subject": state["subject"],
                "kind": state["kind"],
                "granularity": state["granularity"],
                **stats,
                "watermark_ts": state["last_event_ts"],
                "watermark_updated_at": state["updated_at"],
                "meta": state["meta_jsonb"] or {},
            }
        )
    set_next(request, response, "feeds", page.next_key)
    return out


@router.get("/tail", response_model=list[FeedRecordOut], responses=PAGINATED)
def tail(
    request: Request,
    response: Response,
    session: SessionDep,
    source: Text | None = None,
    subject: Text | None = None,
    kind: Text | None = None,
    granularity: Text | None = None,
    since: UTCDateTime | None = None,
    until: UTCDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    cursor: Cursor = None,
) -> list[dict[str, Any]]:
    """Feed records newest ``ts_event`` first; filter by any feed dimension and ``ts_event`` range."""
    check_range(since, until, ("since", "until"))
    page = queries.feed_tail_page(
        session,
        after=decode_cursor("feeds-tail", cursor, (datetime, int)),
        limit=limit,
        source=source,
        subject=subject,
        kind=kind,
        granularity=granularity,
        since=since,
        until=until,
    )
    set_next(request, response, "feeds-tail", page.next_key)
    return [
        {
            "id": r["id"],
            "source": r["source"],
            "subject": r["subject"],
            "kind": r["kind"],
            "granularity": r["granularity"],
            "ts_event": r["ts_event"],
            "ts_ingested": r["ts_ingested"],
            "final": r["final"],
            "values": r["values_jsonb"] or {},
            "meta": r["meta_jsonb"] or {},
        }
        for r in page.rows
    ]
