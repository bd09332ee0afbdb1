"""``GET /reports/schema`` and its two parts: what a front end shows and where it reads it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ContextDep
from api.report_schema import leaderboard_columns, metrics_widgets, report_schema
from api.schemas import ReportSchema
from api.security import AUTH_RESPONSES, PUBLIC

router = APIRouter(responses=AUTH_RESPONSES, prefix="/reports/schema", tags=["schema"], dependencies=PUBLIC)


@router.get("", response_model=ReportSchema)
def schema(ctx: ContextDep) -> dict[str, Any]:
    """Leaderboard columns and metric widgets; every property named exists in the payloads."""
    return report_schema(ctx.windows)


@router.get("/leaderboard-columns", response_model=list[dict[str, Any]])
def columns(ctx: ContextDep) -> list[dict[str, Any]]:
    return leaderboard_columns(ctx.windows)


@router.get("/metrics-widgets", response_model=list[dict[str, Any]])
def widgets(ctx: ContextDep) -> list[dict[str, Any]]:
    return metrics_widgets(ctx.windows)
