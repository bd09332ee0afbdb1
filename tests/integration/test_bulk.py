"""The set-based writes (``db.bulk``) on both databases, below and above the COPY threshold: what
``upsert_rows`` counts (rows inserted or changed), that a re-run writes nothing, that ``update``
columns are rewritten only when changed, the ``final_wins`` guard, and ``update_rows``."""

from __future__ import annotations

import enum
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select, text
from sqlalchemy.exc import StatementError

from coordinator_core.db.bulk import COPY_THRESHOLD, update_rows, upsert_rows
from coordinator_core.db.engine import get_engine
from coordinator_core.db.tables import FeedRecord, Input, Model, Prediction

T = datetime(2026, 11, 2, tzinfo=UTC)
M = Model.__table__  # type: ignore[attr-defined]
FR = FeedRecord.__table__  # type: ignore[attr-defined]


def _model(i: int, name: str | None = None) -> dict:
    return {
        "id": f"m{i:05d}",
        "name": name or f"model {i}",
        "deployment_identifier": "local",
        "player_id": f"p{i}",
        "player_name": f"P{i}",
        "wallet": None,
        "hotkey": None,
        "state": "RUNNING",
        "first_seen_at": T,
        "last_seen_at": T,
        "created_at": T,
        "updated_at": T,
        "overall_score_jsonb": {},
        "scores_by_scope_jsonb": [],
        "meta_jsonb": {"i": i, "text": 'quote " comma , newline \n end'},
    }


def _model_and_config(engine: Any) -> None:
    """Model ``m00000`` and config ``CFG``: what the inputs and predictions of a test refer to."""
    with engine.begin() as db:
        upsert_rows(db, M, [_model(0)], ["id"])
        db.execute(
            text(
                "INSERT INTO scheduled_prediction_configs (id, scope_key, scope_template_jsonb, schedule_jsonb, active, "
                "\"order\", meta_jsonb, updated_at) VALUES ('CFG', 'K', '{}', '{}', true, 0, '{}', :t)"
            ),
            {"t": T},
        )


def _prediction(i: int, **values: Any) -> dict[str, Any]:
    """Model ``m00000``'s PENDING prediction of round ``INP_<i>``, with ``values`` changed."""
    return {
        "id": f"PRE_{i}",
        "input_id": f"INP_{i}",
        "model_id": "m00000",
        "prediction_config_id": "CFG",
        "scope_key": "K",
        "scope_jsonb": {},
        "status": "PENDING",
        "runner_status": None,
        "failed_reason": None,
        "exec_time_ms": 1.5,
        "inference_output_jsonb": {"value": i / 1000},
        "meta_jsonb": {},
        "performed_at": T,
        "resolvable_at": T,
        **values,
    }


def _input(i: int, **values: Any) -> dict[str, Any]:
    """Round ``INP_<i>`` of config ``CFG`` (RECEIVED, at ``T`` + i minutes), with ``values`` changed."""
    return {
        "id": f"INP_{i}",
        "prediction_config_id": "CFG",
        "scope_key": "K",
        "status": "RECEIVED",
        "round_at": T + timedelta(minutes=i),
        "received_at": T,
        "resolvable_at": T,
        "resolved_at": None,
        "raw_data_jsonb": {},
        "actuals_jsonb": None,
        "scope_jsonb": {},
        "meta_jsonb": {},
        **values,
    }


@pytest.mark.parametrize("count", [3, COPY_THRESHOLD + 7])
def test_upsert_counts_inserted_and_changed_rows_and_a_rerun_writes_none(db_url: str, count: int) -> None:
    engine = get_engine(db_url)
    rows = [_model(i) for i in range(count)]
    with engine.begin() as db:
        assert upsert_rows(db, M, rows, ["id"], update=["name", "meta_jsonb"]) == count
    with engine.begin() as db:
        assert upsert_rows(db, M, rows, ["id"], update=["name", "meta_jsonb"]) == 0  # nothing changed
    changed = [_model(i, name="renamed") if i % 3 == 0 else _model(i) for i in range(count)]
    with engine.begin() as db:
        assert upsert_rows(db, M, changed, ["id"], update=["name", "meta_jsonb"]) == len(range(0, count, 3))
    with engine.begin() as db:  # do nothing on a conflict: only the new rows count
        assert upsert_rows(db, M, [_model(i) for i in range(count + 2)], ["id"]) == 2
        stored = {r.id: (r.name, r.meta_jsonb) for r in db.execute(select(M.c.id, M.c.name, M.c.meta_jsonb))}
    assert len(stored) == count + 2
    for i in range(count):
        assert stored[f"m{i:05d}"] == ("renamed" if i % 3 == 0 else f"model {i}", _model(i)["meta_jsonb"])


