"""``SqlScoreRepository.rebuild_snapshots`` on both databases against the rule, stated here in
Python: per model and period ``(k P, (k + 1) P]`` of ``scored_at``, the count of scores, the sum
of their values, the successful, FAILED and ABSENT counts, and the default summary (per key, the
mean of the successful results' values where that key holds a number; a boolean is not one).
On Postgres the summary is folded into the counts' scan when the results have at most
``FOLDED_KEYS`` keys, and read one row per key otherwise: both are checked."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from coordinator_core.db.engine import get_engine
from coordinator_core.db.repositories import scores as score_sql
from coordinator_core.db.uow import SqlUnitOfWork
from coordinator_core.domain.periods import period_start
from coordinator_core.domain.scoring import ScoreRow
from tests.integration.test_repositories import seed_scored_rounds

T = datetime(2026, 10, 1, tzinfo=UTC)
P = 3600
MODELS = ["m1", "m2", "m3"]
ROUNDS = 16
# exact binary fractions: every sum and mean is the same float whatever the order of addition
NUMBER = st.integers(-40, 40).map(lambda n: n / 8) | st.integers(-5, 5)
RESULT_VALUE = NUMBER | st.booleans() | st.none() | st.text(max_size=3) | st.lists(NUMBER, max_size=2)
RESULT = st.dictionaries(st.sampled_from(["value", "x", "y", "flag", "note"]), RESULT_VALUE, max_size=5)
# around the hour boundaries (the end of a period belongs to it), and anywhere
MOMENT = st.tuples(st.integers(0, 3), st.sampled_from([-1, 0, 1, 1_800_000_000])).map(
    lambda hm: T + timedelta(hours=hm[0] + 1, microseconds=hm[1])
)
SCORE = st.tuples(st.sampled_from(["SCORED", "FAILED", "ABSENT"]), NUMBER, st.booleans(), RESULT, MOMENT)


def _seed(engine: Any) -> None:
    seed_scored_rounds(engine, [T + timedelta(minutes=k) for k in range(ROUNDS)], tuple(MODELS))


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _expected(rows: list[ScoreRow]) -> dict[tuple[str, datetime], tuple]:
    groups: dict[tuple[str, datetime], list[ScoreRow]] = defaultdict(list)
    for r in rows:
        groups[(r.model_id, period_start(r.scored_at, P))].append(r)
    out = {}
    for key, group in groups.items():
        numbers: dict[str, list[float]] = defaultdict(list)
        for r in group:
            if r.success:
                for k, v in r.result.items():
                    if _is_number(v):
                        numbers[k].append(float(v))
        out[key] = (
            len(group),
            sum(r.value for r in group),
            sum(r.success for r in group),
            sum(r.prediction_status == "FAILED" for r in group),
            sum(r.prediction_status == "ABSENT" for r in group),
            {k: sum(vs) / len(vs) for k, vs in numbers.items()},
        )
    return out


@pytest.mark.parametrize("folded", [True, False])
def test_the_snapshots_follow_the_rule(db_url: str, folded: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not folded:
        monkeypatch.setattr(score_sql, "FOLDED_KEYS", 1)
    engine = get_engine(db_url)
    _seed(engine)
    cells = [(k, m) for k in range(ROUNDS) for m in MODELS]

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(scores=st.lists(SCORE, min_size=1, max_size=len(cells)))
    def check(scores: list[tuple]) -> None:
        rows = [
            ScoreRow(f"P{k}{m}", m, f"I{k}", status, value, success, None, result, at)
            for (k, m), (status, value, success, result, at) in zip(cells, scores, strict=False)
        ]
        with SqlUnitOfWork(engine) as work:
            work.scores.add(rows)
            periods = sorted({period_start(r.scored_at, P) for r in rows})
            work.scores.rebuild_snapshots(periods, P, None, T + timedelta(days=1))
            stored = work.connection.execute(
                text(
                    "SELECT model_id, period_start, period_end, prediction_count, value_sum, scored_count, "
                    "failed_count, absent_count, result_summary_jsonb FROM snapshots"
                )
            ).all()
            # rolled back: the next example starts without scores or snapshots
        got = {}
        for model_id, start, end, count, value_sum, scored, failed, absent, summary in stored:
            start = start if isinstance(start, datetime) else datetime.fromisoformat(str(start))
            start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
            summary = summary if isinstance(summary, dict) else __import__("json").loads(summary)
            end = end if isinstance(end, datetime) else datetime.fromisoformat(str(end))
            end = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
            assert end == start + timedelta(seconds=P)
            got[(model_id, start)] = (count, value_sum, scored, failed, absent, summary)
        assert got == _expected(rows)

    check()
