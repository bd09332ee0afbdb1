"""Build every emission checkpoint due now and publish each as an artifact."""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from coordinator_core.clock import resolve_now
from coordinator_core.reports import checkpoint_summary
from tasks.competition import build_checkpoints
from tasks.reports import publish_checkpoint


@flow(name="build-checkpoint", log_prints=True)
def build_checkpoint(as_of: datetime | None = None) -> list[str]:
    """Returns the ids of the checkpoints written (empty when none was due)."""
    now = resolve_now(as_of)
    written = build_checkpoints(now)
    for checkpoint_id in written:
        publish_checkpoint(checkpoint_id)
    print(checkpoint_summary(written, now))
    return written