@pytest.mark.parametrize("count", [2, COPY_THRESHOLD + 1])
def test_final_wins_guard_never_overwrites_a_final_record(db_url: str, count: int) -> None:
    engine = get_engine(db_url)

    def record(k: int, close: float, final: bool) -> dict:
        at = T + timedelta(minutes=k)
        return {
            "source": "s",
            "subject": "BTC",
            "kind": "candle",
            "granularity": "1m",
            "ts_event": at,
            "values_jsonb": {"close": close},
            "meta_jsonb": {},
            "final": final,
            "ts_ingested": at,
        }

    conflict = ["source", "subject", "kind", "granularity", "ts_event"]
    with engine.begin() as db:
        first = [record(k, 1.0, final=k % 2 == 0) for k in range(count)]
        assert upsert_rows(db, FR, first, conflict, update=["values_jsonb", "final"], guard="final_wins") == count
    with engine.begin() as db:  # a provisional value arrives for every minute: only the provisional rows change
        later = [record(k, 2.0, final=False) for k in range(count)]
        written = upsert_rows(db, FR, later, conflict, update=["values_jsonb", "final"], guard="final_wins")
        closes = [r.values_jsonb["close"] for r in db.execute(select(FR.c.values_jsonb).order_by(FR.c.ts_event))]
    assert written == len([k for k in range(count) if k % 2 == 1])
    assert closes == [1.0 if k % 2 == 0 else 2.0 for k in range(count)]


@pytest.mark.parametrize("count", [4, COPY_THRESHOLD + 3])
def test_update_rows_sets_each_rows_columns_by_key(db_url: str, count: int) -> None:
    engine = get_engine(db_url)
    with engine.begin() as db:
        upsert_rows(db, M, [_model(i) for i in range(count)], ["id"])
        changes = [{"id": f"m{i:05d}", "last_failure_code": f"E{i}", "last_failure_at": T} for i in range(0, count, 2)]
        assert update_rows(db, M, "id", changes) == len(changes)
        stored = dict(db.execute(select(M.c.id, M.c.last_failure_code)).all())
    assert stored == {f"m{i:05d}": (f"E{i}" if i % 2 == 0 else None) for i in range(count)}


@pytest.mark.parametrize("count", [5, COPY_THRESHOLD + 5])
def test_a_do_nothing_upsert_inserts_exactly_the_new_keys_whatever_the_path(db_url: str, count: int) -> None:
    """All keys new, one key twice in the batch (the first is kept), and keys that exist already
    (the stored rows are kept): the same rows and counts below and above the COPY threshold, and
    the transaction goes on after it."""
    engine = get_engine(db_url)
    with engine.begin() as db:
        assert upsert_rows(db, M, [_model(i) for i in range(count)], ["id"]) == count
        assert upsert_rows(db, M, [_model(count), _model(count, name="twice")], ["id"]) == 1
    batch = [_model(i, name="again") for i in range(count + 1)] + [_model(i) for i in range(count + 1, 2 * count)]
    batch.append(_model(2 * count - 1, name="duplicate in the batch"))
    with engine.begin() as db:
        assert upsert_rows(db, M, batch, ["id"]) == count - 1
        assert upsert_rows(db, M, [_model(2 * count)], ["id"]) == 1  # the same transaction, still usable
        names = dict(db.execute(select(M.c.id, M.c.name)).all())
    assert names == {f"m{i:05d}": f"model {i}" for i in range(2 * count + 1)}


