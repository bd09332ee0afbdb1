"""``SqlFeedRepository.price_pairs`` on both databases (Postgres: the queries as one jsonb
recordset, LATERAL reads): for any stored records (several scopes, final or provisional, times to
the microsecond) and any queries, the entry and exit records and whether a later record exists are
those of the documented rule, as the in-memory repository of the unit tests states it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coordinator_core.db.engine import get_engine
from coordinator_core.db.uow import SqlUnitOfWork
from coordinator_core.feeds.base import FeedScope, SourceRecord, observe_delay
from coordinator_core.ports import PricePair, PriceQuery
from tests.unit.fakes import FakeFeeds, State

T = datetime(2026, 11, 2, tzinfo=UTC)
SCOPES = [
    FeedScope("binance", "BTC", "candle", "1m"),
    FeedScope("binance", "ETH", "candle", "1m"),
    FeedScope("pyth", "BTC", "tick", "1s"),
]

# a few offsets within the minute, often the same: a query's time is often exactly when a record
# becomes observable (the boundaries of ``<=`` and ``>``), as well as any microsecond around it
MICROS = st.sampled_from([0, 1, 999_999]) | st.integers(0, 999_999)


def _plain(pair: PricePair) -> tuple:
    """A pair without the records' ids (each repository numbers its own)."""
    return tuple(None if r is None else (r.ts_event, r.values) for r in (pair.entry, pair.exit)) + (pair.later,)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 30), MICROS, st.booleans()),
        min_size=1,
        max_size=50,
        unique_by=lambda r: (r[0], r[1]),
    ),
    data=st.data(),
)
def test_the_price_pairs_follow_the_rule(db_url: str, records: list[tuple], data: st.DataObject) -> None:
    """Queries at any time, and at exactly the time a stored record becomes observable (its entry
    or its exit there: the boundaries of "at or before" and "later")."""
    engine = get_engine(db_url)
    start = T + timedelta(days=len(records) % 7)
    stored = [
        (
            SCOPES[s],
            SourceRecord(
                ts_event=start + timedelta(minutes=m, microseconds=us), values={"close": m + us / 1e6}, final=final
            ),
        )
        for s, m, us, final in records
    ]
    observable = [r.ts_event + observe_delay(scope) for scope, r in stored]
    moment = st.builds(
        lambda m, us: start + timedelta(minutes=m, microseconds=us), st.integers(-3, 35), MICROS
    ) | st.sampled_from(observable)
    asked = [
        PriceQuery(f"q{i}", SCOPES[s], entry, exit_ if exit_ >= entry else entry)
        for i, (s, entry, exit_) in enumerate(
            data.draw(st.lists(st.tuples(st.integers(0, 2), moment, moment), min_size=1, max_size=25))
        )
    ]
    fake = FakeFeeds(State())
    with SqlUnitOfWork(engine) as work:
        for scope in SCOPES:
            mine = [r for s, r in stored if s == scope]
            work.feeds.upsert_records(scope, mine, T)
            fake.upsert_records(scope, mine, T)
        got = work.feeds.price_pairs(asked)
        # the transaction is rolled back: the next example starts from an empty table
    expected = fake.price_pairs(asked)
    assert set(got) == set(expected)
    assert {k: _plain(v) for k, v in got.items()} == {k: _plain(v) for k, v in expected.items()}
