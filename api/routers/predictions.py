"""``GET /reports/predictions`` (private tier): prediction history with scores."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter

from api import convert
from api.deps import SessionDep
from api.pagination import PAGINATED, decode_cursor, json_page
from api.params import (
    Cursor,
    Limit,
    ModelIds,
    Order,
    PredictionStatuses,
    ProjectIds,
    ScopeKeys,
    UTCDateTime,
    check_range,
    model_filter,
)
from api.schemas import PredictionOut
from api.security import AUTH_RESPONSES, PRIVATE
from coordinator_core import queries

PREDICTIONS = TypeAdapter(list[PredictionOut])

router = APIRouter(responses=AUTH_RESPONSES, tags=["predictions"], dependencies=PRIVATE)


@router.get("/reports/predictions", response_model=list[PredictionOut], responses=PAGINATED)
def predictions(
    request: Request,
    session: SessionDep,
    model_id: ModelIds = None,
    project_ids: ProjectIds = None,
    status: PredictionStatuses = None,
    scope_key: ScopeKeys = None,
    start: UTCDateTime | None = None,
    end: UTCDateTime | None = None,
    order: Order = "desc",
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """Predictions of every status with their score, newest ``performed_at`` first (``order=asc``
    for oldest first); filter by model, status, scope key and ``performed_at`` range
    (``start <= performed_at <= end``). PENDING predictions have no score and ``score_failed``
    false; FAILED and ABSENT ones carry their reason and the penalty they were counted with."""
    check_range(start, end)
    route = f"predictions-{order}"
    page = queries.predictions_page(
        session,
        after=decode_cursor(route, cursor, (datetime, str)),
        limit=limit,
        descending=order == "desc",
        model_ids=model_filter(model_id, project_ids),
        statuses=[s.value for s in status or ()],
        scope_keys=scope_key or (),
        start=start,
        end=end,
    )
    return json_page(request, route, page, PREDICTIONS, convert.prediction)
