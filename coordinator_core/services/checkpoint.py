"""Emission checkpoints: contiguous periods aligned to ``CHECKPOINT_ANCHOR`` every
``CHECKPOINT_INTERVAL_SECONDS``. Each covers the snapshots whose period ends in
``(period_start, period_end]``; the next starts where the last ended, so no snapshot falls between
two checkpoints (scoring never stamps scores inside a checkpointed period). A period with no
snapshots is folded into the next one. Missed periods are built in order.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from coordinator_core.clock import parse_utc
from coordinator_core.config import Settings
from coordinator_core.contract import CrunchContract
from coordinator_core.db.engine import advisory_lock, unit_of_work, upsert_statement
from coordinator_core.db.tables import Checkpoint, CheckpointStatus, Model, Snapshot
from coordinator_core.leaderboard import window_totals
from coordinator_core.services.score import SCORE_LOCK

log = logging.getLogger(__name__)


def last_boundary(settings: Settings, now: datetime) -> datetime:
    anchor = parse_utc(settings.checkpoint_anchor)
    interval = settings.checkpoint_interval_seconds
    elapsed = int((now - anchor).total_seconds())
    return anchor + timedelta(seconds=elapsed - elapsed % interval)


def ranked_entries(
    session: Session, contract: CrunchContract, start: datetime, end: datetime
) -> tuple[list[dict[str, Any]], int]:
    """Models ranked over snapshots ending in (start, end]; models with no scored prediction are left out."""
    # snapshots are aligned to periods that divide the checkpoint interval: ending in (start, end]
    # is the same as starting in [start, end)
    snapshot_count = session.exec(
        select(func.count()).select_from(Snapshot).where(Snapshot.period_end > start, Snapshot.period_end <= end)
    ).one()
    totals = [
        dict(row, model_id=model_id)
        for model_id, row in window_totals(session, start, end).items()
        if row["scored_count"] > 0
    ]
    models = {m.id: m for m in session.exec(select(Model).where(col(Model.id).in_([t["model_id"] for t in totals])))}
    key, direction = contract.aggregation.ranking_key, contract.aggregation.ranking_direction
    entries = []
    for row in totals:
        model = models.get(row["model_id"])
        entries.append(
            {
                "model_id": row["model_id"],
                "model_name": model.name if model else row["model_id"],
                "cruncher_name": model.player_name if model else "Unknown",
                "player_id": model.player_id if model else row["model_id"],
                "wallet": model.wallet if model else None,
                "metrics": {key: row["score"]},
                "prediction_count": row["prediction_count"],
                "scored_count": row["scored_count"],
                "failed_count": row["failed_count"],
                "absent_count": row["absent_count"],
            }
        )
    return contract.rank(entries, key, direction), int(snapshot_count)


def build_checkpoints(engine: Engine, contract: CrunchContract, settings: Settings, now: datetime) -> list[str]:
    """Build every checkpoint due at ``now``; returns the ids written (empty when none was due)."""
    interval = timedelta(seconds=settings.checkpoint_interval_seconds)
    written: list[str] = []
    with unit_of_work(engine) as session:
        advisory_lock(session, SCORE_LOCK)
        last_end = session.exec(select(func.max(Checkpoint.period_end))).one()
        if last_end is None:
            first_snapshot = session.exec(select(func.min(Snapshot.period_start))).one()
            if first_snapshot is None:
                return []
            start = last_boundary(settings, first_snapshot)  # the aligned period holding the first score
            end = start + interval
        else:
            start, end = last_end, last_end + interval
        while end <= now:
            ranking, snapshot_count = ranked_entries(session, contract, start, end)
            if snapshot_count:
                emission = contract.build_emission(
                    ranking,
                    crunch_pubkey=contract.crunch_pubkey,
                    compute_provider=contract.compute_provider,
                    data_provider=contract.data_provider,
                )
                checkpoint_id = f"CKP_{end:%Y%m%d_%H%M%S}"
                session.execute(
                    upsert_statement(session, Checkpoint.__table__, ["period_end"]),
                    [
                        {
                            "id": checkpoint_id,
                            "period_start": start,
                            "period_end": end,
                            "status": CheckpointStatus.PENDING.value,
                            "entries_jsonb": [emission],
                            "meta_jsonb": {
                                "snapshot_count": snapshot_count,
                                "model_count": len(ranking),
                                "ranking": ranking,
                                "ranking_key": contract.aggregation.ranking_key,
                            },
                            "created_at": now,
                            "tx_hash": None,
                            "submitted_at": None,
                        }
                    ],
                )
                written.append(checkpoint_id)
                log.info("checkpoint %s: %d models over %s .. %s", checkpoint_id, len(ranking), start, end)
                start = end
            end = end + interval
    return written
