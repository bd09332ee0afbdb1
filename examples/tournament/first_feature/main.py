"""Ranks the ids by their first feature only."""

from tracker import TrackerBase


class FirstFeature(TrackerBase):
    def tick(self, data):
        self.era = data

    def predict(self, subject, horizon_seconds, step_seconds):
        return {"predictions": {i: row[0] for i, row in zip(self.era["ids"], self.era["features"])}}
