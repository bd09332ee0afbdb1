"""API keys by tier, from the settings (``API_PUBLIC_KEYS``, ``API_READ_KEYS``, ``API_ADMIN_KEYS``).

The key is sent as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` (never in the URL,
which ends up in logs). Keys are compared with ``hmac.compare_digest`` against every configured
key.

=========  ===========================================================  ==========================
tier       routes                                                       who may call
=========  ===========================================================  ==========================
public     leaderboard (+ history), models (+ global, params,           anyone when no public key
           {id}/status), snapshots, checkpoints (GET), emissions,       is set; else any key of
           schema, /info                                                any tier
private    predictions, feeds, feeds/tail, models/{id}/predictions      a read or admin key when
                                                                        read or admin keys are set;
                                                                        else as public
admin      POST checkpoints/{id}/confirm, PATCH checkpoints/{id}/status an admin key; with no admin
                                                                        key configured: nobody (403)
open       /healthz, /docs, /redoc, /openapi.json, /board, /static      anyone
=========  ===========================================================  ==========================

A missing or unknown key is 401 (with ``WWW-Authenticate: Bearer``); a valid key of a lower tier
is 403. Private routes are never more open than public ones: with only public keys set, they
need a public key.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine, Iterable
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.schemas import problem
from coordinator_core.config import Settings

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key (or use Authorization: Bearer)")
BEARER = HTTPBearer(auto_error=False, description="API key as a bearer token")


class Tier(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    ADMIN = "admin"


def _matches(key: str, keys: Iterable[str]) -> bool:
    """Constant-time comparison against every key (no early exit)."""
    presented = key.encode("utf-8", "surrogateescape")
    found = False
    for candidate in keys:
        found |= hmac.compare_digest(presented, candidate.encode("utf-8", "surrogateescape"))
    return found


def required_keys(settings: Settings, tier: Tier) -> frozenset[str] | None:
    """Keys that open ``tier``; ``None`` when the tier is open; empty when nobody may call it."""
    public, read, admin = settings.public_keys, settings.read_keys, settings.admin_keys
    if tier is Tier.ADMIN:
        return admin
    if tier is Tier.PRIVATE and (read or admin):
        return read | admin
    if public:
        return public | read | admin
    return None


def authorize(settings: Settings, tier: Tier, key: str | None) -> None:
    """Raise 401/403 unless ``key`` opens ``tier``."""
    needed = required_keys(settings, tier)
    if needed is None:
        return
    if not needed:
        raise HTTPException(403, f"{tier} routes are disabled: no API_ADMIN_KEYS configured")
    if not key:
        raise HTTPException(
            401,
            f"an API key is required ({tier} tier): send X-API-Key or Authorization: Bearer",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if _matches(key, needed):
        return
    if _matches(key, settings.public_keys | settings.read_keys | settings.admin_keys):
        raise HTTPException(403, f"this API key does not open {tier} routes")
    raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})


def require(tier: Tier) -> Callable[..., Coroutine[Any, Any, None]]:
    """A dependency that admits the request only for ``tier``."""

    async def dependency(
        request: Request,
        api_key: Annotated[str | None, Security(API_KEY_HEADER)] = None,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
    ) -> None:
        key = api_key or (bearer.credentials if bearer is not None else None)
        authorize(request.app.state.settings, tier, key)

    dependency.__name__ = f"require_{tier}"
    return dependency


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem(
        "missing or unknown API key (when the route's tier needs one)",
        **{"WWW-Authenticate": "Bearer: send the key as X-API-Key or Authorization: Bearer"},
    ),
    403: problem("the key's tier does not open this route; admin routes: also when no admin key is configured"),
}

PUBLIC = [Depends(require(Tier.PUBLIC))]
PRIVATE = [Depends(require(Tier.PRIVATE))]
ADMIN = [Depends(require(Tier.ADMIN))]
