"""Checkpoints: history, lookups by id (one primary-key query each), the emission in raw frac64
and CLI form, prizes, and the two admin actions (confirm a transaction, advance the status).

``/reports/checkpoints/latest`` and ``/reports/checkpoints/latest/prizes`` are declared before the
``{checkpoint_id}`` routes so that ``latest`` is never taken for an id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import TypeAdapter

from api import convert
from api.deps import ContextDep, SessionDep
from api.pagination import PAGINATED, decode_cursor, set_next
from api.params import (
    CheckpointIdPath,
    CheckpointStatuses,
    Cursor,
    Limit,
    ModelIdQuery,
    UTCDateTime,
    check_range,
    invalid,
)
from api.schemas import (
    CheckpointClusters,
    CheckpointOut,
    CheckpointPayload,
    CliFormat,
    ConfirmBody,
    LatestPrizes,
    MerkleProof,
    PayoutExplanation,
    Prize,
    StatusBody,
    problem,
)
from api.security import ADMIN, AUTH_RESPONSES, PUBLIC
from coordinator_core import emission as money
from coordinator_core import queries
from coordinator_core.domain.statuses import CheckpointStatus
from coordinator_core.emission import Emission
from coordinator_core.services import checkpoint as checkpoint_service
from coordinator_core.services import explain as explain_service

router = APIRouter(responses=AUTH_RESPONSES, prefix="/reports/checkpoints", tags=["checkpoints"])

TotalPrize = Annotated[int, Query(ge=0, le=2**63 - 1, description="amount to split, in the smallest unit")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: problem("checkpoint not found, or it has no emission")}
NO_CHECKPOINT: dict[int | str, dict[str, Any]] = {404: problem("no checkpoint yet, or the latest has no emission")}


def found(row: dict[str, Any] | None, checkpoint_id: str) -> dict[str, Any]:
    if row is None:
        raise HTTPException(404, f"checkpoint {checkpoint_id!r} not found")
    return row


def emission_of(row: dict[str, Any]) -> dict[str, Any]:
    entries = row["entries_jsonb"] or []
    if not entries or not isinstance(entries[0], dict):
        raise HTTPException(404, f"checkpoint {row['id']} has no emission")
    return entries[0]


def prizes_of(row: dict[str, Any], total_prize: int) -> list[dict[str, Any]]:
    """Per model of the checkpoint (``model_rewards``, rank order): its share of ``total_prize``."""
    document = Emission.from_json(emission_of(row))
    return [p.to_json() for p in money.prizes(document, row["id"], row["period_end"], total_prize)]


def prizes_page(
    request: Request, response: Response, row: dict[str, Any], total_prize: int, limit: int, cursor: str | None
) -> list[dict[str, Any]]:
    key = decode_cursor("prizes", cursor, (str, int))
    if key is not None and key[0] != row["id"]:
        raise invalid("cursor", "invalid cursor: it belongs to another checkpoint", cursor)
    prizes = prizes_of(row, total_prize)
    offset = key[1] if key else 0
    page = prizes[offset : offset + limit]
    if offset + limit < len(prizes):
        set_next(request, response, "prizes", (row["id"], offset + limit))
    return page


# -- lists and lookups (public) ---------------------------------------------------------------------
@router.get("", response_model=list[CheckpointOut], responses=PAGINATED, dependencies=PUBLIC)
def checkpoints(
    request: Request,
    response: Response,
    session: SessionDep,
    status: CheckpointStatuses = None,
    since: UTCDateTime | None = None,
    until: UTCDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> list[dict[str, Any]]:
    """Checkpoints newest ``period_end`` first; filter by status and ``period_end`` range."""
    check_range(since, until, ("since", "until"))
    page = queries.checkpoints_page(
        session,
        after=decode_cursor("checkpoints", cursor, (datetime,)),
        limit=limit,
        statuses=[s.value for s in status or ()],
        since=since,
        until=until,
    )
    set_next(request, response, "checkpoints", page.next_key)
    return [convert.checkpoint(row) for row in page.rows]


@router.get("/latest", response_model=CheckpointOut, responses={404: problem("no checkpoint yet")}, dependencies=PUBLIC)
def latest(session: SessionDep) -> dict[str, Any]:
    """The checkpoint with the newest ``period_end``."""
    row = queries.latest_checkpoint(session)
    if row is None:
        raise HTTPException(404, "No checkpoints found")
    return convert.checkpoint(row)


@router.get(
    "/latest/prizes",
    response_model=LatestPrizes,
    responses={**PAGINATED, **NO_CHECKPOINT},
    dependencies=PUBLIC,
)
def latest_prizes(
    request: Request,
    response: Response,
    session: SessionDep,
    total_prize: TotalPrize = 0,
    limit: Limit = 1000,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The latest checkpoint's prizes (see ``/reports/checkpoints/{id}/prizes``)."""
    row = queries.latest_checkpoint(session)
    if row is None:
        raise HTTPException(404, "No checkpoints found")
    return {
        "checkpoint_id": row["id"],
        "status": row["status"],
        "period_start": row["period_start"],
        "period_end": row["period_end"],
        "total_prize": total_prize,
        "prizes": prizes_page(request, response, row, total_prize, limit, cursor),
    }


