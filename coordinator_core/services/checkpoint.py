"""Emission checkpoints: building them, and the two admin actions on them.

Periods are contiguous, aligned to ``CHECKPOINT_ANCHOR`` every ``CHECKPOINT_INTERVAL_SECONDS``.
Each pays the scores resolved in ``(period_start, period_end]`` (``domain.periods``): the snapshots
whose period ends in it. The next starts where the last ended, so no score falls between two
checkpoints, and a score resolved inside a paid period is late (``services.score``): it counts in
the next one. A period with no snapshots is folded into the next one. Missed periods are built in
order. Models with no scored prediction in the period are not ranked. Window scores follow the
aggregator (``domain.windows``).

A checkpoint waits for its period's rounds: while a round whose ``resolvable_at`` is at or before
the period's end is still unresolved (neither scored nor given up), the period is not built until
``CHECKPOINT_WAIT_SECONDS`` after its end; then it is built without them (their scores, when they
come, are late), and the number left out is stored in ``meta_jsonb.unsettled_rounds``.

Each checkpoint carries the Merkle root of its snapshots and the scores they sum
(``merkle_tree``, ``coordinator_core.merkle``) and the verdict of the gate before money moves
(``domain.gate``): a checkpoint that fails it is stored GATED with the reasons, never PENDING.

Virtual ensembles are never paid: they are left out of the period's ranking, so of its payees and
of the paid models' ranks. Clone clusters (``CrunchContract.clusters``, ``services.contribution``)
are computed over the period's point-forecast streams; each cluster is one emission slot, held at
its best-ranked leader's place and split equally inside it, whatever the strategy: every member's
ranking entry carries ``slot`` (the representative's id) and ``coordinator_core.emission`` weighs
the slots. The clusters and their evidence are stored in ``meta_jsonb.clusters``. With an ensemble
in the contract every entry carries ``contribution`` over the period, computed without the
non-representative members of the clusters (a copy changes nobody's contribution); the
``contribution`` strategy pays by it.

Status moves: ``confirm_checkpoint`` (PENDING → SUBMITTED with the transaction hash, after the gate
runs again) and ``advance_checkpoint`` (SUBMITTED → CLAIMABLE → PAID); each raises ``NotFound`` or
``Conflict``.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from coordinator_core import merkle
from coordinator_core.clock import parse_utc
from coordinator_core.config import Settings
from coordinator_core.contract import CrunchContract, is_virtual
from coordinator_core.domain.emission_strategy import EmissionStrategy
from coordinator_core.domain.gate import GateVerdict, check_emission, participant_shares
from coordinator_core.domain.ranking import LeaderboardEntry, build_ranking, ranked_json
from coordinator_core.domain.statuses import CheckpointStatus, allowed_moves
from coordinator_core.emission import default_build_emission
from coordinator_core.errors import Conflict, NotFound
from coordinator_core.ports import CheckpointRow, UnitOfWork, UnitOfWorkFactory
from coordinator_core.services.contribution import annotate_entries, window_rounds
from coordinator_core.services.score import SCORE_LOCK, refresh_derived, window_scores

log = logging.getLogger(__name__)


def last_boundary(settings: Settings, now: datetime) -> datetime:
    anchor = parse_utc(settings.checkpoint_anchor)
    interval = settings.checkpoint_interval_seconds
    elapsed = int((now - anchor).total_seconds())
    return anchor + timedelta(seconds=elapsed - elapsed % interval)


def period_ranking(
    work: UnitOfWork, contract: CrunchContract, start: datetime, end: datetime
) -> list[LeaderboardEntry]:
    """Models ranked over the scores resolved in ``(start, end]`` (the snapshots ending in it: their
    periods divide the checkpoint interval), scored as the leaderboard windows are. Virtual
    ensembles are left out (never paid, never counted for a rank)."""
    key, direction = contract.aggregation.ranking_key, contract.aggregation.ranking_direction
    totals = {m: t for m, t in window_scores(work, contract, start, end, None).items() if not is_virtual(m)}
    participants = work.models.participants(list(totals))
    return build_ranking({key: totals}, key, participants, key, direction, contract.rank, require_scored=True)


def period_slots(
    work: UnitOfWork, contract: CrunchContract, start: datetime, end: datetime, entries: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The ranked ``entries`` of ``(start, end]`` annotated for the emission and the clusters' stored
    form (``services.contribution.annotate_entries`` on the period's rounds)."""
    if not entries or (not contract.clusters.enabled and not contract.ensembles):
        return entries, None
    return annotate_entries(contract, window_rounds(work, start, end), entries)


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


