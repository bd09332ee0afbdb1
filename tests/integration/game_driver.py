"""Drive a game's own ``TrackerEvaluator`` the way the game does and write what it scored, as JSON.

Run by ``test_game_agreement.py`` as a subprocess in the game's own interpreter (``.venv-condor``
for condorgame, which needs Python 3.12; ``.venv`` for crunch-synth); it imports nothing from this
project, only the game's package::

    python game_driver.py <condorgame|crunch_synth> <input.json> <output.json>

Input: ``{"asset", "profile", "history": [[ts, price], ...], "test": [[ts, price], ...], "trackers": [...]}``.
Driving, as the packages' own example scripts do: first tick with the whole history, then one tick
per test price, and ``evaluator.predict(asset, horizon, steps)`` whenever ``ts - prev_ts >= interval``.
Each predict call is recorded with the round's timestamp (the last stored price, which is also the
evaluation time of whatever pops), the rounded prediction that ``predict_all`` returned, the
release times that popped and the score the evaluator stored for them (plus, for crunch-synth, the
volatility part). When several rounds pop at once, each one's own score is also recovered with the
evaluator's own scoring method on that entry alone.
"""

from __future__ import annotations

import copy
import importlib
import json
import sys
import time
import warnings

import numpy as np


def make_mixture_tracker(tracker_base: type, package: str) -> type:
    """A deterministic tracker using nested mixtures, several families, scipy and (crunch-synth) statistics."""

    class MixtureTracker(tracker_base):  # type: ignore[misc, valid-type]
        def predict(self, asset: str, horizon: int, step: int) -> list:
            pairs = self.prices.get_prices(asset, days=3, resolution=300)
            if len(pairs) < 3:
                return []
            returns = np.diff([p for _, p in pairs])
            mu, sigma = float(np.mean(returns)), float(np.std(returns))
            a = step / 300
            out = []
            for k in range(1, horizon // step + 1):
                scale = float(np.sqrt(a) * sigma * (1 + 0.02 * k))
                core = {"type": "builtin", "name": "norm", "params": {"loc": a * mu, "scale": scale}}
                if package == "crunch_synth" and step == 900:
                    core = {"type": "statistics", "name": "normal", "params": {"mu": a * mu, "sigma": scale}}
                if step >= 1800 and package == "crunch_synth":  # densitypdf freezes a scipy object per point: slow
                    tail = {"type": "scipy", "name": "laplace", "params": {"loc": 0.0, "scale": 0.8 * scale}}
                else:
                    tail = {"type": "builtin", "name": "laplace", "params": {"loc": 0.0, "scale": 0.8 * scale}}
                student = {"type": "builtin", "name": "t", "params": {"df": 4.0, "loc": -0.1 * scale, "scale": scale}}
                out.append(
                    {
                        "type": "mixture",
                        "components": [
                            {"density": core, "weight": 0.55},
                            {
                                "density": {
                                    "type": "mixture",
                                    "components": [{"density": student, "weight": 1}, {"density": tail, "weight": 2}],
                                },
                                "weight": 0.45,
                            },
                        ],
                    }
                )
            return out

    return MixtureTracker


def run(package: str, spec: dict) -> dict:
    constants = importlib.import_module(f"{package}.constants")
    tracker_module = importlib.import_module(f"{package}.tracker")
    evaluator_module = importlib.import_module(f"{package}.tracker_evaluator")
    profile = constants.FORECAST_PROFILES[spec["profile"]]
    horizon, steps, interval = profile["horizon"], profile["steps"], profile["interval"]
    asset = spec["asset"]
    history = [(int(t), float(p)) for t, p in spec["history"]]
    test = [(int(t), float(p)) for t, p in spec["test"]]
    factories = {
        "example": lambda: importlib.import_module(f"{package}.examples.exampletracker").GaussianStepTracker(),
        "benchmark": lambda: importlib.import_module(f"{package}.examples.benchmarktracker").GaussianStepTracker(),
        "mixture": lambda: make_mixture_tracker(tracker_module.TrackerBase, package)(),
    }
    out: dict = {"package": package, "trackers": {}}
    for name in spec["trackers"]:
        tracker = factories[name]()
        evaluator = evaluator_module.TrackerEvaluator(tracker)  # the defaults (crunch-synth: volatility on)
        recorded: list = []
        predict_all = tracker.predict_all

        def recording(*args, _inner=predict_all, _into=recorded, **kwargs):
            result = _inner(*args, **kwargs)
            _into.append(copy.deepcopy(result))
            return result

        tracker.predict_all = recording
        events = []
        started = time.perf_counter()
        evaluator.tick({asset: history})
        prev_ts = 0
        for ts, price in test:
            evaluator.tick({asset: [(ts, price)]})
            if ts - prev_ts < interval:
                continue
            prev_ts = ts
            n_scores = len(evaluator.scores[asset])
            n_vol = len(getattr(evaluator, "vol_scores", {}).get(asset, []))
            popped = evaluator.predict(asset, horizon, steps) or []
            last_ts = evaluator.tracker.prices.get_last_price(asset)[0]
            event = {
                "ts": int(last_ts),
                "prediction": {str(k): v for k, v in recorded[-1].items()},
                "popped": [int(entry[0]) for entry in popped],
            }
            if popped:
                assert len(evaluator.scores[asset]) == n_scores + 1
                event["score"] = float(evaluator.scores[asset][-1][1])
                vol_scores = getattr(evaluator, "vol_scores", {}).get(asset, [])
                event["vol"] = float(vol_scores[-1][1]) if len(vol_scores) > n_vol else None
                if len(popped) > 1:  # recover each round's own score with the evaluator's own method
                    own = getattr(evaluator, "_score_quarantines_with_volatility", None)
                    event["per_round"] = [
                        float(own(asset, [entry])[0]) if own else float(evaluator._score_quarantines(asset, [entry]))
                        for entry in popped
                    ]
            events.append(event)
        out["trackers"][name] = {"events": events, "seconds": time.perf_counter() - started}
    return out


def main() -> None:
    package, source, target = sys.argv[1:4]
    with open(source) as f:
        spec = json.load(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(package, spec)
    with open(target, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
