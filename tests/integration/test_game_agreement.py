"""AGREEMENT: every per-round score of ``score_rounds`` equals the game's own ``TrackerEvaluator``'s.

For each game and profile, a seeded synthetic 1-minute series (two days or more: one day of history
for the first tick, then the test prices) is fed to the package's evaluator, with its defaults
(crunch-synth's volatility term included), by ``game_driver.py`` running in the game's own
interpreter (``.venv-condor`` for condorgame, Python 3.12). The driver records each prediction
(rounded by ``predict_all``), the round timestamps, what popped when, and the scores the evaluator
stored; here the same rounds are scored with :func:`coordinator_core.games.evaluation.score_rounds`
from the recorded predictions and the same series, and compared to 1e-9 relative.

The series is irregular on purpose: second jitter on most timestamps, dropped minutes, holes of 3
to 11 minutes and one of 16 (skipped increments, volatility gaps), and points 30 s either side of an empty minute
(closest-price ties). The four driver runs go in parallel, started once for the module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator_core.games.constants import GameName
from coordinator_core.games.evaluation import Round, get_game, score_rounds
from coordinator_core.scoring.paths import PriceSeries

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("game_driver.py")
PYTHONS = {"condorgame": ROOT / ".venv-condor" / "bin" / "python", "crunch_synth": Path(sys.executable)}
START = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
REL = 1e-9

#: (game, profile, asset, start price, test days, trackers, fewest rounds compared per tracker)
CASES: dict[str, tuple[GameName, str, str, float, float, list[str], int]] = {
    "crunch_synth-1h": ("crunch_synth", "1h", "BTC", 30_000.0, 1.0, ["example", "mixture"], 100),
    "condorgame-1h": ("condorgame", "1h", "BTC", 30_000.0, 1.0, ["example", "mixture"], 100),
    "crunch_synth-24h": ("crunch_synth", "24h", "SOL", 150.0, 1.5, ["example", "mixture"], 10),
    "condorgame-24h": ("condorgame", "24h", "ETH", 3_000.0, 1.5, ["example", "benchmark", "mixture"], 10),
}


def synthetic_series(seed: int, days: float, price: float) -> PriceSeries:
    """Seeded 1-minute prices with jitter, holes and closest-price ties (see the module docstring)."""
    rng = np.random.default_rng(seed)
    minutes = int(days * 1440)
    grid = START + 60 * np.arange(minutes)
    ts = grid + np.where(rng.random(minutes) < 0.6, rng.integers(-20, 21, minutes), 0)
    keep = rng.random(minutes) > 0.04
    for hole in rng.integers(100, minutes - 100, 6):
        keep[hole : hole + rng.integers(3, 12)] = False
    keep[1440 + 360 : 1440 + 376] = False  # 16 minutes, 6 h into the test prices: skips 5-minute increments too
    for mark in rng.integers(100, minutes - 100, 20):  # nothing at the minute, points 30 s either side
        ts[mark - 1], ts[mark + 1] = grid[mark] - 30, grid[mark] + 30
        keep[mark], keep[mark - 1], keep[mark + 1] = False, True, True
    ts = np.unique(ts[keep])
    prices = price * np.exp(np.cumsum(rng.normal(0, 8e-4, ts.size)))
    return PriceSeries(ts, prices)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[PriceSeries, Any, Path]]]:
    """Start every driver at once; each test waits for its own."""
    missing = [str(p) for p in PYTHONS.values() if not p.exists()]
    if missing:
        pytest.fail(f"missing interpreter(s) {missing}: run `make env` (condorgame needs .venv-condor)")
    folder = tmp_path_factory.mktemp("agreement")
    started = {}
    for seed, (name, (game, profile, asset, price, test_days, trackers, _)) in enumerate(CASES.items()):
        series = synthetic_series(seed + 1, 1.0 + test_days, price)
        cut = int(np.searchsorted(series.ts, START + DAY))
        entries = [[int(t), float(p)] for t, p in zip(series.ts.tolist(), series.prices.tolist(), strict=True)]
        spec = {
            "asset": asset,
            "profile": profile,
            "history": entries[:cut],
            "test": entries[cut:],
            "trackers": trackers,
        }
        source, target = folder / f"{name}.in.json", folder / f"{name}.out.json"
        source.write_text(json.dumps(spec))
        process = subprocess.Popen(
            [str(PYTHONS[game]), str(DRIVER), game, str(source), str(target)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[name] = (series, process, target)
    yield started
    for _, process, _ in started.values():
        if process.poll() is None:
            process.kill()


def evaluator_output(runs: dict, name: str) -> tuple[PriceSeries, dict]:
    series, process, target = runs[name]
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr
    return series, json.loads(target.read_text())


@pytest.mark.parametrize("name", list(CASES))
def test_every_round_scores_as_the_games_own_evaluator(runs: dict, name: str) -> None:
    game, profile, asset, _, _, trackers, fewest = CASES[name]
    series, output = evaluator_output(runs, name)
    spec = get_game(game).forecast_profiles[profile]
    worst = 0.0
    for tracker in trackers:
        events = output["trackers"][tracker]["events"]
        made = {event["ts"]: event for event in events}
        rounds, predictions, evaluations = [], [], []
        for event in events:
            for release in event["popped"]:
                source = made[release - spec.horizon]  # the round's ts: the last stored price when predicting
                rounds.append(Round(source["ts"], spec.horizon, spec.steps, evaluated_at=event["ts"]))
                predictions.append([source["prediction"]])
            if event["popped"]:
                evaluations.append((event, len(rounds) - len(event["popped"]), len(rounds)))
        results = score_rounds(game, asset, series, rounds, predictions)
        assert len(results) >= fewest
        assert all(r.errors == (None,) for r in results)
        for event, start, stop in evaluations:
            ours = results[start:stop]
            totals = np.array([r.total[0] for r in ours])
            if stop - start == 1:
                expected = np.array([event["score"]])
            else:  # rounds due together: the evaluator stores their mean; each one's own score recovered
                assert np.mean(totals) == pytest.approx(event["score"], rel=REL)
                expected = np.array(event["per_round"])
            np.testing.assert_allclose(totals, expected, rtol=REL, atol=0)
            worst = max(worst, float(np.max(np.abs(totals - expected) / np.abs(expected))))
            if game == "crunch_synth" and stop - start == 1:
                (result,) = ours
                if event["vol"] is None:
                    assert not result.volatility_scored[0]
                else:
                    assert result.volatility_scored[0]
                    assert result.volatility[0] == pytest.approx(event["vol"], rel=REL)
                    assert result.price[0] == pytest.approx(event["score"] - event["vol"], rel=REL)
        assert sum(int(r.increments_skipped[0]) for r in results) > 0  # the holes really skip increments
        if game == "crunch_synth" and profile == "1h":
            assert sum(bool(r.volatility_scored[0]) for r in results) >= fewest  # the BTC 1h term is on
            assert all(r.volatility_errors == (None,) for r in results)
        else:
            assert not any(r.volatility_scored[0] for r in results)
    print(f"\n{name}: {len(results)} rounds per tracker, {len(trackers)} trackers, max relative difference {worst:.2e}")