CHECKPOINT_ADAPTER = TypeAdapter(CheckpointOut)


@router.get("/{checkpoint_id}", response_model=CheckpointOut, responses=NOT_FOUND, dependencies=PUBLIC)
def checkpoint(checkpoint_id: CheckpointIdPath, session: SessionDep, ctx: ContextDep) -> Response:
    """One checkpoint by id (a primary-key lookup). On Postgres the serialised checkpoint is kept
    in memory per row version: the version is read by key first and the documents only when it
    changed."""
    body = None
    if queries.has_row_versions(session):
        exists, version = queries.checkpoint_version(session, checkpoint_id)
        if not exists:
            raise HTTPException(404, f"checkpoint {checkpoint_id!r} not found")
        body = ctx.documents.get(("checkpoint", checkpoint_id, version))
    if body is None:
        row = found(queries.get_checkpoint(session, checkpoint_id), checkpoint_id)
        body = CHECKPOINT_ADAPTER.dump_json(CHECKPOINT_ADAPTER.validate_python(convert.checkpoint(row)))
        if row["version"] is not None:
            ctx.documents.put(("checkpoint", checkpoint_id, row["version"]), body)
    return Response(body, media_type="application/json")


@router.get(
    "/{checkpoint_id}/clusters",
    response_model=CheckpointClusters,
    responses={404: problem("checkpoint not found")},
    dependencies=PUBLIC,
)
def clusters(checkpoint_id: CheckpointIdPath, session: SessionDep) -> dict[str, Any]:
    """The clone clusters found over the checkpoint's period, with their evidence (pairs,
    correlation, lag, overlap) and the representative holding each cluster's one emission slot.
    A checkpoint built without the rule (or before it existed) has no clusters: ``clusters: []``."""
    row = found(queries.get_checkpoint(session, checkpoint_id), checkpoint_id)
    stored = (row.get("meta_jsonb") or {}).get("clusters") or {}
    return {"checkpoint_id": row["id"], **stored}


@router.get("/{checkpoint_id}/payload", response_model=CheckpointPayload, responses=NOT_FOUND, dependencies=PUBLIC)
def payload(checkpoint_id: CheckpointIdPath, session: SessionDep) -> dict[str, Any]:
    row = found(queries.get_checkpoint(session, checkpoint_id), checkpoint_id)
    return {
        "checkpoint_id": row["id"],
        "period_start": row["period_start"],
        "period_end": row["period_end"],
        "entries": row["entries_jsonb"] or [],
    }