AWKWARD_TEXT = ['quote " comma , newline \n tab \t', "back\\slash \\N \\.", "émoji 🎯 ünï", "", " lead", "{}", "null"]
AWKWARD_FLOAT = [0.1, -0.0, 1e-300, 1.7976931348623157e308, 2.0**53 + 1, 123456789.12345679, 5e-324]
# jsonb keeps a number as numeric: one written without a fractional part comes back as an integer
# (1.7976931348623157e308 -> 17976931348623157 followed by 292 zeros) whatever path wrote it
IN_JSON = [x for x in AWKWARD_FLOAT if abs(x) < 1e300]


@pytest.mark.parametrize("count", [len(AWKWARD_TEXT), COPY_THRESHOLD + 3])
def test_upserted_rows_read_back_exactly_as_written(db_url: str, count: int) -> None:
    """Whatever path a batch takes (Postgres: one JSON parameter below the COPY threshold, COPY
    above it; SQLite: per-field), texts, floats, nested JSON and microsecond timestamps come back
    as written; a JSON column holding ``None`` is stored as JSON null (not SQL NULL) on every path;
    a non-finite float goes the per-field way and comes back too."""
    engine = get_engine(db_url)
    P = Prediction.__table__  # type: ignore[attr-defined]
    at = T + timedelta(microseconds=123_457)
    _model_and_config(engine)
    rows = []
    for i in range(count):
        words = AWKWARD_TEXT[i % len(AWKWARD_TEXT)]
        rows.append(
            _input(
                i,
                scope_key=words,
                round_at=at + timedelta(minutes=i),
                received_at=at,
                resolvable_at=at + timedelta(hours=1),
                raw_data_jsonb={"text": words, "x": IN_JSON[i % len(IN_JSON)], "list": [1, None, True]},
                actuals_jsonb={"value": IN_JSON[(i + 1) % len(IN_JSON)]},
                scope_jsonb={"nested": {"deep": [words]}},
            )
        )
    rows[0]["actuals_jsonb"] = None  # JSON null on both databases
    IN = Input.__table__  # type: ignore[attr-defined]
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    with engine.begin() as db:
        assert upsert_rows(db, IN, rows[1:], ["prediction_config_id", "round_at"]) == count - 1
        assert upsert_rows(db, IN, rows[:1], ["prediction_config_id", "round_at"]) == 1  # JSON null
        copied = [  # a COPY batch of JSON nulls
            dict(rows[0], id=f"INP_C{i}", round_at=at - timedelta(days=1, minutes=i), actuals_jsonb=None)
            for i in range(COPY_THRESHOLD)
        ]
        assert upsert_rows(db, IN, copied, ["prediction_config_id", "round_at"]) == COPY_THRESHOLD
        assert upsert_rows(db, IN, rows, ["prediction_config_id", "round_at"]) == 0  # a re-run writes none
        predictions = [
            _prediction(
                i,
                runner_status=None if i % 2 else "SUCCESS",
                failed_reason=AWKWARD_TEXT[i % len(AWKWARD_TEXT)],
                exec_time_ms=AWKWARD_FLOAT[i % len(AWKWARD_FLOAT)],
                inference_output_jsonb={"value": IN_JSON[i % len(IN_JSON)]},
                performed_at=at,
                resolvable_at=at,
            )
            for i in range(count)
        ]
        postgres = db_url.startswith("postgresql")
        if postgres:  # SQLite has no NaN (it stores NULL)
            predictions[-1]["exec_time_ms"] = float("nan")
        assert upsert_rows(db, P, predictions[:-1], ["input_id", "model_id"]) == count - 1
        assert upsert_rows(db, P, predictions[-1:], ["input_id", "model_id"]) == 1  # NaN: per field
        stored = {r.id: dict(r._mapping) for r in db.execute(select(IN))}
        sql_nulls = set(db.execute(select(IN.c.id).where(IN.c.actuals_jsonb.is_(None))).scalars())
        stored_p = {r.id: dict(r._mapping) for r in db.execute(select(P))}
    for row in rows:
        assert stored[row["id"]] == row
    assert stored[copied[0]["id"]]["actuals_jsonb"] is None
    assert sql_nulls == set(), "a None in a JSON column is JSON null, whatever the path (COPY, JSON rows, per field)"
    for row in predictions[:-1] if postgres else predictions:
        assert stored_p[row["id"]] == row
    if postgres:
        assert math.isnan(stored_p[predictions[-1]["id"]]["exec_time_ms"])
    recordsets = sum("jsonb_populate_recordset" in statement for statement in sent)
    # the small batches JSON carries: below the threshold all four but the NaN, above it the one row
    assert recordsets == (0 if not postgres else 4 if count < COPY_THRESHOLD else 1)


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_predictions_status_change_is_heap_only_on_postgres(db_url: str) -> None:
    """Revision 0007: ``status`` is not indexed and every predictions page has room for a new
    version of its rows, so scoring a batch writes no index entry (counted by the server for the
    transaction)."""
    from coordinator_core.db.repositories.rounds import SqlRoundRepository
    from coordinator_core.domain.scoring import StatusChange

    engine, count = get_engine(db_url), 300
    _model_and_config(engine)
    with engine.begin() as db:
        inputs = [_input(i) for i in range(count)]
        for row in inputs:
            del row["resolved_at"], row["actuals_jsonb"]  # left to the table's defaults
        upsert_rows(db, Input.__table__, inputs, ["prediction_config_id", "round_at"])  # type: ignore[attr-defined]
        predictions = [_prediction(i, scope_jsonb={"subject": "BTC", "horizon_seconds": 3600}) for i in range(count)]
        upsert_rows(db, Prediction.__table__, predictions, ["input_id", "model_id"])  # type: ignore[attr-defined]
    with engine.begin() as db:
        changes = [StatusChange(f"PRE_{i}", "SCORED") for i in range(0, count, 2)]
        changes += [StatusChange(f"PRE_{i}", "FAILED", "scoring error: boom") for i in range(1, count, 2)]
        SqlRoundRepository(db).set_statuses(changes)
        updated, hot = db.execute(
            text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'predictions'")
        ).one()
    assert updated == count and hot == count


