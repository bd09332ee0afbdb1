"""Backfill, gaps and source fallback, on SQLite and Postgres (sources in-process; the HTTP
upstreams have their own tests against local servers)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from coordinator_core.bootstrap import build_runtime
from coordinator_core.db.migrate import upgrade
from coordinator_core.db.tables import FeedIngestionState, FeedRecord, Input
from coordinator_core.feeds.base import FeedScope, SourceRecord
from coordinator_core.feeds.synthetic import SyntheticSource
from coordinator_core.services.backfill import backfill, find_gaps
from coordinator_core.services.configs import seed_configs
from coordinator_core.services.ingest import upsert_records
from coordinator_core.services.predict import predict_round
from coordinator_core.services.score import score_predictions

START = datetime(2026, 11, 20, tzinfo=UTC)
END = START + timedelta(days=1)
NOW = datetime(2026, 11, 29, tzinfo=UTC)
SCOPE = FeedScope("synthetic", "BTC", "candle", "1m")


class PagedSynthetic(SyntheticSource):
    """The synthetic source with a small page and buckets it cannot serve (an upstream outage)."""

    def __init__(self, page_limit: int, missing: set[datetime] | None = None) -> None:
        super().__init__(seed=3)
        self.page_limit = page_limit
        self.missing = missing or set()
        self.calls = 0

    def fetch(self, scope, start, end, limit=None):
        self.calls += 1
        records = [r for r in super().fetch(scope, start, end, None) if r.ts_event not in self.missing]
        return records[:limit]


def rows(engine) -> list[tuple]:
    with Session(engine) as session:
        return [
            (r.ts_event, r.values_jsonb, r.final)
            for r in session.exec(select(FeedRecord).order_by(FeedRecord.ts_event)).all()
        ]


def test_backfill_pages_through_the_range_and_a_repeat_writes_nothing(make_runtime) -> None:
    rt = make_runtime(feed_source="synthetic", feed_granularity="1m")
    source = PagedSynthetic(page_limit=500)
    result = backfill(rt.uow, source, SCOPE, START, END, NOW)
    assert (result.fetched, result.written, result.pages) == (1441, 1441, 3)
    assert result.gaps == []
    before = rows(rt.engine)
    again = backfill(rt.uow, source, SCOPE, START, END, NOW)
    assert again.written == 0 and rows(rt.engine) == before
    with Session(rt.engine) as session:
        assert session.get(FeedIngestionState, SCOPE.key).last_event_ts == END


def test_gaps_are_reported_and_a_later_backfill_repairs_them(make_runtime) -> None:
    rt = make_runtime(feed_source="synthetic", feed_granularity="1m")
    outage = {START + timedelta(minutes=m) for m in range(100, 130)} | {START + timedelta(minutes=700)}
    result = backfill(rt.uow, PagedSynthetic(400, outage), SCOPE, START, END, NOW)
    assert result.written == 1441 - 31
    assert [(g.first, g.last, g.count) for g in result.gaps] == [
        (START + timedelta(minutes=100), START + timedelta(minutes=129), 30),
        (START + timedelta(minutes=700), START + timedelta(minutes=700), 1),
    ]
    assert find_gaps(rt.uow, SCOPE, START, END) == result.gaps
    healed = backfill(rt.uow, PagedSynthetic(400), SCOPE, START, END, NOW)
    assert healed.written == 31 and healed.gaps == []


def test_backfill_refuses_an_inverted_range(make_runtime) -> None:
    rt = make_runtime(feed_source="synthetic", feed_granularity="1m")
    try:
        backfill(rt.uow, PagedSynthetic(10), SCOPE, END, START, NOW)
    except ValueError as exc:
        assert "before start" in str(exc)
    else:
        raise AssertionError("an inverted range must be refused")


BASE = [SourceRecord(START + timedelta(minutes=i), {"close": 100.0 + i}) for i in range(40)]
PROVISIONAL = {i: replace(BASE[i], values={"close": -1.0}, final=False) for i in (5, 17, 39)}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pages=st.lists(st.tuples(st.integers(0, 39), st.integers(1, 15), st.booleans()), min_size=1, max_size=8),
    order=st.randoms(use_true_random=False),
)
def test_any_order_of_overlapping_pages_gives_the_same_table(tmp_path_factory, pages, order) -> None:
    """Pages may overlap, repeat, arrive in any order and carry provisional (non-final) versions;
    once every final record has arrived the table is the same as one clean ingestion."""
    url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'p.db'}"
    upgrade(url)
    runtime = build_runtime(database_url=url)
    engine = runtime.engine
    batches = []
    for first, size, provisional in pages:
        chosen = range(first, min(40, first + size))
        batches.append([PROVISIONAL.get(i, BASE[i]) if provisional else BASE[i] for i in chosen])
    batches.append(list(BASE))  # the complete final series arrives at some point
    order.shuffle(batches)
    for batch in batches:
        upsert_records(runtime.uow, SCOPE, batch, NOW)
    assert rows(engine) == [(r.ts_event, r.values, True) for r in BASE]


def test_ground_truth_falls_back_to_the_next_source_with_a_complete_window(make_runtime, tmp_path) -> None:
    models = tmp_path / "models"
    (models / "one").mkdir(parents=True)
    (models / "one" / "main.py").write_text(
        "from tracker import TrackerBase\n\nclass One(TrackerBase):\n"
        "    def predict(self, subject, horizon_seconds, step_seconds):\n        return {'value': 0.001}\n"
    )
    rt = make_runtime(feed_source="binance,pyth", feed_granularity="1m", models_dir=str(models), feed_candles_window=10)
    t = datetime(2026, 11, 28, 12, tzinfo=UTC)
    candles = [
        SourceRecord(t - timedelta(minutes=30) + timedelta(minutes=i), {"close": 1000.0 + i}) for i in range(400)
    ]
    primary = FeedScope("binance", "BTC", "candle", "1m")
    fallback = FeedScope("pyth", "BTC", "candle", "1m")
    # the primary source has a hole at the 1-hour horizon; the fallback is complete
    upsert_records(rt.uow, primary, [c for c in candles if not (t + timedelta(minutes=50) <= c.ts_event)], NOW)
    upsert_records(rt.uow, fallback, [replace(c, values={"close": c.values["close"] + 0.5}) for c in candles], NOW)
    seed_configs(rt.uow, rt.contract, rt.settings, t)
    result = predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, t)
    assert result.statuses["PENDING"] == 2
    score_predictions(rt.uow, rt.contract, rt.settings, t + timedelta(hours=5))
    with Session(rt.engine) as session:
        inputs = {i.scope_key: i for i in session.exec(select(Input)).all()}
    one_hour = inputs["BTC-3600"]
    assert one_hour.scope_jsonb["source"] == "binance"  # the input came from the primary (fresh at t)
    assert one_hour.actuals_jsonb["source"] == "pyth"
    assert one_hour.actuals_jsonb["entry_price"] == 1029.5  # fallback's candle opened at t-1m, closed at t
    assert one_hour.actuals_jsonb["resolved_price"] == 1089.5  # opened at t+59m, closed at t+1h


def test_bulk_pages_keep_final_rows_and_rewrite_only_changes(make_runtime) -> None:
    """Pages of >= 500 rows take Postgres's COPY path; the rules are the same on both databases."""
    rt = make_runtime(feed_source="synthetic", feed_granularity="1m")
    final = [SourceRecord(START + timedelta(minutes=i), {"close": float(i)}) for i in range(600)]
    assert upsert_records(rt.uow, SCOPE, final, NOW) == 600
    assert upsert_records(rt.uow, SCOPE, final, NOW) == 0
    provisional = [replace(r, values={"close": -1.0}, final=False) for r in final]
    assert upsert_records(rt.uow, SCOPE, provisional, NOW) == 0
    assert rows(rt.engine) == [(r.ts_event, r.values, True) for r in final]
    changed = [replace(r, values={"close": r.values["close"] + 0.5}) for r in final[:550]] + final[550:]
    duplicated = changed + changed[:10]  # a page that repeats keys: the last copy wins, no error
    assert upsert_records(rt.uow, SCOPE, duplicated, NOW) == 550
    assert rows(rt.engine) == [(r.ts_event, r.values, True) for r in changed]
