"""Periods are ``(start, end]`` of score times (``domain.periods``), on both databases: a window's
totals read from the snapshots (plus the edge corrections of a window that does not start or end
on a period boundary) equal the totals of the scores resolved inside it, for any window."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from coordinator_core.db.engine import get_engine
from coordinator_core.db.uow import SqlUnitOfWork
from coordinator_core.domain.periods import period_start
from coordinator_core.domain.scoring import ScoreRow
from coordinator_core.domain.windows import WindowTotals, with_aggregate
from coordinator_core.gateway.base import ModelInfo

T = datetime(2026, 10, 1, tzinfo=UTC)
HOURS = 6
MODELS = ("m1", "m2", "m3")


def _seed(engine, times: list[datetime]) -> list[ScoreRow]:
    """One input per time, a prediction and a score per model (statuses and values mixed)."""
    rng = random.Random(7)
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO scheduled_prediction_configs (id, scope_key, scope_template_jsonb, schedule_jsonb, active, "
                "\"order\", meta_jsonb, updated_at) VALUES ('CFG', 'K', '{}', '{}', true, 0, '{}', :t)"
            ),
            {"t": T},
        )
    rows: list[ScoreRow] = []
    with SqlUnitOfWork(engine) as work:
        work.models.sync([ModelInfo(m, m, f"p{m}", f"P{m}") for m in MODELS], T)
        inputs, predictions = [], []
        for k, at in enumerate(times):
            inputs.append(
                {
                    "id": f"I{k}",
                    "prediction_config_id": "CFG",
                    "scope_key": "K",
                    "status": "RESOLVED",
                    "round_at": at - timedelta(minutes=1) + timedelta(microseconds=k),
                    "received_at": at,
                    "resolvable_at": at,
                    "resolved_at": at,
                    "raw_data_jsonb": {},
                    "actuals_jsonb": None,
                    "scope_jsonb": {},
                    "meta_jsonb": {},
                }
            )
            for m in MODELS:
                status = rng.choice(["SCORED", "SCORED", "SCORED", "FAILED", "ABSENT"])
                value = round(rng.uniform(-50, 0), 6)
                predictions.append(
                    {
                        "id": f"P{k}{m}",
                        "input_id": f"I{k}",
                        "model_id": m,
                        "prediction_config_id": "CFG",
                        "scope_key": "K",
                        "scope_jsonb": {},
                        "status": status,
                        "runner_status": "SUCCESS",
                        "failed_reason": None,
                        "exec_time_ms": 0.0,
                        "inference_output_jsonb": {},
                        "meta_jsonb": {},
                        "performed_at": at,
                        "resolvable_at": at,
                    }
                )
                rows.append(
                    ScoreRow(f"P{k}{m}", m, f"I{k}", status, value, status == "SCORED", None, {"value": value}, at)
                )
        work.rounds.add_rounds(inputs, predictions)
        work.scores.add(rows)
        work.scores.rebuild_snapshots(sorted({period_start(r.scored_at, 3600) for r in rows}), 3600, None, T)
        work.commit()
    return rows


def _expected(rows: list[ScoreRow], since: datetime, until: datetime) -> dict[str, WindowTotals]:
    out: dict[str, WindowTotals] = {}
    for r in rows:
        if since < r.scored_at <= until:
            part = WindowTotals(
                r.value, 1, int(r.success), int(r.prediction_status == "FAILED"), int(r.prediction_status == "ABSENT")
            )
            out[r.model_id] = out.get(r.model_id, WindowTotals()) + part
    return out


def test_window_totals_are_the_scores_resolved_in_the_window_for_any_window(db_url: str) -> None:
    rng = random.Random(11)
    # whole-second times, with every period boundary itself (the end belongs to its period)
    times = sorted(
        {T + timedelta(seconds=rng.randrange(1, HOURS * 3600)) for _ in range(120)}
        | {T + timedelta(hours=h) for h in range(1, HOURS + 1)}
        | {T + timedelta(hours=h, microseconds=1) for h in range(1, 3)}  # just past a boundary
        | {T + timedelta(hours=h, microseconds=-1) for h in range(1, 3)}
    )
    engine = get_engine(db_url)
    rows = _seed(engine, times)
    boundaries = [T + timedelta(hours=h) for h in range(HOURS + 1)]
    windows = [(boundaries[0], boundaries[-1]), (boundaries[1], boundaries[3])]
    windows += [(t, t + timedelta(seconds=1)) for t in boundaries[1:3]]  # one second either side of a boundary
    windows += [(t - timedelta(seconds=1), t) for t in boundaries[1:3]]
    for _ in range(150):
        a, b = sorted(
            rng.choice([rng.choice(times), rng.choice(boundaries), T + timedelta(seconds=rng.randrange(HOURS * 3600))])
            for _ in range(2)
        )
        windows.append((a, b))
    with SqlUnitOfWork(engine) as work:
        for since, until in windows:
            got = work.scores.window_totals(since, until, 3600)
            want = _expected(rows, since, until)
            assert sorted(got) == sorted(want), (since, until)
            for m, t in want.items():
                g = got[m]
                assert (g.prediction_count, g.scored_count, g.failed_count, g.absent_count) == (
                    t.prediction_count,
                    t.scored_count,
                    t.failed_count,
                    t.absent_count,
                ), (since, until, m)
                assert g.value_sum == pytest.approx(t.value_sum, abs=1e-6), (since, until, m)
        # a checkpoint's aligned bounds need no correction: the snapshots alone
        assert work.scores.window_totals(boundaries[1], boundaries[4]) == work.scores.window_totals(
            boundaries[1], boundaries[4], 3600
        )
        # the scores of one period: exactly those of its snapshot, the boundary included
        hour = work.scores.scores_between(boundaries[1], boundaries[2])
        assert boundaries[2] in {r.scored_at for r in hour} and boundaries[1] not in {r.scored_at for r in hour}
        (snapshot,) = work.scores.snapshots_between(boundaries[1], boundaries[2], "m1")
        assert snapshot.totals.prediction_count == sum(1 for r in hour if r.model_id == "m1")


def test_a_custom_aggregator_scores_a_window_on_its_counted_results_in_time_order(db_url: str) -> None:
    times = [T + timedelta(minutes=10 * k) for k in range(1, 13)]
    engine = get_engine(db_url)
    rows = _seed(engine, times)
    with SqlUnitOfWork(engine) as work:
        since, until = T + timedelta(minutes=25), T + timedelta(minutes=95)
        results = work.scores.counted_results(since, until)
        for m in MODELS:
            mine = sorted(
                (r for r in rows if r.model_id == m and since < r.scored_at <= until), key=lambda r: r.scored_at
            )
            assert [x["value"] for x in results[m]] == pytest.approx([r.value for r in mine])
        last = with_aggregate(
            work.scores.window_totals(since, until, 3600), results, lambda rs: {"value": rs[-1]["value"]}
        )
        for m in MODELS:
            newest = max(
                (r for r in rows if r.model_id == m and since < r.scored_at <= until), key=lambda r: r.scored_at
            )
            assert last[m].score == pytest.approx(newest.value) and last[m].prediction_count == 7