@pytest.mark.parametrize("rounds", ["all", "some", "none"])
def test_set_statuses_changes_exactly_the_given_predictions_whatever_rounds_it_is_told(
    db_url: str, rounds: str
) -> None:
    """The rounds passed to ``set_statuses`` narrow where it looks, never what it changes: every
    given prediction gets its status (those of rounds left out too, by id), and no other
    prediction of those rounds is touched."""
    from coordinator_core.db.repositories.rounds import SqlRoundRepository
    from coordinator_core.domain.scoring import StatusChange

    engine, count = get_engine(db_url), COPY_THRESHOLD + 10
    _model_and_config(engine)
    with engine.begin() as db:
        upsert_rows(db, Input.__table__, [_input(i) for i in range(count)], ["prediction_config_id", "round_at"])  # type: ignore[attr-defined]
        upsert_rows(db, Prediction.__table__, [_prediction(i) for i in range(count)], ["input_id", "model_id"])  # type: ignore[attr-defined]
    scored = set(range(0, count, 3))
    failed = set(range(1, count, 3))
    told = {"all": list(range(count)), "some": list(range(0, count, 2)), "none": []}[rounds]
    with engine.begin() as db:
        changes = [StatusChange(f"PRE_{i}", "SCORED") for i in sorted(scored)]
        changes += [StatusChange(f"PRE_{i}", "FAILED", f"boom {i}") for i in sorted(failed)]
        SqlRoundRepository(db).set_statuses(changes, [f"INP_{i}" for i in told])
    P = Prediction.__table__  # type: ignore[attr-defined]
    with engine.connect() as db:
        stored = {r.id: (r.status, r.failed_reason) for r in db.execute(select(P.c.id, P.c.status, P.c.failed_reason))}
    for i in range(count):
        expected = ("SCORED", None) if i in scored else ("FAILED", f"boom {i}") if i in failed else ("PENDING", None)
        assert stored[f"PRE_{i}"] == expected, i


