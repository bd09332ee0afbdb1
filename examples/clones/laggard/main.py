import math
from collections import deque

from tracker import TrackerBase

SECONDS = {"1s": 1, "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400}


class Laggard(TrackerBase):
    """momentum's answer of two rounds ago (per horizon): a stale copy."""

    def __init__(self):
        super().__init__()
        self.queues = {}

    def predict(self, subject, horizon_seconds, step_seconds):
        closes = self.closes(subject)[-13:]
        value = 0.0
        if len(closes) >= 2:
            steps = horizon_seconds / SECONDS.get(self.latest[subject].get("granularity"), 3600)
            mean = (math.log(closes[-1]) - math.log(closes[0])) / (len(closes) - 1)
            value = math.expm1(mean * steps)
        queue = self.queues.setdefault((subject, horizon_seconds), deque(maxlen=3))
        queue.append(value)
        return {"value": queue[0]}
