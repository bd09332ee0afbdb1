"""The SQL repositories on both databases, where the in-memory fake cannot speak for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from coordinator_core.db.engine import get_engine
from coordinator_core.db.uow import SqlUnitOfWork
from coordinator_core.domain.scoring import ScoreRow
from coordinator_core.gateway.base import ModelInfo

T = datetime(2026, 10, 1, 1, tzinfo=UTC)


def seed_scored_rounds(engine, times: list[datetime], models: tuple[str, ...]) -> None:
    """Config ``CFG``, the ``models``, and one RESOLVED round ``I<k>`` at each of ``times`` with a
    SCORED prediction ``P<k><model>`` per model: what score rows of a test refer to."""
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO scheduled_prediction_configs (id, scope_key, scope_template_jsonb, schedule_jsonb, active, "
                "\"order\", meta_jsonb, updated_at) VALUES ('CFG', 'K', '{}', '{}', true, 0, '{}', :t)"
            ),
            {"t": T},
        )
    with SqlUnitOfWork(engine) as work:
        work.models.sync([ModelInfo(m, m, f"p{m[1:]}", f"P{m[1:]}") for m in models], T)
        rows_in, rows_p = [], []
        for k, at in enumerate(times):
            rows_in.append(
                {
                    "id": f"I{k}",
                    "prediction_config_id": "CFG",
                    "scope_key": "K",
                    "status": "RESOLVED",
                    "round_at": at,
                    "received_at": at,
                    "resolvable_at": at,
                    "resolved_at": at,
                    "raw_data_jsonb": {},
                    "actuals_jsonb": None,
                    "scope_jsonb": {},
                    "meta_jsonb": {},
                }
            )
            for m in models:
                rows_p.append(
                    {
                        "id": f"P{k}{m}",
                        "input_id": f"I{k}",
                        "model_id": m,
                        "prediction_config_id": "CFG",
                        "scope_key": "K",
                        "scope_jsonb": {},
                        "status": "SCORED",
                        "runner_status": "SUCCESS",
                        "failed_reason": None,
                        "exec_time_ms": 0.0,
                        "inference_output_jsonb": {},
                        "meta_jsonb": {},
                        "performed_at": at,
                        "resolvable_at": at,
                    }
                )
        work.rounds.add_rounds(rows_in, rows_p)
        work.commit()


def _seed(engine) -> None:
    seed_scored_rounds(engine, [T + timedelta(minutes=12 * k) for k in range(4)], ("m1", "m2"))


def test_snapshots_rebuilt_again_and_again_in_one_period_count_every_score(db_url: str) -> None:
    """Scores resolved at 01:15, 01:30, 01:45 and 02:00 all land in the snapshot (01:00, 02:00]:
    after each rebuild the snapshot holds every score of the period so far (a period key is an
    integer division; the end belongs to the period)."""
    engine = get_engine(db_url)
    _seed(engine)
    for k in range(4):
        at = T + timedelta(minutes=15 * (k + 1))
        with SqlUnitOfWork(engine) as work:
            work.scores.add(
                [
                    ScoreRow(
                        f"P{k}{m}",
                        m,
                        f"I{k}",
                        "SCORED",
                        -float(k + 1),
                        True,
                        None,
                        {"value": -float(k + 1), "x": k},
                        at,
                    )
                    for m in ("m1", "m2")
                ]
            )
            work.scores.rebuild_snapshots([T], 3600, None, at)
            work.commit()
        with engine.connect() as c:
            snaps = c.execute(
                text(
                    "SELECT model_id, prediction_count, value_sum, result_summary_jsonb FROM snapshots "
                    "ORDER BY model_id"
                )
            ).all()
        assert [(m, n) for m, n, _, _ in snaps] == [("m1", k + 1), ("m2", k + 1)]
        expected = -sum(range(1, k + 2))
        assert all(abs(v - expected) < 1e-9 for _, _, v, _ in snaps)
    summary = snaps[0][3] if isinstance(snaps[0][3], dict) else __import__("json").loads(snaps[0][3])
    assert summary == {"value": -2.5, "x": 1.5}  # the default aggregator: the mean of every numeric key


def test_work_owed_is_due_from_its_earliest_time_and_only_then(db_url: str) -> None:
    """``derived_dirty.owed_at``: a refresh at ``now`` sees only the work owed at or before ``now``;
    owing the same period again keeps the earlier time; NULL (owed before revision 0005) is due at
    any time."""
    engine = get_engine(db_url)
    hour = timedelta(hours=1)
    with SqlUnitOfWork(engine) as work:
        work.scores.mark_dirty("snapshot", [T, T + hour], T + 2 * hour)
        work.scores.mark_dirty("snapshot", [T], T + 3 * hour)  # later: keeps T + 2 h
        work.scores.mark_dirty("leaderboard", [T + 2 * hour], T + 2 * hour)
        work.commit()
    with SqlUnitOfWork(engine) as work:
        assert work.scores.dirty("snapshot", T + hour) == [] and work.scores.dirty("leaderboard", T + hour) == []
        assert work.scores.dirty("snapshot", T + 2 * hour) == [T, T + hour]
        assert work.scores.dirty("leaderboard", T + 5 * hour) == [T + 2 * hour]
        work.scores.mark_dirty("snapshot", [T + hour], T)  # earlier: due from T
        assert work.scores.dirty("snapshot", T) == [T + hour]
        work.connection.execute(
            text("INSERT INTO derived_dirty (kind, period_start, owed_at) VALUES ('leaderboard', :p, NULL)"), {"p": T}
        )
        work.scores.mark_dirty("leaderboard", [T], T + 4 * hour)  # NULL stays NULL: due at any time
        assert work.scores.dirty("leaderboard", T - hour) == [T]
        work.scores.clear_dirty("snapshot", [T, T + hour])
        assert work.scores.dirty("snapshot", T + 9 * hour) == []
