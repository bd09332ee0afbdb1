"""Scoring: ground truth against the CSV, horizons, failures, penalties, give-up, snapshots and the
leaderboard, each checked against values computed here from the raw tables (SQLite and Postgres)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from coordinator_core.db.tables import Input, Leaderboard, Prediction, Score, Snapshot
from coordinator_core.domain.periods import period_start
from coordinator_core.services.configs import seed_configs
from coordinator_core.services.ingest import ingest
from coordinator_core.services.predict import predict_round
from coordinator_core.services.score import score_predictions
from tests._svc_helpers import (
    HOUR,
    close,
    error_and_hit,
    raise_above_threshold,
    rows,
    utc,
    write_model,
)

T = utc(2019, 9, 1, 12)
SECOND = timedelta(seconds=1)
SCORING_HELPER = f"{raise_above_threshold.__module__}:raise_above_threshold"
HIT_HELPER = f"{error_and_hit.__module__}:error_and_hit"
MODELS = ("boom", "broken", "hi", "lo")


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    write_model(root, "lo", 'return {"value": 0.001}')
    write_model(root, "hi", 'return {"value": 0.5}')
    write_model(root, "boom", 'raise RuntimeError("boom at predict")')
    write_model(root, "broken", "", source="def predict(:\n")
    return root


@pytest.fixture
def start(make_runtime, models_dir):
    """``start(**settings)``: a runtime with configs seeded and a round predicted at T."""

    def factory(round_at=T, **overrides):
        rt = make_runtime(models_dir=str(models_dir), **overrides)
        seed_configs(rt.uow, rt.contract, rt.settings, round_at)
        ingest(rt.uow, rt.sources, rt.settings, round_at)
        result = predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, round_at)
        assert len(result.inputs) == 2
        return rt

    return factory


def step(rt, now):
    ingest(rt.uow, rt.sources, rt.settings, now)
    return score_predictions(rt.uow, rt.contract, rt.settings, now)


def _inputs(engine):
    return {i["scope_key"]: i for i in rows(engine, Input)}


def _preds(engine, scope_key):
    return {p["model_id"]: p for p in rows(engine, Prediction) if p["scope_key"] == scope_key}


def _scores(engine, scope_key=None):
    inputs = {i["id"]: i["scope_key"] for i in rows(engine, Input)}
    return {s["model_id"]: s for s in rows(engine, Score) if scope_key is None or inputs[s["input_id"]] == scope_key}


def _expected_truth(round_at, horizon):
    entry = close(round_at - HOUR)  # the newest candle closed at the round time
    resolved = close(round_at + horizon - HOUR)  # the candle that closes exactly at the horizon
    return entry, resolved, (resolved - entry) / entry


def test_ground_truth_against_the_csv_and_own_horizons(start):
    rt = start()

    # before the horizon nothing is scored, even with the data already there
    ingest(rt.uow, rt.sources, rt.settings, T + 4 * HOUR)
    result = score_predictions(rt.uow, rt.contract, rt.settings, T + HOUR - SECOND)
    assert result.resolved == 0 and rows(rt.engine, Score) == []
    assert {i["status"] for i in _inputs(rt.engine).values()} == {"RECEIVED"}

    result = score_predictions(rt.uow, rt.contract, rt.settings, T + HOUR)
    assert result.resolved == 1
    inputs = _inputs(rt.engine)
    short = inputs["BTC-3600"]
    entry, resolved, ret = _expected_truth(T, HOUR)
    assert short["status"] == "RESOLVED" and short["resolved_at"] == T + HOUR
    assert short["actuals_jsonb"]["entry_price"] == entry == 9588.76
    assert short["actuals_jsonb"]["resolved_price"] == resolved
    assert short["actuals_jsonb"]["return"] == pytest.approx(ret, rel=1e-12)
    lo = _scores(rt.engine, "BTC-3600")["lo"]
    assert lo["value"] == pytest.approx(-10_000 * abs(0.001 - ret), rel=1e-9)
    assert lo["scored_at"] == T + HOUR

    # the 4 h round waits for its own horizon
    assert inputs["BTC-14400"]["status"] == "RECEIVED" and inputs["BTC-14400"]["actuals_jsonb"] is None
    assert {p["status"] for m, p in _preds(rt.engine, "BTC-14400").items() if m in ("lo", "hi")} == {"PENDING"}
    assert _scores(rt.engine, "BTC-14400") == {}
    assert score_predictions(rt.uow, rt.contract, rt.settings, T + 4 * HOUR - SECOND).resolved == 0
    assert _scores(rt.engine, "BTC-14400") == {}

    assert score_predictions(rt.uow, rt.contract, rt.settings, T + 4 * HOUR).resolved == 1
    long = _inputs(rt.engine)["BTC-14400"]
    entry, resolved, ret = _expected_truth(T, 4 * HOUR)
    assert long["status"] == "RESOLVED"
    assert (long["actuals_jsonb"]["entry_price"], long["actuals_jsonb"]["resolved_price"]) == (entry, resolved)
    assert long["actuals_jsonb"]["return"] == pytest.approx(ret, rel=1e-12)
    assert _scores(rt.engine, "BTC-14400")["hi"]["value"] == pytest.approx(-10_000 * abs(0.5 - ret), rel=1e-9)


def test_late_data_resolves_at_the_horizon_price_not_a_later_one(start):
    rt = start()
    result = score_predictions(rt.uow, rt.contract, rt.settings, T + HOUR)  # nothing ingested after T
    assert (result.resolved, result.waiting) == (0, 1)
    assert _inputs(rt.engine)["BTC-3600"]["status"] == "RECEIVED"

    step(rt, T + 3 * HOUR)  # the feed catches up two hours late

    short = _inputs(rt.engine)["BTC-3600"]
    entry, resolved, _ = _expected_truth(T, HOUR)
    assert (short["actuals_jsonb"]["entry_price"], short["actuals_jsonb"]["resolved_price"]) == (entry, resolved)
    assert resolved != close(T + 2 * HOUR)


def test_a_raising_scoring_function_fails_only_that_prediction(start):
    rt = start(scoring_function=SCORING_HELPER)
    step(rt, T + HOUR)

    preds = _preds(rt.engine, "BTC-3600")
    assert preds["lo"]["status"] == "SCORED"
    assert preds["hi"]["status"] == "FAILED"
    assert "scoring function raised ValueError" in preds["hi"]["failed_reason"]
    assert "above the threshold" in preds["hi"]["failed_reason"]
    assert preds["boom"]["status"] == "FAILED" and "boom at predict" in preds["boom"]["failed_reason"]
    assert preds["broken"]["status"] == "ABSENT"

    scores = _scores(rt.engine, "BTC-3600")
    assert scores["lo"]["success"] is True and scores["lo"]["prediction_status"] == "SCORED"
    assert scores["hi"]["success"] is False and scores["hi"]["prediction_status"] == "FAILED"
    assert scores["hi"]["failed_reason"] == preds["hi"]["failed_reason"]
    assert scores["hi"]["value"] == scores["lo"]["value"]  # the worst (only) valid score of the round
    # the 4 h round is untouched
    assert {p["status"] for m, p in _preds(rt.engine, "BTC-14400").items() if m in ("lo", "hi")} == {"PENDING"}


@pytest.mark.parametrize("policy", ["worst_in_round", "exclude", "constant:-500"])
def test_missing_prediction_policy(start, policy):
    rt = start(missing_prediction_policy=policy)
    step(rt, T + 4 * HOUR)

    for scope_key in ("BTC-3600", "BTC-14400"):
        scores = _scores(rt.engine, scope_key)
        preds = _preds(rt.engine, scope_key)
        assert preds["lo"]["status"] == preds["hi"]["status"] == "SCORED"
        assert preds["boom"]["status"] == "FAILED" and preds["broken"]["status"] == "ABSENT"
        valid = [scores["lo"]["value"], scores["hi"]["value"]]
        assert scores["hi"]["value"] < scores["lo"]["value"]
        if policy == "exclude":
            assert set(scores) == {"lo", "hi"}
            continue
        expected = min(valid) if policy == "worst_in_round" else -500.0
        assert set(scores) == set(MODELS)
        for model, status in (("boom", "FAILED"), ("broken", "ABSENT")):
            assert scores[model]["value"] == expected
            assert scores[model]["success"] is False
            assert scores[model]["prediction_status"] == status
            assert scores[model]["failed_reason"] == preds[model]["failed_reason"]
    snapshots = {(s["model_id"], s["period_start"]): s for s in rows(rt.engine, Snapshot)}
    if policy == "exclude":
        assert {m for m, _ in snapshots} == {"lo", "hi"}
    else:
        boom = [s for (m, _), s in snapshots.items() if m == "boom"]
        assert sum(s["failed_count"] for s in boom) == 2 and sum(s["scored_count"] for s in boom) == 0


def test_a_round_whose_exit_never_arrives_gives_up(start):
    end_of_data = utc(2019, 10, 17, 10)  # the last candle (09:00) closes at 10:00
    rt = start(round_at=end_of_data, resolve_give_up_seconds=7200)
    horizon_short = end_of_data + HOUR

    result = step(rt, horizon_short)
    assert (result.resolved, result.gave_up, result.waiting) == (0, 0, 1)
    give_up_at = horizon_short + timedelta(seconds=7200)
    result = step(rt, give_up_at - SECOND)
    assert result.gave_up == 0 and result.waiting == 1  # the 4 h round is not due yet
    assert {i["status"] for i in rows(rt.engine, Input)} == {"RECEIVED"}

    result = step(rt, give_up_at)

    assert result.gave_up == 1
    short = _inputs(rt.engine)["BTC-3600"]
    assert short["status"] == "RESOLVED" and short["actuals_jsonb"] is None
    assert short["resolved_at"] == give_up_at
    assert "unresolved_reason" in short["meta_jsonb"]
    assert "gave up" in short["meta_jsonb"]["unresolved_reason"]
    assert "no replay:BTC:candle:1h price observed at the horizon" in short["meta_jsonb"]["unresolved_reason"]
    preds = _preds(rt.engine, "BTC-3600")
    for model in ("lo", "hi"):
        assert preds[model]["status"] == "FAILED"
        assert "ground truth unavailable" in preds[model]["failed_reason"]
    assert "boom at predict" in preds["boom"]["failed_reason"]  # an earlier failure keeps its own reason
    assert preds["broken"]["status"] == "ABSENT"
    assert _scores(rt.engine, "BTC-3600") == {}
    # the 4 h round has its own clock: it waits until its horizon + 2 h
    assert _inputs(rt.engine)["BTC-14400"]["status"] == "RECEIVED"
    assert {p["status"] for m, p in _preds(rt.engine, "BTC-14400").items() if m in ("lo", "hi")} == {"PENDING"}
    step(rt, end_of_data + 6 * HOUR)
    assert _inputs(rt.engine)["BTC-14400"]["meta_jsonb"].get("unresolved_reason")


def test_scoring_again_at_the_same_time_writes_nothing(start):
    rt = start()
    first = step(rt, T + 4 * HOUR)
    assert first.resolved == 2 and first.leaderboard_id
    tables = (Input, Prediction, Score, Snapshot, Leaderboard)
    before = {t.__tablename__: rows(rt.engine, t) for t in tables}

    again = score_predictions(rt.uow, rt.contract, rt.settings, T + 4 * HOUR)

    assert (again.resolved, again.waiting, again.gave_up, again.leaderboard_id) == (0, 0, 0, None)
    assert {t.__tablename__: rows(rt.engine, t) for t in tables} == before


def test_small_batches_score_every_due_round(start):
    rt = start(score_batch_size=1)
    for k in (1, 2):
        ingest(rt.uow, rt.sources, rt.settings, T + k * HOUR)
        predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, T + k * HOUR)
    result = step(rt, T + 8 * HOUR)
    assert result.resolved == 6
    assert {i["status"] for i in rows(rt.engine, Input)} == {"RESOLVED"}
    assert len(rows(rt.engine, Score)) == 6 * len(MODELS)


def _scenario(start):
    """Three rounds 30 h apart, each scored at its two horizons: scores spread over 64 h."""
    rt = start()
    for base in (T, T + 30 * HOUR, T + 60 * HOUR):
        if base != T:
            ingest(rt.uow, rt.sources, rt.settings, base)
            assert predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, base).inputs
        for horizon in (HOUR, 4 * HOUR):
            assert step(rt, base + horizon).resolved == 1
    return rt, T + 64 * HOUR


def test_snapshots_match_the_scores(start):
    rt, _ = _scenario(start)
    scores = rows(rt.engine, Score)
    assert len(scores) == 6 * len(MODELS)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for s in scores:
        groups[(s["model_id"], period_start(s["scored_at"], 3600))].append(s)  # (start, end]

    snapshots = rows(rt.engine, Snapshot)
    assert {(s["model_id"], s["period_start"]) for s in snapshots} == set(groups)
    for snap in snapshots:
        group = groups[(snap["model_id"], snap["period_start"])]
        assert snap["period_end"] == snap["period_start"] + HOUR
        assert snap["prediction_count"] == len(group)
        assert snap["prediction_count"] == snap["scored_count"] + snap["failed_count"] + snap["absent_count"]
        assert snap["scored_count"] == sum(1 for s in group if s["prediction_status"] == "SCORED")
        assert snap["failed_count"] == sum(1 for s in group if s["prediction_status"] == "FAILED")
        assert snap["absent_count"] == sum(1 for s in group if s["prediction_status"] == "ABSENT")
        assert snap["value_sum"] == pytest.approx(sum(s["value"] for s in group), rel=1e-12, abs=1e-9)


def test_leaderboard_windows_match_the_scores(start):
    rt, now = _scenario(start)
    [board] = [b for b in rows(rt.engine, Leaderboard) if b["created_at"] == now]
    entries = board["entries_jsonb"]
    windows = {name: w.hours for name, w in rt.contract.aggregation.windows.items()}

    def expected(model_id, hours):
        since = now - timedelta(hours=hours)  # exactly `hours` of score times: (since, now]
        picked = [
            s["value"] for s in rows(rt.engine, Score) if s["model_id"] == model_id and since < s["scored_at"] <= now
        ]
        return sum(picked) / len(picked) if picked else None

    assert {e["model_id"] for e in entries} == set(MODELS)
    for entry in entries:
        for name, hours in windows.items():
            want = expected(entry["model_id"], hours)
            assert entry["metrics"][name] == pytest.approx(want, rel=1e-12), (entry["model_id"], name)
    # the 24 h window holds only the last round, the 72 h one all three: they differ
    lo = next(e for e in entries if e["model_id"] == "lo")
    assert lo["metrics"]["score_recent"] != pytest.approx(lo["metrics"]["score_steady"])
    # ranked on score_recent, higher first, ties by scored count then model id
    assert [e["rank"] for e in entries] == list(range(1, len(entries) + 1))
    keys = [(-round(e["metrics"]["score_recent"], 9), -e["scored_count"], e["model_id"]) for e in entries]
    assert keys == sorted(keys)
    assert entries[0]["model_id"] == "lo"


def test_leaderboard_metrics_match_the_raw_tables_and_change_no_rank(start):
    """The ``stats`` of every entry (ranking window, 24 h) recomputed here from the score,
    prediction and input rows; an extra result key (``hit``) becomes a column; and a leaderboard
    rebuilt with no metrics has the same ranks, scores and counts."""
    import statistics

    import numpy as np
    from scipy import stats as sps

    from coordinator_core.domain.metrics import BOOTSTRAP_RESAMPLES, bootstrap_seed
    from coordinator_core.services.score import rebuild_leaderboard

    rt = start(scoring_function=HIT_HELPER)
    for base in (T, T + 30 * HOUR, T + 60 * HOUR):
        if base != T:
            ingest(rt.uow, rt.sources, rt.settings, base)
            assert predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, base).inputs
        for horizon in (HOUR, 4 * HOUR):
            assert step(rt, base + horizon).resolved == 1
    now = T + 64 * HOUR
    [board] = [b for b in rows(rt.engine, Leaderboard) if b["created_at"] == now]
    since = now - timedelta(hours=24)
    scores = [s for s in rows(rt.engine, Score) if since < s["scored_at"] <= now]
    inputs = {i["id"]: i for i in rows(rt.engine, Input)}
    window_inputs = {s["input_id"] for s in scores}
    predictions = [p for p in rows(rt.engine, Prediction) if p["input_id"] in window_inputs]
    assert len(window_inputs) == 2
    for entry in board["entries_jsonb"]:
        model = entry["model_id"]
        got = entry["stats"]
        mine = sorted((s for s in scores if s["model_id"] == model), key=lambda s: (s["scored_at"], s["prediction_id"]))
        values = [s["value"] for s in mine]
        preds = [p for p in predictions if p["model_id"] == model]
        assert got["coverage"] == sum(p["status"] == "SCORED" for p in preds) / len(preds)
        assert got["n"] == len(values) == 2
        assert got["mean"] == pytest.approx(entry["metrics"]["score_recent"], rel=1e-12)
        ci = sps.bootstrap(
            (values,),
            statistics.fmean,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="percentile",
            vectorized=False,
            rng=np.random.default_rng(bootstrap_seed(model, "score_recent")),
        ).confidence_interval
        if values[0] == values[1]:
            assert got["mean_ci_low"] == got["mean_ci_high"] == values[0]
        else:
            assert (got["mean_ci_low"], got["mean_ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
        assert got["ic"] is None  # two rounds: no rank correlation
        if model in ("boom", "broken"):  # never scored: no point columns, no result keys
            assert got["coverage"] == 0 and got["hit_rate"] is None and "hit" not in got
            assert got["sharpe"] is None and got["max_drawdown"] is None
            continue
        rounds = sorted(
            (inputs[p["input_id"]]["round_at"], p["input_id"], p["inference_output_jsonb"]["value"])
            for p in preds
            if p["status"] == "SCORED"
        )
        pnl = [(1 if v > 0 else -1 if v < 0 else 0) * inputs[i]["actuals_jsonb"]["return"] for _, i, v in rounds]
        hits = [s["result_jsonb"]["hit"] for s in mine if s["success"]]
        assert got["hit"] == pytest.approx(statistics.fmean(hits))
        assert got["hit_rate"] == pytest.approx(got["hit"])  # the same sign agreement, computed twice
        assert got["sharpe"] == pytest.approx(statistics.fmean(pnl) / statistics.stdev(pnl))
        peak, cumulative, drawdown = 0.0, 0.0, 0.0
        for d in pnl:
            cumulative += d
            peak = max(peak, cumulative)
            drawdown = max(drawdown, peak - cumulative)
        assert got["max_drawdown"] == pytest.approx(drawdown, abs=1e-15)
    bare = rt.contract.model_copy(update={"metrics": ()})
    with rt.uow() as work:
        rebuild_leaderboard(work, bare, now + timedelta(microseconds=1), rt.settings.snapshot_period_seconds)
        work.commit()
    [again] = [b for b in rows(rt.engine, Leaderboard) if b["created_at"] == now + timedelta(microseconds=1)]
    assert [{k: v for k, v in e.items() if k != "stats"} for e in board["entries_jsonb"]] == again["entries_jsonb"]
    assert all("stats" not in e for e in again["entries_jsonb"])


def test_a_hanging_scoring_rule_fails_that_prediction_only_and_holds_no_lock(start):
    """SCORING_TIMEOUT_SECONDS: the call that hangs fails its prediction with the reason, the other
    predictions are scored, and while the rule runs no transaction or lock is held (a checkpoint
    build, which takes the scoring lock, goes through meanwhile)."""
    import threading
    import time

    from coordinator_core.services.checkpoint import build_checkpoints
    from tests._svc_helpers import HANG_SECONDS

    rt = start(scoring_function=f"{raise_above_threshold.__module__}:hang_above_threshold", scoring_timeout_seconds=0.5)
    ingest(rt.uow, rt.sources, rt.settings, T + HOUR)
    outcome: dict = {}
    worker = threading.Thread(
        target=lambda: outcome.update(result=score_predictions(rt.uow, rt.contract, rt.settings, T + HOUR))
    )
    started = time.perf_counter()
    worker.start()
    time.sleep(0.2)  # the rule is running now: 'hi' hangs
    build_checkpoints(rt.uow, rt.contract, rt.settings, T + HOUR)  # takes the scoring lock
    lock_wait = time.perf_counter() - started
    worker.join(30)
    assert not worker.is_alive() and lock_wait < HANG_SECONDS
    assert time.perf_counter() - started < HANG_SECONDS + 2.0
    preds = _preds(rt.engine, "BTC-3600")
    assert preds["hi"]["status"] == "FAILED"
    assert "did not answer within 0.5 s (SCORING_TIMEOUT_SECONDS)" in preds["hi"]["failed_reason"]
    assert preds["lo"]["status"] == "SCORED"
    assert outcome["result"].statuses["SCORED"] == 1


def test_sparse_ticks_resolve_once_a_later_tick_is_observed(make_runtime, tmp_path):
    """Tick feeds: the exit price is the newest trade at or before t + h, however far before, once a
    trade after t + h has arrived (a 1-second tick feed polled every minute resolves)."""
    from coordinator_core.feeds.base import FeedScope, SourceRecord
    from coordinator_core.services.ingest import upsert_records

    configs = tmp_path / "configs.json"
    configs.write_text(
        '[{"scope_key": "BTC-60", "scope_template": {"subject": "BTC", "horizon_seconds": 60, '
        '"step_seconds": 60}, "schedule": {"prediction_interval_seconds": 60}}]'
    )
    models = tmp_path / "models"
    write_model(models, "lo", 'return {"value": 0.001}')
    rt = make_runtime(
        feed_source="synthetic",
        feed_kind="tick",
        feed_granularity="1s",
        models_dir=str(models),
        scheduled_prediction_configs_path=str(configs),
        feed_max_staleness_seconds=60,
    )
    scope = FeedScope("synthetic", "BTC", "tick", "1s")
    t = utc(2026, 10, 1, 12)
    trades = [(t - timedelta(seconds=5), 100.0), (t + timedelta(seconds=20), 101.0)]  # none near t + 60 s
    upsert_records(rt.uow, scope, [SourceRecord(ts, {"price": p}) for ts, p in trades], t)
    seed_configs(rt.uow, rt.contract, rt.settings, t)
    assert predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, t).inputs
    at = t + timedelta(seconds=60)
    assert score_predictions(rt.uow, rt.contract, rt.settings, at).waiting == 1  # nothing after t + 60 s yet
    upsert_records(rt.uow, scope, [SourceRecord(t + timedelta(seconds=95), {"price": 105.0})], at)
    result = score_predictions(rt.uow, rt.contract, rt.settings, at + timedelta(seconds=40))
    assert result.resolved == 1
    truth = _inputs(rt.engine)["BTC-60"]["actuals_jsonb"]
    assert (truth["entry_price"], truth["resolved_price"]) == (100.0, 101.0)  # not the later 105
