"""Answers seeded noise (a model with no skill), and only for half of the ids on odd eras."""

import random

from tracker import TrackerBase


class Noise(TrackerBase):
    def tick(self, data):
        self.era = data

    def predict(self, subject, horizon_seconds, step_seconds):
        rng = random.Random(self.era["era"])
        ids = self.era["ids"] if self.era["era"] % 2 == 0 else self.era["ids"][: len(self.era["ids"]) // 3]
        return {"predictions": {i: rng.random() for i in ids}}
