"""``GET /reports/emissions/latest``: the latest checkpoint's emission."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from api.deps import SessionDep
from api.routers.checkpoints import NO_CHECKPOINT, emission_of
from api.schemas import LatestEmission
from api.security import AUTH_RESPONSES, PUBLIC
from coordinator_core import queries

router = APIRouter(responses=AUTH_RESPONSES, tags=["checkpoints"], dependencies=PUBLIC)


@router.get("/reports/emissions/latest", response_model=LatestEmission, responses=NO_CHECKPOINT)
def latest_emission(session: SessionDep) -> dict[str, Any]:
    """The raw emission of the checkpoint with the newest ``period_end``."""
    row = queries.latest_checkpoint(session)
    if row is None:
        raise HTTPException(404, "No checkpoints found")
    return {
        "checkpoint_id": row["id"],
        "status": row["status"],
        "period_start": row["period_start"],
        "period_end": row["period_end"],
        "emission": emission_of(row),
    }
