"""The statements a prediction round folds together, on both databases: each folded form gives
exactly what the plain form gives.

* ``SqlFeedRepository.latest_records`` (Postgres: one JSON array) equals the row-by-row read.
* ``SqlModelRepository.sync(…, absence_grace)`` (Postgres: the UPDATE and ``not_running`` in one
  statement) returns ``not_running`` after a plain sync and leaves the same registry.
* ``SqlRoundRepository.add_rounds`` (Postgres: inputs and predictions in one statement) stores
  what ``upsert_rows`` of each stores, refuses a prediction of an unknown round with the foreign
  key's error, and a re-run writes none.
* A read-only unit of work sends no BEGIN and no ROLLBACK, and cannot commit or lock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from coordinator_core.db.bulk import upsert_batches, upsert_rows
from coordinator_core.db.engine import get_engine
from coordinator_core.db.repositories import feeds as feed_sql
from coordinator_core.db.tables import Input, Model, Prediction
from coordinator_core.db.uow import SqlUnitOfWork
from coordinator_core.feeds.base import FeedScope, SourceRecord
from coordinator_core.gateway.base import ModelInfo
from coordinator_core.ports import StoredRecord
from tests.integration.test_bulk import _input, _model, _model_and_config, _prediction

T = datetime(2026, 11, 2, tzinfo=UTC)
IN: Any = Input.__table__  # type: ignore[attr-defined]
P: Any = Prediction.__table__  # type: ignore[attr-defined]
M: Any = Model.__table__  # type: ignore[attr-defined]
SCOPE = FeedScope("binance", "BTC", "candle", "1m")
TEXT = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=8
)  # jsonb holds no NUL
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def _row_by_row(work: SqlUnitOfWork, as_of: datetime, limit: int) -> list[StoredRecord]:
    """What ``latest_records`` read before it was folded (and still reads on SQLite)."""
    rows = work.connection.execute(
        feed_sql.LATEST,
        {
            "source": SCOPE.source,
            "subject": SCOPE.subject,
            "kind": SCOPE.kind,
            "granularity": SCOPE.granularity,
            "cutoff": as_of - feed_sql.observe_delay(SCOPE),
            "limit": limit,
        },
    ).all()
    return [StoredRecord(r.id, r.ts_event, r.values_jsonb) for r in reversed(rows)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.dictionaries(TEXT, JSON_VALUES, max_size=4), min_size=0, max_size=12),
    micros=st.lists(st.integers(0, 59_999_999), min_size=12, max_size=12, unique=True),
    limit=st.integers(1, 15),
    cut=st.integers(0, 13),
)
def test_the_latest_records_equal_the_row_by_row_read(
    db_url: str, values: list[dict], micros: list[int], limit: int, cut: int
) -> None:
    """Random values (integers beyond 64 bits, any float, any text), microsecond timestamps, any
    window and cutoff: the folded read returns the same records, in the same order, with equal
    and UTC-aware timestamps."""
    engine = get_engine(db_url)
    start = T + timedelta(days=len(micros) and micros[0] % 97)  # each example on fresh times
    records = [
        SourceRecord(ts_event=start + timedelta(minutes=i, microseconds=micros[i] % 1_000_000), values=v, final=True)
        for i, v in enumerate(values)
    ]
    with SqlUnitOfWork(engine) as work:
        work.feeds.upsert_records(SCOPE, records, T)
        as_of = start + timedelta(minutes=cut)
        folded = work.feeds.latest_records(SCOPE, as_of, limit)
        assert folded == _row_by_row(work, as_of, limit)
        assert all(r.ts_event.tzinfo is not None and r.ts_event.utcoffset() == timedelta(0) for r in folded)
        # the transaction is rolled back: the next example starts from an empty table


STATES = ["RUNNING", "STOPPED", "DEREGISTERED", "VIRTUAL"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stored=st.lists(
        st.tuples(st.sampled_from(STATES), st.none() | st.integers(0, 200), st.integers(0, 200)), max_size=8
    ),
    reported=st.lists(st.tuples(st.integers(0, 10), st.sampled_from(["RUNNING", "STOPPED"])), max_size=8),
    grace=st.integers(0, 150),
    deregister=st.none() | st.integers(0, 180),
)
def test_a_sync_that_reads_the_absent_gives_what_a_sync_then_not_running_gives(
    db_url: str,
    stored: list[tuple[str, int | None, int]],
    reported: list[tuple[int, str]],
    grace: int,
    deregister: int | None,
) -> None:
    """Any registry (states, last seen running, first seen, in minutes before the round), any
    report of the gateway (new models among them), any grace and deregistration delay: the folded
    sync returns exactly ``not_running`` after a plain sync, and leaves the same rows."""
    engine = get_engine(db_url)
    now = T + timedelta(days=3)
    rows = []
    for i, (state, running, first) in enumerate(stored):
        row = _model(i)
        row.update(
            state=state,
            first_seen_at=now - timedelta(minutes=first),
            last_seen_at=now - timedelta(minutes=first),
            running_at=None if running is None else now - timedelta(minutes=running),
        )
        rows.append(row)
    infos = list(
        {
            f"m{i:05d}": ModelInfo(f"m{i:05d}", f"model {i}", f"p{i}", f"P{i}", state=state) for i, state in reported
        }.values()
    )
    after = None if deregister is None else timedelta(minutes=deregister)
    outcomes = []
    for folded in (False, True):
        with SqlUnitOfWork(engine) as work:
            upsert_rows(work.connection, M, rows, ["id"]) if rows else None
            if folded:
                away = work.models.sync(infos, now, after, timedelta(minutes=grace))
            else:
                assert work.models.sync(infos, now, after) == {}
                away = work.models.not_running(now, timedelta(minutes=grace))
            registry = sorted(
                tuple(r) for r in work.connection.execute(select(M.c.id, M.c.state, M.c.running_at, M.c.last_seen_at))
            )
            outcomes.append((away, registry))  # rolled back: the other form starts from the same rows
    assert outcomes[0] == outcomes[1]
    assert list(outcomes[1][0]) == sorted(outcomes[1][0])


def _statements(engine: Any) -> list[str]:
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    return sent


def test_rounds_are_added_in_one_statement_and_a_rerun_writes_none(db_url: str) -> None:
    engine = get_engine(db_url)
    _model_and_config(engine)
    inputs = [_input(i, raw_data_jsonb={"candles": [{"ts": i, "close": 1.5}]}) for i in range(3)]
    predictions = [_prediction(i, inference_output_jsonb={"value": i / 7}) for i in range(3)]
    sent = _statements(engine)
    with SqlUnitOfWork(engine) as work:
        work.rounds.add_rounds(inputs, predictions)
        work.commit()
    postgres = db_url.startswith("postgresql")
    writes = [s for s in sent if "INSERT" in s]
    assert len(writes) == (1 if postgres else 2)
    with engine.begin() as db:
        assert {r.id: dict(r._mapping) for r in db.execute(select(IN))} == {r["id"]: r for r in inputs}
        assert {r.id: dict(r._mapping) for r in db.execute(select(P))} == {r["id"]: r for r in predictions}
        again = [dict(r, raw_data_jsonb={"changed": True}) for r in inputs]
        assert upsert_batches(
            db, [(IN, again, ["prediction_config_id", "round_at"]), (P, predictions, ["input_id", "model_id"])]
        ) == [0, 0]
        assert upsert_batches(db, [(IN, [_input(9)], ["prediction_config_id", "round_at"]), (P, [], [])]) == [1, 0]
        assert db.execute(select(IN.c.raw_data_jsonb).where(IN.c.id == "INP_0")).scalar() == inputs[0]["raw_data_jsonb"]


def test_a_prediction_of_an_unknown_round_is_refused_and_nothing_is_written(db_url: str) -> None:
    engine = get_engine(db_url)
    _model_and_config(engine)
    with pytest.raises(IntegrityError, match="(?i)foreign key"), SqlUnitOfWork(engine) as work:
        work.rounds.add_rounds([_input(0)], [_prediction(0), _prediction(1)])  # INP_1 does not exist
        work.commit()
    with engine.begin() as db:
        assert db.execute(select(IN.c.id)).all() == [] and db.execute(select(P.c.id)).all() == []


def test_a_batch_json_cannot_carry_goes_on_its_own_and_both_are_written(db_url: str) -> None:
    """A NaN (Postgres' JSON rows cannot hold it) sends the predictions the per-field way: the input
    still goes first and both are stored."""
    engine = get_engine(db_url)
    _model_and_config(engine)
    with SqlUnitOfWork(engine) as work:
        work.rounds.add_rounds(
            [_input(0)], [_prediction(0, exec_time_ms=float("nan") if "postgres" in db_url else 1.0)]
        )
        work.commit()
    with engine.begin() as db:
        assert db.execute(select(P.c.input_id)).scalars().all() == ["INP_0"]


def test_a_read_only_unit_sends_no_begin_nor_rollback_and_cannot_write(db_url: str) -> None:
    engine = get_engine(db_url)
    _model_and_config(engine)
    with SqlUnitOfWork(engine, read_only=True) as work:
        raw = work.connection.connection.dbapi_connection
        assert work.configs.active()[0].id == "CFG"
        if db_url.startswith("postgresql"):
            assert raw.autocommit and raw.info.transaction_status == 0  # idle: no transaction open
        with pytest.raises(RuntimeError, match="read-only unit of work cannot commit"):
            work.commit()
        with pytest.raises(RuntimeError, match="cannot lock"):
            work.lock("x")
    with SqlUnitOfWork(engine) as work:  # the pooled connection is transactional again
        work.rounds.add_rounds([_input(0)], [])
        work.commit()
        if db_url.startswith("postgresql"):
            assert not work.connection.connection.dbapi_connection.autocommit
    with engine.begin() as db:
        assert db.execute(select(IN.c.id)).scalars().all() == ["INP_0"]


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_pooled_connection_left_in_autocommit_is_transactional_again_at_checkout(db_url: str) -> None:
    """Whatever left the driver's autocommit on (a unit that died before its exit), the next unit
    of work gets a transaction: its uncommitted write is rolled back."""
    engine = get_engine(db_url)
    _model_and_config(engine)
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        raw.autocommit = True  # and returned to the pool so
    with SqlUnitOfWork(engine) as work:
        assert work.connection.connection.dbapi_connection is raw and not raw.autocommit
        work.rounds.add_rounds([_input(0)], [])  # not committed
    with engine.begin() as db:
        assert db.execute(select(IN.c.id)).all() == []