@router.get("/{checkpoint_id}/emission", response_model=dict[str, Any], responses=NOT_FOUND, dependencies=PUBLIC)
def emission(checkpoint_id: CheckpointIdPath, session: SessionDep) -> dict[str, Any]:
    """The raw ``EmissionCheckpoint`` (frac64: 1,000,000,000 = 100 %): ``crunch``,
    ``cruncher_rewards`` (per participant: cruncher_id, wallet, model_ids, reward_pct),
    ``model_rewards`` (per model), ``compute_provider_rewards``, ``data_provider_rewards``."""
    return emission_of(found(queries.get_checkpoint(session, checkpoint_id), checkpoint_id))


@router.get(
    "/{checkpoint_id}/emission/cli-format",
    response_model=CliFormat,
    responses={**NOT_FOUND, 409: problem("the checkpoint is GATED, or its emission pays nobody: nothing to submit")},
    dependencies=PUBLIC,
)
def cli_format(checkpoint_id: CheckpointIdPath, session: SessionDep) -> dict[str, Any]:
    """The emission for the CLI: percent per participant keyed by its wallet when known, else its
    cruncher id (never a list position), and per provider. Percentages have 6 decimals and are
    apportioned by largest remainder, so a full emission sums to exactly 100. A GATED checkpoint, or
    an emission that pays nobody, is a 409 with the reason: it must never be submitted."""
    row = found(queries.get_checkpoint(session, checkpoint_id), checkpoint_id)
    data = emission_of(row)
    rewards = [r for r in data.get("cruncher_rewards") or [] if isinstance(r, dict)]
    if row["status"] == CheckpointStatus.GATED.value:
        blocked = "; ".join(str(b) for b in (row["gate_jsonb"] or {}).get("blocked") or []) or "none recorded"
        raise HTTPException(409, f"checkpoint {checkpoint_id} is GATED and must not be submitted: {blocked}")
    if not any(isinstance(r.get("reward_pct"), int) and r["reward_pct"] > 0 for r in rewards):
        raise HTTPException(
            409,
            f"checkpoint {checkpoint_id} has an empty emission (no participant is paid): there is nothing to submit",
        )

    def participant(reward: dict[str, Any]) -> str:
        return str(
            reward.get("wallet") or reward.get("cruncher_id") or f"cruncher_index:{reward.get('cruncher_index')}"
        )

    def provider(reward: dict[str, Any]) -> str:
        return str(reward.get("provider"))

    def providers(kind: str) -> list[dict[str, Any]]:
        return [r for r in data.get(f"{kind}_provider_rewards") or [] if isinstance(r, dict)]

    return {
        "crunch": str(data.get("crunch") or ""),
        "crunchEmission": money.percents([(participant(r), int(r.get("reward_pct") or 0)) for r in rewards]),
        "computeProvider": money.percents([(provider(r), int(r.get("reward_pct") or 0)) for r in providers("compute")]),
        "dataProvider": money.percents([(provider(r), int(r.get("reward_pct") or 0)) for r in providers("data")]),
    }


@router.get(
    "/{checkpoint_id}/prizes", response_model=list[Prize], responses={**PAGINATED, **NOT_FOUND}, dependencies=PUBLIC
)
def prizes(
    request: Request,
    response: Response,
    checkpoint_id: CheckpointIdPath,
    session: SessionDep,
    total_prize: TotalPrize = 0,
    limit: Limit = 1000,
    cursor: Cursor = None,
) -> list[dict[str, Any]]:
    """Per model, in rank order: ``prize`` = its share of ``total_prize`` by ``reward_pct``, in
    integers that sum to exactly ``total_prize`` (largest-remainder apportionment)."""
    row = found(queries.get_checkpoint(session, checkpoint_id), checkpoint_id)
    return prizes_page(request, response, row, total_prize, limit, cursor)


