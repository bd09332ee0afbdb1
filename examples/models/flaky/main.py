from tracker import TrackerBase


class Flaky(TrackerBase):
    """An EMA-crossover trend guess that raises on about one call in eight."""

    def predict(self, subject, horizon_seconds, step_seconds):
        data = self.latest.get(subject, {})
        if (int(data.get("asof_ts", 0)) // 3600 + horizon_seconds // 3600) % 8 == 3:
            raise RuntimeError("feature pipeline crashed: division by zero in ema()")
        closes = self.closes(subject)
        if len(closes) < 2:
            return {"value": 0.0}
        fast = slow = closes[0]
        for close in closes[1:]:
            fast += 0.3 * (close - fast)
            slow += 0.05 * (close - slow)
        return {"value": 0.2 * (fast - slow) / slow}
