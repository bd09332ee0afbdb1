from tracker import TrackerBase


class MeanReversion(TrackerBase):
    """Expects half of the deviation from the 24-candle mean to close."""

    def predict(self, subject, horizon_seconds, step_seconds):
        closes = self.closes(subject)[-24:]
        if not closes:
            return {"value": 0.0}
        mean = sum(closes) / len(closes)
        return {"value": 0.5 * (mean - closes[-1]) / closes[-1]}
