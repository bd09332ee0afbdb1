"""A seeded, fat-tailed synthetic price at any granularity, deterministic for every timestamp.

A daily skeleton (Student-t, ν=3, unit-variance increments) fixes the price at each UTC midnight;
inside a day a GARCH(1,1) walk of 1-second-scaled Student-t steps is bridged to the next midnight.
Every day depends only on (seed, subject, day), so any range is reproducible and cheap, and
re-ingesting the same time writes the same values.
"""

from __future__ import annotations

import math
import random
import threading
import zlib
from datetime import UTC, datetime, timedelta

from coordinator_core.config import granularity_seconds
from coordinator_core.feeds.base import FeedScope, SourceRecord

ORIGIN = datetime(2015, 1, 1, tzinfo=UTC)
DAY_CACHE = 96  # day paths kept per process (shared by every source: a path depends only on its key)
_DAYS: dict[tuple[int, float, str, int, int], list[float]] = {}
_DAYS_LOCK = threading.Lock()
SIGMA_1M = 0.0007
NU = 3.0


def _student_t(rng: random.Random) -> float:
    """A unit-variance Student-t(ν=3) draw."""
    normal = rng.gauss(0.0, 1.0)
    chi2 = sum(rng.gauss(0.0, 1.0) ** 2 for _ in range(int(NU)))
    return normal / math.sqrt(chi2 / NU) * math.sqrt((NU - 2) / NU)


class SyntheticSource:
    name = "synthetic"
    page_limit = 100_000
    live = False

    def history_end(self, subject: str) -> datetime | None:
        return None

    def __init__(self, seed: int = 7, start_price: float = 60_000.0) -> None:
        self.seed = seed
        self.start_price = start_price
        self._midnights: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _rng(self, subject: str, *parts: int) -> random.Random:
        return random.Random(zlib.crc32(f"{self.seed}|{subject}|{'|'.join(map(str, parts))}".encode()))

    def _log_midnight(self, subject: str, day: int) -> float:
        with self._lock:
            path = self._midnights.setdefault(
                subject, [math.log(self.start_price * (1 + 0.1 * (zlib.crc32(subject.encode()) % 7)))]
            )
            sigma_day = SIGMA_1M * math.sqrt(1440)
            while len(path) <= day:  # each day's move has its own seed: order of requests is irrelevant
                path.append(path[-1] + sigma_day * _student_t(self._rng(subject, -1, len(path))))
            return path[day]

    def _day_path(self, subject: str, day: int, step_seconds: int) -> list[float]:
        """Log prices at each step of the day, index 0 = midnight, last = next midnight."""
        key = (self.seed, self.start_price, subject, day, step_seconds)
        cached = _DAYS.get(key)
        if cached is not None:
            return cached
        steps = 86_400 // step_seconds
        rng = self._rng(subject, day, step_seconds)
        sigma_bar = SIGMA_1M * math.sqrt(step_seconds / 60)
        alpha, beta = 0.05, 0.94
        omega = (1 - alpha - beta) * sigma_bar**2
        variance, shock = sigma_bar**2, 0.0
        walk = [0.0]
        # ``_student_t(rng)`` inlined (the same draws in the same order, so the same values): four
        # ``gauss`` draws are two Box-Muller pairs from a fresh generator
        uniform, sqrt, log, cos, sin, two_pi = rng.random, math.sqrt, math.log, math.cos, math.sin, 2.0 * math.pi
        scale = math.sqrt((NU - 2) / NU)
        position = 0.0
        for _ in range(steps):
            angle = uniform() * two_pi
            radius = sqrt(-2.0 * log(1.0 - uniform()))
            normal, second = cos(angle) * radius, sin(angle) * radius
            angle = uniform() * two_pi
            radius = sqrt(-2.0 * log(1.0 - uniform()))
            third, fourth = cos(angle) * radius, sin(angle) * radius
            chi2 = second**2 + third**2 + fourth**2
            variance = omega + alpha * shock**2 + beta * variance
            shock = sqrt(variance) * (normal / sqrt(chi2 / NU) * scale)
            position = position + shock
            walk.append(position)
        start, end = self._log_midnight(subject, day), self._log_midnight(subject, day + 1)
        drift = (end - start - walk[-1]) / steps
        path = [start + w + drift * i for i, w in enumerate(walk)]
        with _DAYS_LOCK:
            if len(_DAYS) >= DAY_CACHE:
                _DAYS.pop(next(iter(_DAYS)))  # the oldest day computed
            _DAYS[key] = path
        return path

    def price_at(self, subject: str, when: datetime, step_seconds: int) -> float:
        offset = int((when - ORIGIN).total_seconds())
        day, second = divmod(offset, 86_400)
        return math.exp(self._day_path(subject, day, step_seconds)[second // step_seconds])

    def _prices(self, subject: str, start: datetime, span: int, sub: int) -> list[float]:
        """``price_at`` at every ``sub`` seconds of ``[start, start + span]``, read from the day paths."""
        offset = int((start - ORIGIN).total_seconds())
        out: list[float] = []
        exp = math.exp
        for second in range(offset, offset + span + 1, sub):
            day, within = divmod(second, 86_400)
            out.append(exp(self._day_path(subject, day, sub)[within // sub]))
        return out

    def fetch(self, scope: FeedScope, start: datetime, end: datetime, limit: int | None = None) -> list[SourceRecord]:
        step = granularity_seconds(scope.granularity)
        sub = max(1, step // 60) if scope.kind == "candle" else step
        first = max(start, ORIGIN)
        epoch = int(first.timestamp())
        ts = datetime.fromtimestamp(epoch + (-epoch) % step, UTC)
        records: list[SourceRecord] = []
        while ts <= end and (limit is None or len(records) < limit):
            if scope.kind == "tick":
                records.append(SourceRecord(ts, {"price": round(self.price_at(scope.subject, ts, step), 2)}))
            else:
                prices = self._prices(scope.subject, ts, step, sub)
                rng = self._rng(scope.subject, int(ts.timestamp()), 0)
                ret = abs(math.log(prices[-1] / prices[0]))
                volume = rng.lognormvariate(math.log(20 * step / 60), 0.5) * (
                    1 + 5 * ret / (SIGMA_1M * math.sqrt(step / 60))
                )
                records.append(
                    SourceRecord(
                        ts,
                        {
                            "open": round(prices[0], 2),
                            "high": round(max(prices), 2),
                            "low": round(min(prices), 2),
                            "close": round(prices[-1], 2),
                            "volume": round(volume, 6),
                        },
                    )
                )
            ts += timedelta(seconds=step)
        return records