def code_identity(function: Any) -> dict[str, Any]:
    """``{"path": "module:qualname", "sha256": hex of the function's source}`` (``sha256`` is
    ``None`` when the source cannot be read, e.g. a builtin)."""
    target = inspect.unwrap(function)
    path = f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', type(target).__name__)}"
    try:
        digest: str | None = hashlib.sha256(inspect.getsource(target).encode()).hexdigest()
    except (OSError, TypeError):
        digest = None
    return {"path": path, "sha256": digest}


# -- tamper evidence --------------------------------------------------------------------------------
def merkle_tree(
    work: UnitOfWork, checkpoint_id: str, start: datetime, end: datetime, emission: Mapping[str, Any]
) -> merkle.CheckpointTree:
    """The checkpoint's Merkle tree (``coordinator_core.merkle``) from the stored rows: the snapshots
    ending in ``(start, end]`` and the scores they sum (``scored_at`` in ``(start, end]``), plus the
    period and the emission document."""
    leaves: list[dict[str, Any]] = [
        merkle.snapshot_leaf(
            s.id,
            s.model_id,
            s.period_start,
            s.period_end,
            s.totals.value_sum,
            s.totals.prediction_count,
            s.totals.scored_count,
            s.totals.failed_count,
            s.totals.absent_count,
        )
        for s in work.scores.snapshots_between(start, end)
    ]
    leaves += [
        merkle.score_leaf(r.prediction_id, r.model_id, r.input_id, r.prediction_status, r.value, r.success, r.scored_at)
        for r in work.scores.scores_between(start, end)
    ]
    header = merkle.checkpoint_leaf(checkpoint_id, start, end, dict(emission))
    return merkle.CheckpointTree.build(header, leaves)


def checkpoint_proof(uow: UnitOfWorkFactory, checkpoint_id: str, model_id: str) -> dict[str, Any]:
    """The inclusion proof of ``model_id`` in a checkpoint: its leaves as stored now and the audit
    path, against the root stored when the checkpoint was built (``coordinator_core.merkle``). A
    stored score changed since then makes the proof fail ``merkle.verify_proof``."""
    with uow() as work:
        row = work.checkpoints.get(checkpoint_id)
        if row is None:
            raise NotFound(f"checkpoint {checkpoint_id!r} not found")
        tree = merkle_tree(work, row.id, row.period_start, row.period_end, row.emission)
    if model_id not in tree.by_model:
        raise NotFound(f"model {model_id!r} has no score or snapshot in checkpoint {checkpoint_id}")
    proof = tree.proof(model_id)
    proof["stored_root"] = row.merkle_root
    proof["root"] = row.merkle_root or proof["root"]
    return proof


def verify_checkpoint(uow: UnitOfWorkFactory, checkpoint_id: str) -> tuple[str | None, str]:
    """``(stored root, root recomputed from the rows now)`` of a checkpoint."""
    with uow() as work:
        row = work.checkpoints.get(checkpoint_id)
        if row is None:
            raise NotFound(f"checkpoint {checkpoint_id!r} not found")
        return row.merkle_root, merkle_tree(work, row.id, row.period_start, row.period_end, row.emission).root


# -- the gate ---------------------------------------------------------------------------------------
def gate_verdict(
    work: UnitOfWork,
    emission: Mapping[str, Any],
    start: datetime,
    end: datetime,
    max_share_change: float | None,
    root_ok: bool | None = None,
) -> GateVerdict:
    """``domain.gate.check_emission`` on what the unit of work holds now: the scored predictions of
    the period per model and the shares of the previous checkpoint that was not gated."""
    scored = {m: t.scored_count for m, t in work.scores.window_totals(start, end).items()}
    previous = work.checkpoints.previous(end)
    shares = participant_shares(previous.emission) if previous is not None else None
    return check_emission(emission, scored, shares, max_share_change, root_ok)


