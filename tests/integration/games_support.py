"""Shared by the game tracker tests: the seeded series, the plan of ticks and predictions, the Condor run.

The series is the project's seeded synthetic feed (``SyntheticSource``, 1-minute prices) for
every asset of crunch_synth's SUPPORTED_ASSETS (its sub-tracker example trains only when each of
them has prices), turned into the games' ticks by ``coordinator_core.games.ticks``: a first tick
with the whole history (3 days: less than the 30-day window), then one tick per minute.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coordinator_core.feeds.base import FeedScope
from coordinator_core.feeds.synthetic import SyntheticSource
from coordinator_core.games.ticks import PricePoint, TickCursor, build_tick, points_from_records

PROJECT_DIR = Path(__file__).resolve().parents[2]
GAMES_DIR = PROJECT_DIR / "examples" / "games"
CONDOR_PYTHON = PROJECT_DIR / ".venv-condor" / "bin" / "python"
RUNNER = Path(__file__).with_name("game_runner.py")

ASSETS = ["BTC", "ETH", "XAUT", "SOL", "SP500", "NVDAX", "TSLAX", "AAPLX", "GOOGLX", "XRP", "HYPE", "WTIOIL", "SPCX"]
START = datetime(2026, 1, 1, tzinfo=UTC)
FIRST_TICK = START + timedelta(days=3)
LATER_TICKS = 10  # one a minute after the first
STEPS_24H = [300, 3600, 21600, 86400]
STEPS_1H = [60, 300, 900, 1800, 3600]
REQUESTS_FIRST = [("BTC", 86400, STEPS_24H), ("ETH", 3600, STEPS_1H)]
REQUESTS_LATER = [("SOL", 86400, STEPS_24H), ("BTC", 3600, STEPS_1H)]


@functools.lru_cache(maxsize=1)
def series(seed: int = 11) -> tuple[PricePoint, ...]:
    source = SyntheticSource(seed=seed)
    end = FIRST_TICK + timedelta(minutes=LATER_TICKS)
    points: list[PricePoint] = []
    for asset in ASSETS:
        records = source.fetch(FeedScope("synthetic", asset, "tick", "1m"), START, end)
        points += points_from_records(records, subject=asset, kind="tick", granularity_seconds=60)
    return tuple(points)


@functools.lru_cache(maxsize=1)
def plan() -> tuple[dict[str, Any], ...]:
    """First tick (history) → two predict_all → a tick a minute for 10 minutes → two predict_all."""
    points = series()
    steps: list[dict[str, Any]] = []
    cursor = TickCursor()
    for minute in range(LATER_TICKS + 1):
        tick = build_tick(points, as_of=FIRST_TICK + timedelta(minutes=minute), cursor=cursor)
        assert tick, "the series has a new point every minute"
        steps.append({"tick": tick.data})
        cursor = tick.cursor
        if minute == 0:
            steps += [{"predict": list(request)} for request in REQUESTS_FIRST]
    steps += [{"predict": list(request)} for request in REQUESTS_LATER]
    return tuple(steps)


def json_plan() -> list[dict[str, Any]]:
    return json.loads(json.dumps(list(plan())))


def requests() -> list[tuple[str, int, list[int]]]:
    return [tuple(step["predict"]) for step in plan() if "predict" in step]  # type: ignore[misc]


def condor_python() -> Path:
    if not CONDOR_PYTHON.exists():
        pytest.fail(f"{CONDOR_PYTHON} is missing: run make env (condorgame needs a Python >= 3.12 env of its own)")
    return CONDOR_PYTHON


@functools.lru_cache(maxsize=1)
def run_condor(runs: int = 2) -> dict[str, Any]:
    """The Condor example trackers run in-process inside .venv-condor on the plan (once per test process)."""
    folders = sorted(str(p) for p in (GAMES_DIR / "condor").iterdir() if (p / "main.py").exists())
    root = Path(tempfile.mkdtemp(prefix="condor-trackers-"))
    atexit.register(shutil.rmtree, root, True)
    request = {
        "base": "condorgame.tracker.TrackerBase",
        "folders": folders,
        "plan": json_plan(),
        "runs": runs,
        "workdir": str(root / "work"),
    }
    (root / "in.json").write_text(json.dumps(request))
    started = time.perf_counter()
    done = subprocess.run(
        [str(condor_python()), str(RUNNER), str(root / "in.json"), str(root / "out.json")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    output = json.loads((root / "out.json").read_text())
    output["subprocess_seconds"] = round(time.perf_counter() - started, 2)
    return output
