import math
import random

from tracker import TrackerBase


class Noisy(TrackerBase):
    """A random guess with the recent volatility, seeded by the input time."""

    def predict(self, subject, horizon_seconds, step_seconds):
        data = self.latest.get(subject, {})
        closes = self.closes(subject)[-48:]
        returns = [math.log(b / a) for a, b in zip(closes, closes[1:])]
        sigma = (sum(r * r for r in returns) / len(returns)) ** 0.5 if returns else 0.001
        rng = random.Random(f"{data.get('asof_ts')}|{horizon_seconds}")
        return {"value": rng.gauss(0.0, sigma)}
