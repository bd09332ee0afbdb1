"""Emission checkpoints after a backtest-like run, checked against values computed here from the
scores table (SQLite and Postgres)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from coordinator_core.clock import parse_utc
from coordinator_core.db.tables import Checkpoint, Score, Snapshot
from coordinator_core.emission import FRAC64_TOTAL
from coordinator_core.errors import ConfigurationError
from coordinator_core.services import backtest
from coordinator_core.services.checkpoint import build_checkpoints
from coordinator_core.services.configs import seed_configs
from coordinator_core.services.ingest import ingest
from coordinator_core.services.predict import predict_round
from coordinator_core.services.score import score_predictions
from tests._svc_helpers import HOUR, rows, utc, write_model

START = utc(2019, 9, 1)
DAY = timedelta(days=1)
STEP = 6 * 3600  # one competition step every 6 virtual hours keeps the 9-day run fast


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    write_model(root, "alpha", 'return {"value": 0.001}', model_json={"player_id": "p-alpha"})
    write_model(root, "beta", 'return {"value": 0.001}', model_json={"player_id": "p-beta"})  # ties with alpha
    write_model(root, "gamma", 'c = self.closes(subject)\nreturn {"value": c[-1] / c[-2] - 1}')
    # answers only on one UTC day in three: whole checkpoint periods without a scored prediction
    write_model(
        root,
        "sometimes",
        """
        if (self.latest[subject]["asof_ts"] // 86400) % 3 != 0:
            raise RuntimeError("not today")
        return {"value": 0.0}
    """,
    )
    write_model(root, "never", 'raise RuntimeError("never answers")')
    return root


def run(rt, start, end, step=STEP):
    backtest.prepare(rt, start)
    return backtest.run_steps(rt, list(backtest.virtual_times(start, end, step)))


def _checkpoints(engine):
    return sorted(rows(engine, Checkpoint), key=lambda c: c["period_end"])


def _expected_ranking(scores, start, end):
    """Σvalue/Σcount per model over the scores whose snapshot period ends in (start, end]."""
    total, counted, scored = defaultdict(float), defaultdict(int), defaultdict(int)
    for s in scores:
        if start < s["scored_at"] <= end:  # a period is (start, end] of score times
            total[s["model_id"]] += s["value"]
            counted[s["model_id"]] += 1
            scored[s["model_id"]] += 1 if s["success"] else 0
    eligible = [m for m in counted if scored[m] > 0]
    expected = {m: (total[m] / counted[m], counted[m], scored[m]) for m in eligible}
    order = sorted(eligible, key=lambda m: (-round(expected[m][0], 9), -scored[m], m))
    return order, expected, {m for m in counted if scored[m] == 0}


def test_backtest_checkpoints(make_runtime, models_dir):
    rt = make_runtime(models_dir=str(models_dir), checkpoint_interval_seconds=86400)
    end = START + 9 * DAY
    totals = run(rt, START, end)
    assert totals["checkpoints"] == 9

    checkpoints = _checkpoints(rt.engine)
    assert len(checkpoints) == 9
    # contiguous, one interval each, aligned to the anchor (midnight UTC)
    assert checkpoints[0]["period_start"] == START
    for previous, current in zip(checkpoints, checkpoints[1:], strict=False):
        assert current["period_start"] == previous["period_end"]
    for c in checkpoints:
        assert c["period_end"] - c["period_start"] == DAY
        assert c["period_end"].hour == 0 and c["status"] == "PENDING"
    assert checkpoints[-1]["period_end"] == end

    # every snapshot with scores lies in exactly one checkpoint (or after the last one)
    snapshots = [s for s in rows(rt.engine, Snapshot) if s["prediction_count"] > 0]
    assert snapshots
    for snap in snapshots:
        holders = [c for c in checkpoints if c["period_start"] < snap["period_end"] <= c["period_end"]]
        if snap["period_end"] <= checkpoints[-1]["period_end"]:
            assert len(holders) == 1, snap
        else:
            assert holders == []
        assert snap["period_end"] > checkpoints[0]["period_start"]

    scores = rows(rt.engine, Score)
    skipped_sometimes = included_sometimes = 0
    for c in checkpoints:
        ranking = c["meta_jsonb"]["ranking"]
        order, expected, unpaid = _expected_ranking(scores, c["period_start"], c["period_end"])
        assert [e["model_id"] for e in ranking] == order
        assert [e["rank"] for e in ranking] == list(range(1, len(order) + 1))
        for entry in ranking:
            score, counted, scored = expected[entry["model_id"]]
            assert entry["metrics"]["score_recent"] == pytest.approx(score, rel=1e-12)
            assert (entry["prediction_count"], entry["scored_count"]) == (counted, scored)
        # each checkpoint counts exactly the snapshots ending in (period_start, period_end]
        inside = [s for s in snapshots if c["period_start"] < s["period_end"] <= c["period_end"]]
        assert c["meta_jsonb"]["snapshot_count"] == len(inside)
        for entry in ranking:
            assert entry["prediction_count"] == sum(
                s["prediction_count"] for s in inside if s["model_id"] == entry["model_id"]
            )
        # deterministic tie-break: alpha and beta score the same, alpha (model id) first
        assert order.index("alpha") + 1 == order.index("beta")
        assert "never" in unpaid and "never" not in order
        if "sometimes" in unpaid:
            skipped_sometimes += 1
        else:
            included_sometimes += 1

        [emission] = c["entries_jsonb"]
        model_rewards = emission["model_rewards"]
        assert [r["model_id"] for r in model_rewards] == order  # nobody without a scored prediction earns
        assert all(isinstance(r["reward_pct"], int) and r["reward_pct"] > 0 for r in model_rewards)
        assert sum(r["reward_pct"] for r in model_rewards) == FRAC64_TOTAL
        assert sum(r["reward_pct"] for r in emission["cruncher_rewards"]) == FRAC64_TOTAL
        paid_models = {m for r in emission["cruncher_rewards"] for m in r["model_ids"]}
        assert paid_models == set(order)
    assert skipped_sometimes >= 3 and included_sometimes >= 2  # both cases really happened

    # building again at the same time (or before the next boundary) writes nothing
    before = rows(rt.engine, Checkpoint)
    assert build_checkpoints(rt.uow, rt.contract, rt.settings, end) == []
    assert build_checkpoints(rt.uow, rt.contract, rt.settings, end + DAY - HOUR) == []
    assert rows(rt.engine, Checkpoint) == before


def test_empty_periods_are_folded_into_the_next(make_runtime, models_dir):
    rt = make_runtime(models_dir=str(models_dir), checkpoint_interval_seconds=86400)
    run(rt, START, START + DAY)
    assert [c["period_end"] for c in _checkpoints(rt.engine)] == [START + DAY]
    # the competition stops for three days (the last scores, stamped at START+1d, fall in day 2), then resumes
    run(rt, START + 4 * DAY, START + 5 * DAY)

    checkpoints = _checkpoints(rt.engine)
    assert [(c["period_start"], c["period_end"]) for c in checkpoints] == [
        (START, START + DAY),
        (START + DAY, START + 2 * DAY),
        (START + 2 * DAY, START + 5 * DAY),
    ]
    folded = checkpoints[-1]
    snapshots = [
        s for s in rows(rt.engine, Snapshot) if folded["period_start"] < s["period_end"] <= folded["period_end"]
    ]
    assert snapshots and min(s["period_start"] for s in snapshots) >= START + 4 * DAY
    assert folded["meta_jsonb"]["snapshot_count"] == len(snapshots)


def _small_round_setup(make_runtime, models_dir, boundary):
    rt = make_runtime(models_dir=str(models_dir), checkpoint_interval_seconds=86400)
    seed_configs(rt.uow, rt.contract, rt.settings, boundary - 3 * HOUR)
    for at in (boundary - 3 * HOUR, boundary - 2 * HOUR):
        ingest(rt.uow, rt.sources, rt.settings, at)
        predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, at)
    ingest(rt.uow, rt.sources, rt.settings, boundary)
    return rt


def test_late_scores_are_stamped_after_the_paid_period(make_runtime, models_dir):
    """The second round (resolvable at boundary - 1 h) is not scored before the day's checkpoint:
    the checkpoint waits CHECKPOINT_WAIT_SECONDS for it, then is built without it; its scores, when
    they come, are late: stamped one second after the paid period, marked, and paid by the next."""
    boundary = START + DAY
    rt = _small_round_setup(make_runtime, models_dir, boundary)
    wait = timedelta(seconds=rt.settings.checkpoint_wait_seconds)
    assert score_predictions(rt.uow, rt.contract, rt.settings, boundary - 2 * HOUR).resolved == 1
    assert build_checkpoints(rt.uow, rt.contract, rt.settings, boundary) == []  # waits for the second round
    assert build_checkpoints(rt.uow, rt.contract, rt.settings, boundary + wait) == ["CKP_20190902_000000"]
    paid = rows(rt.engine, Checkpoint)
    assert paid[0]["meta_jsonb"]["unsettled_rounds"] == 1
    scores_before = {s["id"] for s in rows(rt.engine, Score)}

    # scoring runs late (its round resolved at boundary - 1 h, inside the paid period)
    result = score_predictions(rt.uow, rt.contract, rt.settings, boundary + wait)

    assert result.resolved == 1 and result.late == 5
    new = [s for s in rows(rt.engine, Score) if s["id"] not in scores_before]
    assert len(new) == 5 and {s["scored_at"] for s in new} == {boundary + timedelta(seconds=1)}
    assert {s["result_jsonb"]["late_from"] for s in new} == {(boundary - HOUR).isoformat()}
    assert all(s["scored_at"] <= boundary for s in rows(rt.engine, Score) if s["id"] in scores_before)
    assert {s["period_start"] for s in rows(rt.engine, Snapshot)} == {boundary - 3 * HOUR, boundary}
    assert rows(rt.engine, Checkpoint) == paid
    # the late scores are paid by the next checkpoint, and only there
    assert build_checkpoints(rt.uow, rt.contract, rt.settings, boundary + DAY + wait) == ["CKP_20190903_000000"]
    nxt = _checkpoints(rt.engine)[-1]
    assert nxt["period_start"] == boundary
    assert sum(e["prediction_count"] for e in nxt["meta_jsonb"]["ranking"]) == sum(
        1 for s in new if s["model_id"] in {e["model_id"] for e in nxt["meta_jsonb"]["ranking"]}
    )


# Regression: the first checkpoint used to start at min(boundary - interval, first snapshot), folding every
# earlier period into one unaligned, multi-interval checkpoint.
def test_first_build_after_several_periods_builds_them_in_order(make_runtime, models_dir):
    rt = make_runtime(models_dir=str(models_dir), checkpoint_interval_seconds=86400)
    backtest.prepare(rt, START)
    for now in backtest.virtual_times(START, START + 2 * DAY, STEP):  # scoring, but no checkpoint flow yet
        ingest(rt.uow, rt.sources, rt.settings, now)
        predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, now)
        score_predictions(rt.uow, rt.contract, rt.settings, now)

    build_checkpoints(rt.uow, rt.contract, rt.settings, START + 2 * DAY)

    periods = [(c["period_start"], c["period_end"]) for c in _checkpoints(rt.engine)]
    assert periods == [(START, START + DAY), (START + DAY, START + 2 * DAY)]


# Regression: an anchor off the snapshot grid was accepted, and a snapshot straddling a boundary was then
# counted by both neighbouring checkpoints (window_totals: period_end > start AND period_start < end).
@pytest.mark.parametrize("anchor", ["1970-01-05T03:00:00Z", "1970-01-05T00:30:00Z"])
def test_checkpoint_anchor_never_pays_a_snapshot_twice(make_runtime, models_dir, anchor):
    interval = 6 * HOUR
    try:
        rt = make_runtime(
            models_dir=str(models_dir),
            checkpoint_interval_seconds=int(interval.total_seconds()),
            checkpoint_anchor=anchor,
        )
    except ConfigurationError as exc:
        assert parse_utc(anchor).minute != 0, "an anchor on the hourly snapshot grid must be accepted"
        assert "CHECKPOINT_ANCHOR" in str(exc)
        return  # refusing an anchor off the snapshot grid is correct
    run(rt, START, START + 15 * HOUR, step=3 * 3600)
    checkpoints = _checkpoints(rt.engine)
    assert len(checkpoints) >= 2
    for c in checkpoints:
        assert (c["period_end"] - parse_utc(anchor)) % interval == timedelta(0)
    snapshots = rows(rt.engine, Snapshot)
    for c in checkpoints:
        for entry in c["meta_jsonb"]["ranking"]:
            assert entry["prediction_count"] == sum(
                s["prediction_count"]
                for s in snapshots
                if s["model_id"] == entry["model_id"] and c["period_start"] < s["period_end"] <= c["period_end"]
            )