@router.get(
    "/{checkpoint_id}/proof",
    response_model=MerkleProof,
    responses={404: problem("checkpoint not found, or the model has no score or snapshot in it")},
    dependencies=PUBLIC,
)
def proof(checkpoint_id: CheckpointIdPath, model: ModelIdQuery, ctx: ContextDep) -> dict[str, Any]:
    """The model's inclusion proof in the checkpoint's Merkle tree (``coordinator_core.merkle``): its
    score and snapshot leaves as stored now, its subtree leaf, and the audit path to the root stored
    when the checkpoint was built. Verify it offline with ``coordinator verify-proof FILE`` (or
    ``coordinator_core.merkle.verify_proof``); a score changed since the checkpoint makes it fail."""
    return checkpoint_service.checkpoint_proof(ctx.uow, checkpoint_id, model)


@router.get(
    "/{checkpoint_id}/explain",
    response_model=PayoutExplanation,
    responses={**PAGINATED, 404: problem("checkpoint not found, or the model has no snapshot in its period")},
    dependencies=PUBLIC,
)
def explain(
    request: Request,
    response: Response,
    checkpoint_id: CheckpointIdPath,
    model: ModelIdQuery,
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=168, description="snapshots per page")] = 24,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The payout chain of one model: its reward (from its rank and the checkpoint's emission
    strategy with its parameters, the exact weight and the rounding residue), its rank (from the
    period aggregate, with the tie-break used), the aggregate (from its snapshots), and one page of
    snapshots, each with the predictions summed into it (output, score, the round's ground truth, the
    feed record ids and values used); the scoring rule by dotted path and sha256 of its source. The
    money is recomputed with the checkpoint service's own functions and compared with what is stored
    (``reward.reproduced``, ``rank.recomputed_matches``)."""
    key = decode_cursor("explain", cursor, (str, str, datetime))
    if key is not None and key[:2] != (checkpoint_id, model):
        raise invalid("cursor", "invalid cursor: it belongs to another checkpoint or model", cursor)
    page = explain_service.explain_reward(ctx.uow, ctx.contract, checkpoint_id, model, key[2] if key else None, limit)
    if page.next_after is not None:
        set_next(request, response, "explain", (checkpoint_id, model, page.next_after))
    return page.document


# -- admin actions ---------------------------------------------------------------------------------
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: problem(
        "the checkpoint is not in a state that allows this (the detail names the allowed move), "
        "or it failed the gate (the detail lists the reasons)"
    ),
    404: problem("checkpoint not found"),
}


@router.post("/{checkpoint_id}/confirm", response_model=CheckpointOut, responses=CONFLICT, dependencies=ADMIN)
def confirm(checkpoint_id: CheckpointIdPath, body: ConfirmBody, ctx: ContextDep) -> dict[str, Any]:
    """Record the transaction that paid a PENDING checkpoint: ``tx_hash``, ``submitted_at`` and status
    SUBMITTED. Repeating with the same ``tx_hash`` returns the checkpoint unchanged (200); another
    hash, or a checkpoint that is not PENDING, is a 409. One conditional UPDATE: of two concurrent
    confirms only one wins. The gate runs again first (shares sum to exactly 1e9, none negative, at
    least one payee, nobody paid without a scored prediction, the Merkle root recomputed from the
    stored scores equals the stored one): a failure stores the checkpoint GATED and answers 409
    with the reasons; a GATED checkpoint is always a 409."""
    return convert.checkpoint_row(
        checkpoint_service.confirm_checkpoint(
            ctx.uow, checkpoint_id, body.tx_hash, ctx.clock(), ctx.settings.checkpoint_max_share_change
        )
    )


@router.patch("/{checkpoint_id}/status", response_model=CheckpointOut, responses=CONFLICT, dependencies=ADMIN)
def set_status(checkpoint_id: CheckpointIdPath, body: StatusBody, ctx: ContextDep) -> dict[str, Any]:
    """Advance the status one step: SUBMITTED → CLAIMABLE → PAID (PAID is final). SUBMITTED is set
    only by ``confirm`` (it needs a tx_hash). Asking for the current status is a no-op (200);
    anything else is a 409 naming the allowed move."""
    return convert.checkpoint_row(checkpoint_service.advance_checkpoint(ctx.uow, checkpoint_id, body.status.value))
