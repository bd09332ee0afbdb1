"""Retrying calls to upstream feeds: capped exponential backoff with full jitter.

Only ``FeedUnavailable`` (timeouts, connection errors, 5xx, malformed bodies) is retried; a
``RateLimited`` waits at least its ``Retry-After``; ``FeedPermanentError`` and anything else is
raised at once. After the last attempt the last error is raised (Prefect may retry the task).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from coordinator_core.errors import FeedUnavailable, RateLimited

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Backoff:
    attempts: int = 5
    base_seconds: float = 0.5
    cap_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def delay(self, attempt: int, error: FeedUnavailable) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        jittered = self.rng.uniform(0, min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1)))
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return min(self.max_retry_after_seconds, error.retry_after) + jittered * 0.1
        return jittered

    def call(self, fn: Callable[[], T], what: str = "feed call") -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except FeedUnavailable as error:
                if attempt == self.attempts:
                    raise
                wait = self.delay(attempt, error)
                log.warning("%s failed (%s); retry %d/%d in %.2f s", what, error, attempt, self.attempts - 1, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")


def retry_after_seconds(value: str | None, default: float) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); ``default`` without one."""
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError, IndexError, OverflowError):
                pass
    return default
