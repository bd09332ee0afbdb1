"""Emission checkpoints: building them, and the two admin actions on them.

Periods are contiguous, aligned to ``CHECKPOINT_ANCHOR`` every ``CHECKPOINT_INTERVAL_SECONDS``.
Each covers the snapshots whose period ends in ``(period_start, period_end]``; the next starts
where the last ended, so no snapshot falls between two checkpoints (scoring never stamps scores
inside a checkpointed period). A period with no snapshots is folded into the next one. Missed
periods are built in order. Models with no scored prediction in the period are not ranked.

Status moves: ``confirm_checkpoint`` (PENDING → SUBMITTED with the transaction hash) and
``advance_checkpoint`` (SUBMITTED → CLAIMABLE → PAID); each raises ``NotFound`` or ``Conflict``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from coordinator_core.clock import parse_utc
from coordinator_core.config import Settings
from coordinator_core.contract import CrunchContract
from coordinator_core.domain.emission_strategy import EmissionStrategy
from coordinator_core.domain.ranking import LeaderboardEntry, build_ranking, ranked_json
from coordinator_core.domain.statuses import CheckpointStatus, allowed_moves
from coordinator_core.emission import default_build_emission
from coordinator_core.errors import Conflict, NotFound
from coordinator_core.ports import CheckpointRow, UnitOfWork, UnitOfWorkFactory
from coordinator_core.services.score import SCORE_LOCK, refresh_derived

log = logging.getLogger(__name__)


def last_boundary(settings: Settings, now: datetime) -> datetime:
    anchor = parse_utc(settings.checkpoint_anchor)
    interval = settings.checkpoint_interval_seconds
    elapsed = int((now - anchor).total_seconds())
    return anchor + timedelta(seconds=elapsed - elapsed % interval)


def period_ranking(
    work: UnitOfWork, contract: CrunchContract, start: datetime, end: datetime
) -> list[LeaderboardEntry]:
    """Models ranked over snapshots ending in ``(start, end]`` (snapshots are aligned to periods that
    divide the checkpoint interval: ending in ``(start, end]`` is starting in ``[start, end)``)."""
    key, direction = contract.aggregation.ranking_key, contract.aggregation.ranking_direction
    totals = work.scores.window_totals(start, end)
    participants = work.models.participants(list(totals))
    return build_ranking({key: totals}, key, participants, key, direction, contract.rank, require_scored=True)


def strategy_of(contract: CrunchContract) -> dict[str, Any]:
    """What turns the ranking into shares, as stored with a checkpoint: the strategy's ``kind`` and
    parameters, or ``{"kind": "hook", "path": ...}`` for a custom ``build_emission``."""
    if contract.build_emission is default_build_emission:
        return contract.emission.params()
    hook = contract.build_emission
    return {"kind": "hook", "path": f"{getattr(hook, '__module__', '?')}:{getattr(hook, '__qualname__', repr(hook))}"}


def emission_document(
    contract: CrunchContract, entries: list[dict[str, Any]], strategy: EmissionStrategy | None = None
) -> dict[str, Any]:
    """The emission JSON of ranked ``entries``: the contract's strategy (or ``strategy``) through the
    default builder, or the contract's own ``build_emission`` hook. The one place money is computed:
    the checkpoint build, the explain chain and shadow scoring all call it."""
    if contract.build_emission is default_build_emission:
        return default_build_emission(
            entries,
            crunch_pubkey=contract.crunch_pubkey,
            compute_provider=contract.compute_provider,
            data_provider=contract.data_provider,
            strategy=strategy or contract.emission,
        )
    return contract.build_emission(
        entries,
        crunch_pubkey=contract.crunch_pubkey,
        compute_provider=contract.compute_provider,
        data_provider=contract.data_provider,
    )


def build_checkpoints(uow: UnitOfWorkFactory, contract: CrunchContract, settings: Settings, now: datetime) -> list[str]:
    """Build every checkpoint due at ``now``; returns the ids written (empty when none was due)."""
    refresh_derived(uow, contract, settings, now)  # snapshots owed by a scoring run that was killed
    interval = timedelta(seconds=settings.checkpoint_interval_seconds)
    written: list[str] = []
    with uow() as work:
        work.lock(SCORE_LOCK)
        last_end = work.checkpoints.last_end()
        if last_end is None:
            first_snapshot = work.scores.first_snapshot_start()
            if first_snapshot is None:
                return []
            start = last_boundary(settings, first_snapshot)  # the aligned period holding the first score
            end = start + interval
        else:
            start, end = last_end, last_end + interval
        while end <= now:
            snapshot_count = work.scores.snapshot_count(start, end)
            if snapshot_count:
                ranking = period_ranking(work, contract, start, end)
                entries = ranked_json(ranking)
                emission = emission_document(contract, entries)
                checkpoint_id = f"CKP_{end:%Y%m%d_%H%M%S}"
                work.checkpoints.add(
                    {
                        "id": checkpoint_id,
                        "period_start": start,
                        "period_end": end,
                        "status": CheckpointStatus.PENDING.value,
                        "entries_jsonb": [emission],
                        "meta_jsonb": {
                            "snapshot_count": snapshot_count,
                            "model_count": len(ranking),
                            "ranking": entries,
                            "ranking_key": contract.aggregation.ranking_key,
                            "emission_strategy": strategy_of(contract),
                        },
                        "created_at": now,
                        "tx_hash": None,
                        "submitted_at": None,
                    }
                )
                written.append(checkpoint_id)
                log.info("checkpoint %s: %d models over %s .. %s", checkpoint_id, len(ranking), start, end)
                start = end
            end = end + interval
        work.commit()
    return written


def confirm_checkpoint(uow: UnitOfWorkFactory, checkpoint_id: str, tx_hash: str, now: datetime) -> CheckpointRow:
    """Record the transaction that paid a PENDING checkpoint: status SUBMITTED, ``tx_hash`` and
    ``submitted_at``. Repeating with the recorded hash changes nothing and returns it; another
    hash, or a checkpoint that is not PENDING, is a ``Conflict``."""
    with uow() as work:
        changed = work.checkpoints.confirm(checkpoint_id, tx_hash, now)
        row = work.checkpoints.get(checkpoint_id)
        work.commit()
    if row is None:
        raise NotFound(f"checkpoint {checkpoint_id!r} not found")
    if changed or row.tx_hash == tx_hash:
        return row
    if row.tx_hash:
        raise Conflict(
            f"checkpoint {checkpoint_id} is already confirmed with another tx_hash ({row.tx_hash}); status {row.status}"
        )
    raise Conflict(f"checkpoint {checkpoint_id} is {row.status}: only a PENDING checkpoint can be confirmed")


def advance_checkpoint(uow: UnitOfWorkFactory, checkpoint_id: str, target: str, attempts: int = 3) -> CheckpointRow:
    """Move a checkpoint one step forward (a conditional UPDATE on the status read). Asking for the
    current status changes nothing. SUBMITTED is reached only by ``confirm_checkpoint``."""
    for _ in range(attempts):
        with uow() as work:
            row = work.checkpoints.get(checkpoint_id)
            if row is None:
                raise NotFound(f"checkpoint {checkpoint_id!r} not found")
            if row.status == target:
                return row
            allowed = allowed_moves(row.status)
            if target not in allowed:
                hint = (
                    " (SUBMITTED is set by POST /reports/checkpoints/{id}/confirm with the tx_hash)"
                    if allowed == [CheckpointStatus.SUBMITTED.value]
                    else ""
                )
                raise Conflict(f"Cannot transition from {row.status} to {target}. Allowed: {allowed}{hint}")
            if target == CheckpointStatus.SUBMITTED.value:
                raise Conflict(
                    "SUBMITTED needs a recorded tx_hash: use POST "
                    f'/reports/checkpoints/{checkpoint_id}/confirm with {{"tx_hash": ...}}'
                )
            if work.checkpoints.move(checkpoint_id, row.status, target):
                moved = work.checkpoints.get(checkpoint_id)
                work.commit()
                assert moved is not None
                return moved
    raise Conflict(f"checkpoint {checkpoint_id} changed concurrently; read it and retry")
