"""Statuses and the moves allowed between them."""

from __future__ import annotations

from enum import StrEnum


class InputStatus(StrEnum):
    RECEIVED = "RECEIVED"
    RESOLVED = "RESOLVED"


class PredictionStatus(StrEnum):
    PENDING = "PENDING"
    SCORED = "SCORED"
    FAILED = "FAILED"
    ABSENT = "ABSENT"


class ModelState(StrEnum):
    """The registry's states (``models.state``). A gateway may report other states (``UNKNOWN``,
    ``STARTING``, …): every state but RUNNING is *not running*, and only DEREGISTERED is *not
    registered* (no ABSENT rows; see ``services.predict``). VIRTUAL rows are the contract's ensembles,
    outside both rules."""

    RUNNING = "RUNNING"
    STOPPED = "STOPPED"  # registered, but the gateway no longer reports it (or reports it stopped)
    DEREGISTERED = "DEREGISTERED"  # left the competition: never seen running for too long, or by hand
    VIRTUAL = "VIRTUAL"  # a contract's ensemble (``ensemble:<name>``): never asked, never absent, never deregistered


class CheckpointStatus(StrEnum):
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    CLAIMABLE = "CLAIMABLE"
    PAID = "PAID"
    GATED = "GATED"  # refused by the gate before money moved (reasons in gate_jsonb); final, never confirmable


#: The one forward move out of each checkpoint status (PAID and GATED are final).
CHECKPOINT_TRANSITIONS = {
    CheckpointStatus.PENDING: CheckpointStatus.SUBMITTED,
    CheckpointStatus.SUBMITTED: CheckpointStatus.CLAIMABLE,
    CheckpointStatus.CLAIMABLE: CheckpointStatus.PAID,
}


def allowed_moves(status: str) -> list[str]:
    """The statuses a checkpoint in ``status`` may move to (empty for PAID, GATED or an unknown status)."""
    known = {s.value: s for s in CheckpointStatus}
    target = CHECKPOINT_TRANSITIONS.get(known[status]) if status in known else None
    return [target.value] if target is not None else []
