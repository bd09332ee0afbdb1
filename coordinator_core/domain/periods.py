"""Which period a score belongs to: the one definition of time in the derived tables.

A score belongs to the time its ground truth became known (its resolution time, ``scored_at``).
Snapshot periods, leaderboard windows and checkpoint periods are all left-open, right-closed
intervals ``(start, end]`` of score times: a score resolved at exactly 10:00 belongs to the
snapshot ``(09:00, 10:00]``, to the 24 h window ending at 10:00 and to the checkpoint that ends at
10:00. So a window of 24 hours ending on a period boundary is exactly 24 whole snapshots, and a
checkpoint pays exactly the scores resolved inside it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def period_start(moment: datetime, seconds: int) -> datetime:
    """The start of the period ``(start, start + seconds]`` that holds ``moment`` (periods are
    aligned to the Unix epoch)."""
    epoch = moment.timestamp()
    index = -(-epoch // seconds) - 1  # ceil(epoch / seconds) - 1
    return datetime.fromtimestamp(index * seconds, UTC)


def inside(moment: datetime, start: datetime, end: datetime) -> bool:
    """``start < moment <= end``."""
    return start < moment <= end


def aligned(moment: datetime, seconds: int) -> bool:
    return moment.timestamp() % seconds == 0


def period_end(moment: datetime, seconds: int) -> datetime:
    return period_start(moment, seconds) + timedelta(seconds=seconds)
