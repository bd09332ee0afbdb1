from tracker import TrackerBase


class Sloppy(TrackerBase):
    """Last candle's return; sometimes answers a string instead of a number."""

    def predict(self, subject, horizon_seconds, step_seconds):
        data = self.latest.get(subject, {})
        closes = self.closes(subject)
        if len(closes) < 2:
            return {"value": 0.0}
        change = closes[-1] / closes[-2] - 1
        if int(data.get("asof_ts", 0)) // 3600 % 10 == 7:
            return {"value": "up" if change > 0 else "down"}
        return {"value": change}