def build_checkpoints(uow: UnitOfWorkFactory, contract: CrunchContract, settings: Settings, now: datetime) -> list[str]:
    """Build every checkpoint due at ``now``; returns the ids written (empty when none was due).

    Each is stored with its Merkle root and the gate's verdict: PENDING when it passes (flags
    recorded), GATED with the reasons when it does not (it can then never be confirmed)."""
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
        wait = timedelta(seconds=settings.checkpoint_wait_seconds)
        while end <= now:
            unsettled = work.rounds.unsettled(end)
            if unsettled and now < end + wait:
                log.info(
                    "checkpoint ending %s waits for %d unresolved rounds (until %s at most)", end, unsettled, end + wait
                )
                break
            snapshot_count = work.scores.snapshot_count(start, end)
            if snapshot_count:
                ranking = period_ranking(work, contract, start, end)
                entries, clusters = period_slots(work, contract, start, end, ranked_json(ranking))
                emission = emission_document(contract, entries)
                checkpoint_id = f"CKP_{end:%Y%m%d_%H%M%S}"
                tree = merkle_tree(work, checkpoint_id, start, end, emission)
                verdict = gate_verdict(work, emission, start, end, settings.checkpoint_max_share_change)
                status = CheckpointStatus.PENDING if verdict.passed else CheckpointStatus.GATED
                work.checkpoints.add(
                    {
                        "id": checkpoint_id,
                        "period_start": start,
                        "period_end": end,
                        "status": status.value,
                        "entries_jsonb": [emission],
                        "meta_jsonb": {
                            "snapshot_count": snapshot_count,
                            "unsettled_rounds": unsettled,
                            "model_count": len(ranking),
                            "ranking": entries,
                            "ranking_key": contract.aggregation.ranking_key,
                            "emission_strategy": strategy_of(contract),
                            **({"clusters": clusters} if clusters is not None else {}),
                            "scoring_rule": code_identity(contract.scoring_function),
                            "merkle": {"version": merkle.PROOF_VERSION, "leaf_count": tree.leaf_count},
                        },
                        "created_at": now,
                        "tx_hash": None,
                        "submitted_at": None,
                        "merkle_root": tree.root,
                        "gate_jsonb": verdict.to_json("build", now),
                    }
                )
                written.append(checkpoint_id)
                if verdict.passed:
                    log.info("checkpoint %s: %d models over %s .. %s", checkpoint_id, len(ranking), start, end)
                else:
                    log.warning("checkpoint %s GATED: %s", checkpoint_id, verdict.reasons())
                start = end
            end = end + interval
        work.commit()
    return written


def confirm_checkpoint(
    uow: UnitOfWorkFactory, checkpoint_id: str, tx_hash: str, now: datetime, max_share_change: float | None = None
) -> CheckpointRow:
    """Record the transaction that paid a PENDING checkpoint: status SUBMITTED, ``tx_hash`` and
    ``submitted_at``. Repeating with the recorded hash changes nothing and returns it; another
    hash, or a checkpoint that is not PENDING, is a ``Conflict``.

    Before it leaves PENDING the gate runs again on the stored emission, the scored predictions as
    stored now and the Merkle root recomputed from the rows: a checkpoint that fails is stored
    GATED with the reasons (committed) and the confirm is a ``Conflict`` naming them."""
    with uow() as work:
        row = work.checkpoints.get(checkpoint_id)
        if row is None:
            raise NotFound(f"checkpoint {checkpoint_id!r} not found")
        if row.status == CheckpointStatus.GATED.value:
            raise Conflict(f"checkpoint {checkpoint_id} is GATED and cannot be confirmed: {gate_reasons(row)}")
        if row.status == CheckpointStatus.PENDING.value and row.tx_hash is None:
            recomputed = merkle_tree(work, row.id, row.period_start, row.period_end, row.emission).root
            root_ok = None if row.merkle_root is None else recomputed == row.merkle_root
            verdict = gate_verdict(work, row.emission, row.period_start, row.period_end, max_share_change, root_ok)
            status = CheckpointStatus.PENDING if verdict.passed else CheckpointStatus.GATED
            stored = verdict.to_json("confirm", now, row.gate)
            if row.merkle_root is None:
                stored["flags"].append("no Merkle root stored (built before schema revision 0004)")
            if work.checkpoints.set_gate(checkpoint_id, CheckpointStatus.PENDING.value, status.value, stored):
                if not verdict.passed:
                    work.commit()
                    log.warning("checkpoint %s GATED at confirm: %s", checkpoint_id, verdict.reasons())
                    raise Conflict(f"checkpoint {checkpoint_id} failed the gate and is now GATED: {verdict.reasons()}")
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


def gate_reasons(row: CheckpointRow) -> str:
    """The blocking reasons recorded with a checkpoint (``"none recorded"`` when there are none)."""
    blocked = (row.gate or {}).get("blocked") or []
    return "; ".join(str(b) for b in blocked) or "none recorded"


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
