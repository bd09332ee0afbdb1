import math

from tracker import TrackerBase

SECONDS = {"1s": 1, "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400}


class Momentum(TrackerBase):
    """The mean log-return of the last 12 candles, scaled to the horizon."""

    def predict(self, subject, horizon_seconds, step_seconds):
        closes = self.closes(subject)[-13:]
        if len(closes) < 2:
            return {"value": 0.0}
        steps = horizon_seconds / SECONDS.get(self.latest[subject].get("granularity"), 3600)
        mean = (math.log(closes[-1]) - math.log(closes[0])) / (len(closes) - 1)
        return {"value": math.expm1(mean * steps)}
