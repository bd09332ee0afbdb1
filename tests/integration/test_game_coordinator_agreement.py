"""End to end: the coordinator running a game preset gives, round by round, the scores the game's own
``TrackerEvaluator`` gives for the same prices and the same tracker.

The coordinator backtests Crunch-Synth's 1 h profile on the synthetic 1-minute feed with the
package's unmodified ``GaussianStepTracker`` (a model folder of ``examples/games``), through the
real services: price ticks (30 days of history first, then only new points), ``predict_all``,
the price-path ground truth, batch scoring. Then a fresh ``GaussianStepTracker`` is driven by
``crunch_synth.TrackerEvaluator`` as the game drives it: the same ticks at the same times, a
``predict`` every 12 minutes. Each round comes due alone, so every evaluator score is one round's
score; both must agree to 1e-9 (relative), the volatility term included.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from coordinator_core.bootstrap import build_runtime
from coordinator_core.games.ticks import build_tick, points_from_records
from coordinator_core.services import backtest
from tests.conftest import PROJECT_DIR

START = datetime(2026, 10, 1, tzinfo=UTC)
HOURS = 5
CONTRACT = "coordinator_core.games.crunch_synth:contract_1h"


@pytest.fixture
def coordinator_scores(tmp_path: Path, sqlite_url: str) -> tuple[dict[int, float], list, object]:
    models = tmp_path / "models"
    models.mkdir()
    (models / "gaussian_step").symlink_to(PROJECT_DIR / "examples" / "games" / "crunch_synth" / "gaussian_step")
    rt = build_runtime(
        database_url=sqlite_url,
        crunch_contract=CONTRACT,
        feed_source="synthetic",
        feed_granularity="1m",
        models_dir=str(models),
        model_base_classname="crunch_synth.tracker.TrackerBase",
        local_model_timeout_seconds=60,
    )
    backtest.prepare(rt, START)
    times = list(backtest.virtual_times(START, START + timedelta(hours=HOURS), backtest.step_seconds(rt)))
    backtest.run_steps(rt, times)
    with rt.engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT i.meta_jsonb, s.value FROM scores s JOIN inputs i ON i.id = s.input_id "
                "WHERE s.prediction_status = 'SCORED'"
            )
        ).all()
        records = c.execute(text("SELECT ts_event, values_jsonb, final FROM feed_records ORDER BY ts_event")).all()
    rt.close()
    import json

    scores = {}
    for meta, value in rows:
        meta = meta if isinstance(meta, dict) else json.loads(meta)
        scores[int(meta["round_ts"])] = float(value)
    return scores, records, times


def test_every_round_scores_as_the_games_evaluator_scores_it(coordinator_scores) -> None:
    from crunch_synth import TrackerEvaluator
    from crunch_synth.examples.exampletracker import GaussianStepTracker

    ours, records, times = coordinator_scores
    assert len(ours) >= 4 * HOURS - 5  # the rounds whose hour has passed

    class Record:  # the stored records, as points_from_records reads them
        def __init__(self, ts_event, values, final) -> None:
            self.ts_event = (
                datetime.fromisoformat(str(ts_event)).replace(tzinfo=UTC)
                if not isinstance(ts_event, datetime)
                else ts_event
            )
            self.values_jsonb = values if isinstance(values, dict) else __import__("json").loads(values)
            self.final = bool(final)

    points = points_from_records([Record(*r) for r in records], subject="BTC", kind="candle", granularity_seconds=60)
    evaluator = TrackerEvaluator(GaussianStepTracker())
    cursor = None
    theirs: dict[int, float] = {}
    for now in times:
        tick = build_tick(points, as_of=now, cursor=cursor)
        if tick:
            evaluator.tick(tick.data)
            cursor = tick.cursor
        before = len(evaluator.scores["BTC"])
        popped = evaluator.predict("BTC", 3600, [60, 300, 900, 1800, 3600])
        if popped:
            assert len(popped) == 1 and len(evaluator.scores["BTC"]) == before + 1  # one round per evaluation
            release_ts = int(popped[0][0])  # the quarantine keeps (round ts + horizon, predictions, steps)
            theirs[release_ts - 3600] = float(evaluator.scores["BTC"][-1][1])
    common = sorted(set(ours) & set(theirs))
    assert len(common) >= 4 * HOURS - 5 and set(ours) <= set(theirs)
    for round_ts in common:
        assert math.isclose(ours[round_ts], theirs[round_ts], rel_tol=1e-9), (
            round_ts,
            ours[round_ts],
            theirs[round_ts],
        )
    assert any(evaluator.vol_scores["BTC"])  # the volatility term was part of the scores compared
