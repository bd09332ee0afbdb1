"""``GET /reports/snapshots``: per-model period summaries, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from api import convert
from api.deps import SessionDep
from api.pagination import PAGINATED, decode_cursor, set_next
from api.params import Cursor, Limit, ModelIds, ProjectIds, UTCDateTime, model_filter
from api.schemas import SnapshotOut
from api.security import AUTH_RESPONSES, PUBLIC
from coordinator_core import queries

router = APIRouter(responses=AUTH_RESPONSES, tags=["snapshots"], dependencies=PUBLIC)


@router.get("/reports/snapshots", response_model=list[SnapshotOut], responses=PAGINATED)
def snapshots(
    request: Request,
    response: Response,
    session: SessionDep,
    model_id: ModelIds = None,
    project_ids: ProjectIds = None,
    since: UTCDateTime | None = None,
    until: UTCDateTime | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[dict[str, Any]]:
    """Snapshots newest ``period_end`` first; ``since`` keeps ``period_end >= since``, ``until``
    keeps ``period_start <= until``. ``score`` = value_sum / prediction_count."""
    page = queries.snapshots_page(
        session,
        after=decode_cursor("snapshots", cursor, (datetime, str)),
        limit=limit,
        model_ids=model_filter(model_id, project_ids),
        since=since,
        until=until,
    )
    set_next(request, response, "snapshots", page.next_key)
    return [convert.snapshot(row) for row in page.rows]
