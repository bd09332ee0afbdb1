"""``GET /info``: the competition's identity."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ContextDep
from api.schemas import Info
from api.security import AUTH_RESPONSES, PUBLIC

router = APIRouter(responses=AUTH_RESPONSES, tags=["info"], dependencies=PUBLIC)


@router.get("/info", response_model=Info)
def info(ctx: ContextDep) -> dict:
    """Competition id, on-chain address (``CRUNCH_PUBKEY``), network, windows and ranking."""
    aggregation = ctx.contract.aggregation
    return {
        "crunch_id": ctx.settings.crunch_id,
        "crunch_address": ctx.contract.crunch_pubkey or ctx.settings.crunch_pubkey,
        "network": ctx.settings.network,
        "api_version": ctx.api_version,
        "windows": ctx.windows,
        "ranking_key": aggregation.ranking_key,
        "ranking_direction": aggregation.ranking_direction,
    }