def test_a_naive_timestamp_is_refused_with_the_same_error_on_every_path(db_url: str) -> None:
    engine = get_engine(db_url)
    for count in (2, COPY_THRESHOLD + 1):
        rows = [_model(i) for i in range(count)]
        rows[-1]["last_seen_at"] = datetime(2026, 11, 2, 12)  # no zone
        with pytest.raises(Exception, match="naive datetime 2026-11-02T12:00:00 refused"), engine.begin() as db:
            upsert_rows(db, M, rows, ["id"])
        with engine.connect() as db:
            assert db.execute(select(M.c.id)).all() == []  # nothing of the batch was written


_JSON_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
_JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _JSON_TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_JSON_TEXT, inner, max_size=5),
    max_leaves=30,
)


class _Colour(enum.Enum):
    RED = "red"


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_the_json_rows_store_what_the_per_field_path_stores(db_url: str) -> None:
    """Property: a small upsert (one JSON parameter) and a COPY batch, each written by orjson when
    it can do so exactly, store every JSON column value as the per-field path (SQLAlchemy's
    ``json.dumps``) stores it, compared as Postgres prints the stored ``jsonb``; values only orjson
    would convert (a UUID, an Enum, a tuple, a non-finite float, a datetime) are stored or refused
    as the per-field path does."""
    engine = get_engine(db_url)
    IN = Input.__table__  # type: ignore[attr-defined]
    _model_and_config(engine)
    counter = iter(range(10**9))

    def stored(value: Any, path: str) -> str:
        """``value`` stored by ``path``: ``per_field``, ``json_rows`` (one row) or ``copy`` (a batch
        at the COPY threshold, the value in its first row, the others each with their own value)."""
        row = _input(next(counter), raw_data_jsonb=value)
        with engine.begin() as db:
            if path == "per_field":
                db.execute(IN.insert(), [row])
            elif path == "json_rows":
                assert upsert_rows(db, IN, [row], ["prediction_config_id", "round_at"]) == 1
            else:
                others = [_input(next(counter), raw_data_jsonb={"i": i}) for i in range(COPY_THRESHOLD - 1)]
                assert upsert_rows(db, IN, [row, *others], ["prediction_config_id", "round_at"]) == COPY_THRESHOLD
            return db.execute(text("SELECT raw_data_jsonb::text FROM inputs WHERE id = :i"), {"i": row["id"]}).scalar()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(value=_JSON_VALUE)
    def same(value: Any) -> None:
        assert stored(value, "json_rows") == stored(value, "per_field")

    same()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(value=_JSON_VALUE)
    def same_copied(value: Any) -> None:
        assert stored(value, "copy") == stored(value, "per_field")

    same_copied()

    def outcome(value: Any, path: str) -> str:
        try:
            return stored(value, path)
        except Exception as exc:  # the error the writer gets: the driver's or Python's, under SQLAlchemy's wrapper
            cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
            return f"{type(cause).__name__}: {str(cause).splitlines()[0]}"

    for value in [
        {"id": uuid.UUID(int=7)},
        {"colour": _Colour.RED},
        {"pair": (1, 2.5)},
        {"x": float("nan")},
        {"x": [float("inf")]},
        {"at": T},
        {"big": 10**30},
        {1: "non-text key"},
    ]:
        assert outcome(value, "json_rows") == outcome(value, "per_field"), value
        assert outcome(value, "copy") == outcome(value, "per_field"), value


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_text_array_literal_reads_back_as_its_texts(db_url: str) -> None:
    """Property: ``text_array`` (one bound literal for thousands of ids) reads back on the server
    as exactly its texts, in order: quotes, backslashes, commas, braces, spaces, NULL as a word."""
    from coordinator_core.db.engine import text_array

    engine = get_engine(db_url)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(values=st.lists(_JSON_TEXT | st.sampled_from(['"', "\\", ",", "{}", " a ", "NULL", ""]), max_size=8))
    def same(values: list[str]) -> None:
        with engine.connect() as db:
            back = db.execute(
                text(
                    "SELECT coalesce(array_agg(v ORDER BY n), '{}') FROM unnest(CAST(:a AS varchar[])) WITH ORDINALITY AS u(v, n)"
                ),
                {"a": text_array(values)},
            ).scalar()
        assert back == values

    same()
