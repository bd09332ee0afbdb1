import math
import time

from tracker import TrackerBase


class Slow(TrackerBase):
    """Damped momentum; about one round in forty takes 1.3 s (longer than the default deadline)."""

    def predict(self, subject, horizon_seconds, step_seconds):
        data = self.latest.get(subject, {})
        if (int(data.get("asof_ts", 0)) // 3600) % 40 == 11 and horizon_seconds == 3600:
            time.sleep(1.3)
        closes = self.closes(subject)[-6:]
        if len(closes) < 2:
            return {"value": 0.0}
        return {"value": 0.3 * math.expm1(math.log(closes[-1] / closes[0]) / (len(closes) - 1))}
