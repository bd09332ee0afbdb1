"""Grid CRPS of a round of N trackers: the batch scorer against both games' own ``crps_integral``.

``.venv/bin/python -m benchmarks.scoring_bench [--trackers 20 100] [--profiles 1h 24h] [--repeat 3]``

A round of the BTC ``1h`` profile (79 densities per tracker: 60 one-minute, 12 five-minute, 4, 2
and 1) and of the ``24h`` profile (317 per tracker), N = 20 and N = 100 trackers, every resolution,
scored against the increments of one seeded 1-minute series. The trackers are a mix: 60 % one
normal in a one-component mixture (the packages' example tracker's format), 20 % two-normal
mixtures, 20 % three-leaf mixtures (normal, Student t, Laplace), all ``builtin``, parameters varying
per tracker and per increment.

* condorgame 0.5.3: its ``crps_integral`` (``densitypdf`` point by point over 256 points) looped over
  every density, in ``.venv-condor`` (Python 3.12) as a subprocess, timed inside that process;
* crunch-synth 0.15.0: its vectorised ``crps_integral`` (1024 points) looped over every density;
* ours: :func:`coordinator_core.scoring.grid_crps.crps_on_grid` on the whole round at once, in each
  game's mode (parsing the dicts included).

Times are per prediction (one density scored against one increment), the best of ``--repeat`` runs
(the game's loops: the best of 2 in-process, one run in the subprocess); values are checked equal
(maximum relative difference printed). Printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from coordinator_core.games.constants import CONDORGAME, CRUNCH_SYNTH, FORECAST_PROFILES
from coordinator_core.games.evaluation import crps_bounds_for
from coordinator_core.scoring.grid_crps import crps_on_grid
from coordinator_core.scoring.paths import PriceSeries, observed_increments

ROOT = Path(__file__).resolve().parent.parent
CONDOR_PYTHON = ROOT / ".venv-condor" / "bin" / "python"
ASSET = "BTC"

CONDOR_TIMING = """
import json, sys, time, warnings
import numpy as np
from condorgame.tracker_evaluator import crps_integral
warnings.simplefilter("ignore")
spec = json.load(open(sys.argv[1]))
densities, x, lo, hi = spec["densities"], spec["x"], spec["lo"], spec["hi"]
started = time.perf_counter()
values = [crps_integral(d, v, a, b, num_points=256) for d, v, a, b in zip(densities, x, lo, hi)]
elapsed = time.perf_counter() - started
json.dump({"values": values, "seconds": elapsed}, open(sys.argv[2], "w"))
"""


def norm(loc: float, scale: float) -> dict[str, Any]:
    return {"type": "builtin", "name": "norm", "params": {"loc": loc, "scale": scale}}


def component(density: dict[str, Any], weight: float) -> dict[str, Any]:
    return {"density": density, "weight": weight}


def tracker_density(kind: int, rng: np.random.Generator, sigma: float) -> dict[str, Any]:
    loc = float(rng.normal(0, 0.05 * sigma))
    if kind == 0:
        return {"type": "mixture", "components": [component(norm(loc, sigma), 1)]}
    if kind == 1:
        return {
            "type": "mixture",
            "components": [component(norm(loc, 0.7 * sigma), 0.6), component(norm(-loc, 1.6 * sigma), 0.4)],
        }
    student = {"type": "builtin", "name": "t", "params": {"df": 4.0, "loc": loc, "scale": 0.8 * sigma}}
    laplace = {"type": "builtin", "name": "laplace", "params": {"loc": 0.0, "scale": 0.7 * sigma}}
    return {
        "type": "mixture",
        "components": [component(norm(loc, sigma), 0.5), component(student, 0.3), component(laplace, 0.2)],
    }


def make_round(profile: str, trackers: int, seed: int) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray]:
    """(densities, observations, t_min, t_max) of every scored increment of every tracker."""
    spec = FORECAST_PROFILES[profile]
    rng = np.random.default_rng(seed)
    minutes = spec.horizon // 60 + 10
    ts = 1_767_225_600 + 60 * np.arange(minutes)
    series = PriceSeries(ts, 30_000 * np.exp(np.cumsum(rng.normal(0, 8e-4, minutes))))
    truth = observed_increments(series, int(ts[0]), spec.horizon, spec.steps)
    densities: list[Any] = []
    x, lo, hi = [], [], []
    kinds = np.array([0] * 6 + [1] * 2 + [2] * 2)
    for n in range(trackers):
        kind = int(kinds[n % 10])
        skill = float(rng.uniform(15, 45))
        for step in spec.steps:
            increments = truth.steps[step]
            bounds = crps_bounds_for(CRUNCH_SYNTH, ASSET, step)
            for i in np.flatnonzero(increments.scored):
                sigma = skill * math.sqrt(step / 60) * (1 + 0.01 * i)
                densities.append(tracker_density(kind, rng, sigma))
                x.append(float(increments.delta[i]))
                lo.append(bounds[0])
                hi.append(bounds[1])
    return densities, np.array(x), np.array(lo), np.array(hi)


def best_of(repeat: int, fn: Any) -> tuple[float, Any]:
    best, result = math.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def condor_loop(densities: list[Any], x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[float, np.ndarray]:
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.json", Path(folder) / "out.json"
        source.write_text(json.dumps({"densities": densities, "x": x.tolist(), "lo": lo.tolist(), "hi": hi.tolist()}))
        subprocess.run([str(CONDOR_PYTHON), "-c", CONDOR_TIMING, str(source), str(target)], check=True)
        out = json.loads(target.read_text())
    return float(out["seconds"]), np.array(out["values"])


def crunch_loop(densities: list[Any], x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    from crunch_synth.tracker_evaluator import crps_integral  # type: ignore[import-untyped]

    return np.array([crps_integral(d, v, a, b, 1024) for d, v, a, b in zip(densities, x, lo, hi, strict=True)])


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.abs(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trackers", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--profiles", nargs="+", default=["1h", "24h"], choices=sorted(FORECAST_PROFILES))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not CONDOR_PYTHON.exists():
        sys.exit(f"{CONDOR_PYTHON} is missing: run `make env` (condorgame needs its Python 3.12 venv)")

    header = (
        f"{'round':>9} {'preds':>6} | {'condorgame':>10} {'ours':>7} {'ratio':>6} {'max rel':>8} |"
        f" {'crunch-synth':>12} {'ours':>7} {'ratio':>6} {'max rel':>8}"
    )
    print("Grid CRPS per prediction (us), batch vs the games' own crps_integral")
    print(header)
    print("-" * len(header))
    for profile in args.profiles:
        for trackers in args.trackers:
            print(measure(profile, trackers, args.repeat))


def measure(profile: str, trackers: int, repeat: int) -> str:
    """One line of the table: both games' loops and ours on one round."""
    densities, x, lo, hi = make_round(profile, trackers, seed=trackers)
    n = len(densities)
    condor_seconds, condor_values = condor_loop(densities, x, lo, hi)
    ours_condor_seconds, ours_condor = best_of(
        repeat, lambda: crps_on_grid(densities, x, lo, hi, num_points=CONDORGAME.num_points, evaluator="condorgame")
    )
    crunch_seconds, crunch_values = best_of(2, lambda: crunch_loop(densities, x, lo, hi))
    ours_crunch_seconds, ours_crunch = best_of(
        repeat, lambda: crps_on_grid(densities, x, lo, hi, num_points=CRUNCH_SYNTH.num_points, evaluator="crunch_synth")
    )
    per = 1e6 / n
    return (
        f"{profile + ' N=' + str(trackers):>9} {n:>6} |"
        f" {condor_seconds * per:>10.1f} {ours_condor_seconds * per:>7.2f}"
        f" {condor_seconds / ours_condor_seconds:>5.0f}x {max_rel(ours_condor, condor_values):>8.1e} |"
        f" {crunch_seconds * per:>12.1f} {ours_crunch_seconds * per:>7.2f}"
        f" {crunch_seconds / ours_crunch_seconds:>5.1f}x {max_rel(ours_crunch, crunch_values):>8.1e}"
    )


if __name__ == "__main__":
    main()
