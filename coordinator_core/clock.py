"""Clocks: time is a parameter. Services take ``now`` explicitly; flows take an optional ``as_of``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to (backtests, tests)."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start, "start")

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now = self._now + timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = ensure_utc(when, "when")


def ensure_utc(value: datetime, name: str = "timestamp") -> datetime:
    """Return ``value`` in UTC; a naive datetime is refused (the edges must say their zone)."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {value.isoformat()}); add 'Z' or '+00:00'")
    return value.astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """Read a datetime from storage: naive values (SQLite) are UTC by construction."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_utc(text: str, name: str = "timestamp") -> datetime:
    """Parse ISO-8601; a value without offset is read as UTC (documented at the CLI and API)."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{name}: {text!r} is not an ISO-8601 timestamp (e.g. 2019-10-01T00:00:00Z)") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def floor_time(value: datetime, seconds: int) -> datetime:
    """Floor ``value`` to a multiple of ``seconds`` since the Unix epoch."""
    epoch = int(value.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def to_epoch_ms(value: datetime) -> int:
    return int(round(value.timestamp() * 1000))


def from_epoch_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def resolve_now(as_of: datetime | None) -> datetime:
    """``as_of`` if given (must be aware), else the system time: how every flow picks its time."""
    return ensure_utc(as_of, "as_of") if as_of is not None else SystemClock().now()
