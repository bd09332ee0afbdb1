"""The rules of time in the derived tables (README "Guarantees", ``domain.periods``):

* a score belongs to its round's resolution time, whenever the scoring run happens;
* a score resolved inside a period a checkpoint already paid is late: it counts in the next
  period, is marked and reported, and never changes the paid checkpoint;
* a "24 h" window covers exactly 24 h of score times; ties break on the ranking window's counts;
* a custom aggregator (``MODEL_SCORE_AGGREGATOR``) scores the windows and the checkpoints.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any

import pytest

from coordinator_core.contract import Aggregation, AggregationWindow, CrunchContract
from coordinator_core.domain.periods import period_end, period_start
from coordinator_core.domain.scoring import ScoreRow
from coordinator_core.domain.windows import WindowTotals
from coordinator_core.errors import ConfigurationError
from coordinator_core.gateway.base import ModelInfo
from coordinator_core.services import checkpoint, configs, predict, score
from tests.unit.fakes import State, fake_uow, utc
from tests.unit.test_services_fake import HOUR, FakeGateway, T, closes, feed, settings


def competition(state: State | None = None) -> tuple[State, Any, Any, CrunchContract]:
    state, uow = fake_uow(state)
    feed(state, closes(60))
    cfg, contract = settings(), CrunchContract()
    configs.seed_configs(uow, contract, cfg, T)
    predict.predict_round(uow, FakeGateway(), contract, cfg, T)
    return state, uow, cfg, contract


def score_times(state: State) -> dict[str, datetime]:
    return {r.prediction_id: r.scored_at for r in state.scores.values()}


# -- periods ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds", [60, 3600, 86_400])
def test_a_period_is_left_open_and_right_closed(seconds: int) -> None:
    boundary = utc(2019, 9, 2)
    assert period_start(boundary, seconds) == boundary - timedelta(seconds=seconds)  # the end belongs to it
    assert period_end(boundary, seconds) == boundary
    just_after = boundary + timedelta(microseconds=1)
    assert period_start(just_after, seconds) == boundary
    assert period_end(just_after, seconds) == boundary + timedelta(seconds=seconds)


# -- resolution time ----------------------------------------------------------------------------------
def test_a_score_belongs_to_the_resolution_time_whenever_scoring_runs() -> None:
    on_time, _, cfg, contract = competition()
    _, uow = fake_uow(on_time)
    score.score_predictions(uow, contract, cfg, T + HOUR)
    score.score_predictions(uow, contract, cfg, T + 4 * HOUR)
    delayed, _, _, _ = competition()
    _, uow_late = fake_uow(delayed)
    score.score_predictions(uow_late, contract, cfg, T + 9 * HOUR)  # one run, hours after both
    assert score_times(on_time) == score_times(delayed)
    resolvable = {p["id"]: on_time.inputs[p["input_id"]]["resolvable_at"] for p in on_time.predictions.values()}
    assert score_times(on_time) == {pid: resolvable[pid] for pid in score_times(on_time)}
    assert set(on_time.snapshots) == set(delayed.snapshots)


def test_a_late_score_counts_in_the_next_period_is_marked_and_leaves_the_paid_checkpoint_alone() -> None:
    state, uow, cfg, contract = competition()
    score.score_predictions(uow, contract, cfg, T + HOUR)  # the 1 h round; the 4 h one is not scored yet
    wait = timedelta(seconds=cfg.checkpoint_wait_seconds)
    (paid,) = checkpoint.build_checkpoints(uow, contract, cfg, utc(2019, 9, 3) + wait)
    before = dict(state.checkpoints[paid])
    result = score.score_predictions(uow, contract, cfg, utc(2019, 9, 3) + wait)
    four_hours = [p["id"] for p in state.predictions.values() if p["scope_key"] == "BTC-14400"]
    assert result.late == len(four_hours) == 3
    for pid in four_hours:
        row = state.scores[pid]
        assert row.scored_at == utc(2019, 9, 3) + timedelta(seconds=1)  # the first second after the paid period
        assert row.result["late_from"] == (T + 4 * HOUR).isoformat()
    assert state.checkpoints[paid] == before
    with uow() as work:
        assert set(work.scores.window_totals(utc(2019, 9, 2), utc(2019, 9, 3))) == {"good", "boom", "junk"}
        late = work.scores.window_totals(utc(2019, 9, 3), utc(2019, 9, 4))
    assert sum(t.prediction_count for t in late.values()) == 3


# -- windows and ties ---------------------------------------------------------------------------------
def seeded_hours(state: State, model_id: str, end: datetime, hours: int, value: float, scored: int = 1) -> None:
    """``hours`` hourly snapshots of ``model_id`` ending at ``end``, each with one score at its end."""
    state.models.setdefault(model_id, {"info": ModelInfo(model_id, model_id, model_id, model_id), "state": "RUNNING"})
    for k in range(hours):
        stop = end - timedelta(hours=k)
        state.snapshots[(model_id, stop - HOUR)] = {
            "period_end": stop,
            "totals": WindowTotals(value * scored, scored, scored, 0, 0),
            "summary": {},
        }
        for j in range(scored):
            pid = f"P_{model_id}_{k}_{j}"
            state.scores[pid] = ScoreRow(pid, model_id, f"I{k}", "SCORED", value, True, None, {"value": value}, stop)


def test_a_24_hour_window_covers_exactly_24_hours_of_scores() -> None:
    state = State()
    now = utc(2019, 9, 10)
    seeded_hours(state, "a", now, 48, -1.0)
    _, uow = fake_uow(state)
    with uow() as work:
        board = score.rebuild_leaderboard(work, CrunchContract(), now, 3600)
        work.commit()
        assert work.scores.window_totals(now - timedelta(hours=24), now, 3600)["a"].prediction_count == 24
        # off a boundary too: (now - 24 h + 30 min, now + 30 min] holds 24 scores less the one at now - 24 h + ...
        shifted = now + timedelta(minutes=30)
        assert work.scores.window_totals(shifted - timedelta(hours=24), shifted, 3600)["a"].prediction_count == 24
    (entry,) = state.leaderboards[now]["entries"]
    assert board and entry["prediction_count"] == 24 and entry["metrics"]["score_recent"] == -1.0


def test_ties_are_broken_by_the_counts_of_the_ranking_window() -> None:
    state = State()
    now = utc(2019, 9, 10)
    # equal 24 h scores; "more" has more scored predictions in the last 24 h, "old" has far more
    # over 168 h (the old rule compared the longest window's counts, so "old" won)
    seeded_hours(state, "more", now, 24, -1.0, scored=2)
    seeded_hours(state, "old", now, 24, -1.0, scored=1)
    seeded_hours(state, "old", now - timedelta(hours=24), 100, -1.0, scored=3)
    _, uow = fake_uow(state)
    with uow() as work:
        score.rebuild_leaderboard(work, CrunchContract(), now, 3600)
        work.commit()
    entries = state.leaderboards[now]["entries"]
    assert [e["model_id"] for e in entries] == ["more", "old"]
    assert [e["scored_count"] for e in entries] == [48, 24]  # the ranking window's counts are shown


def test_a_model_scored_only_in_a_longer_window_stays_on_the_board() -> None:
    state = State()
    now = utc(2019, 9, 10)
    seeded_hours(state, "now", now, 24, -1.0)
    seeded_hours(state, "gone", now - timedelta(hours=48), 24, -2.0)  # nothing in the last 24 h
    _, uow = fake_uow(state)
    with uow() as work:
        score.rebuild_leaderboard(work, CrunchContract(), now, 3600)
        work.commit()
    entries = {e["model_id"]: e for e in state.leaderboards[now]["entries"]}
    assert entries["gone"]["metrics"]["score_recent"] is None and entries["gone"]["metrics"]["score_anchor"] == -2.0
    assert entries["now"]["rank"] == 1 and entries["gone"]["prediction_count"] == 0


# -- the aggregator -----------------------------------------------------------------------------------
def median_value(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"value": statistics.median(r["value"] for r in results)}


def test_a_custom_aggregator_scores_the_leaderboard_and_the_checkpoint() -> None:
    state = State()
    end = utc(2019, 9, 3)
    seeded_hours(state, "steady", end, 24, -2.0)
    seeded_hours(state, "spiky", end, 24, -1.0)
    for k in range(3):  # three disasters: the mean of "spiky" falls below "steady", its median does not
        pid = f"P_spiky_bad_{k}"
        state.scores[pid] = ScoreRow(pid, "spiky", "I", "SCORED", -100.0, True, None, {"value": -100.0}, end)
    snap = state.snapshots[("spiky", end - HOUR)]
    snap["totals"] = snap["totals"] + WindowTotals(-300.0, 3, 3, 0, 0)
    windows = Aggregation(windows={"day": AggregationWindow(hours=24)}, ranking_key="day")
    mean, median = (
        CrunchContract(aggregation=windows),
        CrunchContract(aggregation=windows, aggregate_snapshot=median_value),
    )
    _, uow = fake_uow(state)
    with uow() as work:
        score.rebuild_leaderboard(work, mean, end, 3600)
        work.commit()
    assert [e["model_id"] for e in state.leaderboards[end]["entries"]] == ["steady", "spiky"]
    with uow() as work:
        score.rebuild_leaderboard(work, median, end + timedelta(seconds=1), 3600)
        work.commit()
    entries = state.leaderboards[end + timedelta(seconds=1)]["entries"]
    assert [e["model_id"] for e in entries] == ["spiky", "steady"]
    assert entries[0]["metrics"]["day"] == -1.0
    cfg = settings(checkpoint_interval_seconds=86_400)
    (written,) = checkpoint.build_checkpoints(uow, median, cfg, end)
    ranking = state.checkpoints[written]["meta_jsonb"]["ranking"]
    assert [e["model_id"] for e in ranking] == ["spiky", "steady"] and ranking[0]["metrics"]["day"] == -1.0


def test_an_aggregator_without_a_numeric_value_is_refused_naming_the_setting() -> None:
    state = State()
    seeded_hours(state, "a", utc(2019, 9, 3), 2, -1.0)
    _, uow = fake_uow(state)
    contract = CrunchContract(aggregate_snapshot=lambda results: {"mean": 1.0})
    with uow() as work, pytest.raises(ConfigurationError, match="MODEL_SCORE_AGGREGATOR"):
        score.rebuild_leaderboard(work, contract, utc(2019, 9, 3), 3600)
