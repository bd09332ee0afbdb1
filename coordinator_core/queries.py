"""Read queries of the report API: bounded, indexed, and sharing the score definition.

Every list query is a keyset page: rows strictly after ``after`` (the sort key of the last row of
the previous page) in a fixed total order, at most ``limit + 1`` rows (the extra row only says
that a next page exists). No query reads a whole table: lists are ordered along an index and
limited, aggregates are bounded by a time window or by one scope, lookups are by key.

Scores always come from ``coordinator_core.db.repositories.scores.window_totals`` (Σ value_sum / Σ
prediction_count over snapshots), so the leaderboard, ``/reports/models/global``, the per-model
status and checkpoints agree. The per-scope split (``scope_totals``) applies the same definition
to the scores those snapshots were summed from, with the same period boundaries, so the scopes of
a model add up to its window totals.

Plain SQLAlchemy Core on a ``Session``'s connection; no Prefect, no web framework.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal_column, null, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from coordinator_core.db.repositories.scores import counted_results, window_totals
from coordinator_core.db.tables import (
    Checkpoint,
    FeedIngestionState,
    FeedRecord,
    Input,
    Leaderboard,
    Model,
    Prediction,
    PredictionStatus,
    Score,
    Snapshot,
)
from coordinator_core.domain.windows import WindowTotals, window_score, with_aggregate

PREDICTIONS: Any = Prediction.__table__  # type: ignore[attr-defined]
SCORES: Any = Score.__table__  # type: ignore[attr-defined]
P = PREDICTIONS.c
S = SCORES.c
SN = Snapshot.__table__.c  # type: ignore[attr-defined]
CK = Checkpoint.__table__.c  # type: ignore[attr-defined]
LB = Leaderboard.__table__.c  # type: ignore[attr-defined]
M = Model.__table__.c  # type: ignore[attr-defined]
FR = FeedRecord.__table__.c  # type: ignore[attr-defined]
FS = FeedIngestionState.__table__.c  # type: ignore[attr-defined]
IN = Input.__table__.c  # type: ignore[attr-defined]

FEED_COUNT_CAP = 100_000


@dataclass(frozen=True)
class Page:
    """Rows of one page and the sort key of its last row when another page follows."""

    rows: list[Mapping[str, Any]]
    next_key: tuple[Any, ...] | None


def _page(rows: Sequence[Any], limit: int, key: Any) -> Page:
    items = [r._mapping for r in rows[:limit]]  # read-only mappings: no copy per row
    more = len(rows) > limit
    return Page(items, key(items[-1]) if more and items else None)


def after_key(columns: Sequence[Any], values: Sequence[Any], descending: bool) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``columns`` (all ascending or all descending).

    Written as ``c1 <= v1 AND (c1 < v1 OR (c1 = v1 AND c2 < v2))`` rather than a row comparison,
    so both backends use an index whose leading column is ``c1``.
    """
    first, value = columns[0], values[0]
    if len(columns) == 1:
        return first < value if descending else first > value
    rest = after_key(columns[1:], values[1:], descending)
    strict = first < value if descending else first > value
    bound = first <= value if descending else first >= value
    return and_(bound, or_(strict, and_(first == value, rest)))


def _ordered(query: Any, columns: Sequence[Any], descending: bool) -> Any:
    return query.order_by(*[c.desc() if descending else c.asc() for c in columns])


def _execute(session: Session, query: Any) -> Any:
    return session.connection().execute(query)


# -- time ------------------------------------------------------------------------------------------
def latest_leaderboard_time(session: Session) -> datetime | None:
    """``created_at`` (the as-of time) of the newest stored leaderboard."""
    return _execute(session, select(LB.created_at).order_by(LB.created_at.desc()).limit(1)).scalar()


# -- leaderboards ----------------------------------------------------------------------------------
def has_row_versions(session: Session) -> bool:
    """Whether rows carry a version that changes on every write (Postgres ``xmin``)."""
    return session.get_bind().dialect.name == "postgresql"


def _row_version(session: Session) -> Any:
    """A column that changes whenever a row is written: Postgres ``xmin``; none on SQLite."""
    if has_row_versions(session):
        return literal_column("xmin::text").label("version")
    return null().label("version")


def latest_leaderboard(session: Session) -> dict[str, Any] | None:
    row = _execute(
        session,
        select(LB.id, LB.created_at, LB.entries_jsonb, LB.meta_jsonb, _row_version(session))
        .order_by(LB.created_at.desc())
        .limit(1),
    ).first()
    return dict(row._mapping) if row else None


def leaderboard_head(session: Session, leaderboard_id: str | None = None) -> dict[str, Any] | None:
    """``id``, ``created_at`` and ``version`` (changes with every write of the row; ``None`` where the
    backend has no such column) of the latest leaderboard, or of ``leaderboard_id``, without its entries."""
    query = select(LB.id, LB.created_at, _row_version(session))
    query = query.where(LB.id == leaderboard_id) if leaderboard_id else query.order_by(LB.created_at.desc()).limit(1)
    row = _execute(session, query).first()
    return dict(row._mapping) if row else None


def leaderboard_by_id(session: Session, leaderboard_id: str) -> dict[str, Any] | None:
    row = _execute(
        session,
        select(LB.id, LB.created_at, LB.entries_jsonb, LB.meta_jsonb, _row_version(session)).where(
            LB.id == leaderboard_id
        ),
    ).first()
    return dict(row._mapping) if row else None


# -- models ----------------------------------------------------------------------------------------
MODEL_COLUMNS = (
    M.id,
    M.name,
    M.deployment_identifier,
    M.player_id,
    M.player_name,
    M.wallet,
    M.state,
    M.first_seen_at,
    M.last_seen_at,
    M.last_failure_code,
    M.last_failure_at,
    M.overall_score_jsonb,
    M.created_at,
    M.updated_at,
)


def models_page(
    session: Session,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
    model_ids: Sequence[str] = (),
    states: Sequence[str] = (),
    player_id: str | None = None,
) -> Page:
    query = select(*MODEL_COLUMNS)
    if model_ids:
        query = query.where(M.id.in_(list(model_ids)))
    if states:
        query = query.where(M.state.in_(list(states)))
    if player_id is not None:
        query = query.where(M.player_id == player_id)
    if after is not None:
        query = query.where(after_key([M.id], after, False))
    rows = _execute(session, _ordered(query, [M.id], False).limit(limit + 1)).all()
    return _page(rows, limit, lambda r: (r["id"],))


def get_model(session: Session, model_id: str) -> dict[str, Any] | None:
    row = _execute(session, select(*MODEL_COLUMNS).where(M.id == model_id)).first()
    return dict(row._mapping) if row else None


def models_by_id(session: Session, model_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    ids = sorted(set(model_ids))
    if not ids:
        return {}
    rows = _execute(
        session, select(M.id, M.name, M.player_id, M.player_name, M.state, M.wallet).where(M.id.in_(ids))
    ).all()
    return {r.id: dict(r._mapping) for r in rows}


# -- window scores ---------------------------------------------------------------------------------
def window_scores(
    session: Session,
    windows: dict[str, int],
    as_of: datetime,
    period_seconds: int,
    aggregator: Callable[[list[dict[str, Any]]], Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{window: {model_id: totals}}`` over ``(as_of - hours, as_of]``, the leaderboard's bounds
    and score (``domain.windows``: with a custom aggregator, its ``value``)."""
    return {
        name: _dicts(totals_between(session, as_of - timedelta(hours=hours), as_of, period_seconds, aggregator))
        for name, hours in windows.items()
    }


def period_totals(
    session: Session,
    start: datetime,
    end: datetime,
    period_seconds: int,
    aggregator: Callable[[list[dict[str, Any]]], Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per model over the scores resolved in ``(start, end]`` (a checkpoint's bounds when aligned)."""
    return _dicts(totals_between(session, start, end, period_seconds, aggregator))


def totals_between(
    session: Session,
    since: datetime,
    until: datetime,
    period_seconds: int,
    aggregator: Callable[[list[dict[str, Any]]], Mapping[str, Any]] | None,
) -> dict[str, WindowTotals]:
    totals = window_totals(session, since, until, period_seconds)
    if aggregator is None or not totals:
        return totals
    return with_aggregate(totals, counted_results(session, since, until), aggregator)


def _dicts(totals: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {model_id: t.as_dict() for model_id, t in totals.items()}


def last_performed_at(session: Session, model_ids: Sequence[str], until: datetime | None = None) -> dict[str, datetime]:
    """Newest ``performed_at`` per model: one correlated ``max`` per model on ``(model_id, performed_at)``."""
    if not model_ids:
        return {}
    inner = select(func.max(P.performed_at)).where(P.model_id == M.id)
    if until is not None:
        inner = inner.where(P.performed_at <= until)
    rows = _execute(
        session, select(M.id, inner.scalar_subquery().label("performed_at")).where(M.id.in_(list(model_ids)))
    ).all()
    return {r.id: r.performed_at for r in rows if r.performed_at is not None}


def scope_totals(
    session: Session, model_ids: Sequence[str], ranges: dict[str, tuple[datetime, datetime]]
) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """Per ``(model_id, scope_key)`` and per named ``scored_at`` range ``(lo, hi]``: the snapshot columns
    (value_sum, prediction_count, scored/failed/absent counts) and ``score``, summed from scores.

    One GROUP BY over the scores of ``model_ids`` in the widest range (index on
    ``(model_id, scored_at)``), joined to predictions by key for the scope.
    """
    if not model_ids or not ranges:
        return {}
    low = min(r[0] for r in ranges.values())
    high = max(r[1] for r in ranges.values())
    columns: list[Any] = [S.model_id, P.scope_key]
    for index, (lo, hi) in enumerate(ranges.values()):
        inside = and_(S.scored_at > lo, S.scored_at <= hi)
        columns += [
            func.sum(case((inside, S.value), else_=0.0)).label(f"v{index}"),
            func.sum(case((inside, 1), else_=0)).label(f"n{index}"),
            func.sum(case((and_(inside, S.success.is_(True)), 1), else_=0)).label(f"s{index}"),
            func.sum(case((and_(inside, S.prediction_status == PredictionStatus.FAILED.value), 1), else_=0)).label(
                f"f{index}"
            ),
            func.sum(case((and_(inside, S.prediction_status == PredictionStatus.ABSENT.value), 1), else_=0)).label(
                f"a{index}"
            ),
        ]
    query = (
        select(*columns)
        .select_from(SCORES.join(PREDICTIONS, P.id == S.prediction_id))
        .where(S.model_id.in_(list(model_ids)), S.scored_at > low, S.scored_at <= high)
        .group_by(S.model_id, P.scope_key)
    )
    out: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in _execute(session, query).all():
        m = row._mapping
        per_range = {}
        for index, name in enumerate(ranges):
            value_sum, count = float(m[f"v{index}"] or 0.0), int(m[f"n{index}"] or 0)
            per_range[name] = {
                "value_sum": value_sum,
                "prediction_count": count,
                "scored_count": int(m[f"s{index}"] or 0),
                "failed_count": int(m[f"f{index}"] or 0),
                "absent_count": int(m[f"a{index}"] or 0),
                "score": window_score(value_sum, count),
            }
        out[(m["model_id"], m["scope_key"])] = per_range
    return out


def latest_scope_prediction(
    session: Session, model_id: str, scope_key: str, until: datetime | None = None
) -> dict[str, Any] | None:
    """The newest prediction of a model for one scope key (index ``(model_id, performed_at)``)."""
    query = select(P.performed_at, P.scope_jsonb).where(P.model_id == model_id, P.scope_key == scope_key)
    if until is not None:
        query = query.where(P.performed_at <= until)
    row = _execute(session, query.order_by(P.performed_at.desc()).limit(1)).first()
    return dict(row._mapping) if row else None


# -- predictions -----------------------------------------------------------------------------------
PREDICTION_COLUMNS = (
    P.id,
    P.input_id,
    P.model_id,
    P.prediction_config_id,
    P.scope_key,
    P.scope_jsonb,
    P.status,
    P.runner_status,
    P.failed_reason,
    P.exec_time_ms,
    P.inference_output_jsonb,
    P.performed_at,
    P.resolvable_at,
    S.value.label("score_value"),
    S.success.label("score_success"),
    S.failed_reason.label("score_failed_reason"),
    S.prediction_status.label("score_prediction_status"),
    S.scored_at,
)


def predictions_page(
    session: Session,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
    descending: bool = True,
    model_ids: Sequence[str] = (),
    statuses: Sequence[str] = (),
    scope_keys: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
) -> Page:
    """Predictions with their score (if any), ordered by ``(performed_at, id)``."""
    query = select(*PREDICTION_COLUMNS).select_from(PREDICTIONS.outerjoin(SCORES, S.prediction_id == P.id))
    if model_ids:
        query = (
            query.where(P.model_id == model_ids[0])
            if len(model_ids) == 1
            else query.where(P.model_id.in_(list(model_ids)))
        )
    if statuses:
        query = query.where(P.status.in_(list(statuses)))
    if scope_keys:
        query = query.where(P.scope_key.in_(list(scope_keys)))
    if start is not None:
        query = query.where(P.performed_at >= start)
    if end is not None:
        query = query.where(P.performed_at <= end)
    order = [P.performed_at, P.id]
    if after is not None:
        query = query.where(after_key(order, after, descending))
    rows = _execute(session, _ordered(query, order, descending).limit(limit + 1)).all()
    return _page(rows, limit, lambda r: (r["performed_at"], r["id"]))


def recent_predictions(
    session: Session, model_id: str, limit: int, until: datetime | None = None
) -> list[dict[str, Any]]:
    """The newest ``limit`` predictions of one model (index ``(model_id, performed_at)``)."""
    query = select(
        P.id,
        P.input_id,
        P.scope_key,
        P.status,
        P.runner_status,
        P.failed_reason,
        P.exec_time_ms,
        P.performed_at,
        P.resolvable_at,
    ).where(P.model_id == model_id)
    if until is not None:
        query = query.where(P.performed_at <= until)
    rows = _execute(session, query.order_by(P.performed_at.desc(), P.id.desc()).limit(limit)).all()
    return [dict(r._mapping) for r in rows]


def input_round(session: Session, input_id: str) -> dict[str, Any] | None:
    row = _execute(session, select(IN.id, IN.round_at, IN.status, IN.resolvable_at).where(IN.id == input_id)).first()
    return dict(row._mapping) if row else None


# -- feeds -----------------------------------------------------------------------------------------
def feed_states_page(
    session: Session,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
    source: str | None = None,
    subject: str | None = None,
    kind: str | None = None,
    granularity: str | None = None,
) -> Page:
    query = select(
        FS.id, FS.source, FS.subject, FS.kind, FS.granularity, FS.last_event_ts, FS.updated_at, FS.meta_jsonb
    )
    for column, value in ((FS.source, source), (FS.subject, subject), (FS.kind, kind), (FS.granularity, granularity)):
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        query = query.where(after_key([FS.id], after, False))
    rows = _execute(session, _ordered(query, [FS.id], False).limit(limit + 1)).all()
    return _page(rows, limit, lambda r: (r["id"],))


def feed_scope_stats(
    session: Session, source: str, subject: str, kind: str, granularity: str, count_cap: int = FEED_COUNT_CAP
) -> dict[str, Any]:
    """Oldest and newest event and the record count (exact up to ``count_cap``) of one scope;
    three range queries on the unique index ``(source, subject, kind, granularity, ts_event)``."""
    scope = and_(FR.source == source, FR.subject == subject, FR.kind == kind, FR.granularity == granularity)
    oldest = _execute(session, select(FR.ts_event).where(scope).order_by(FR.ts_event.asc()).limit(1)).scalar()
    newest = _execute(session, select(FR.ts_event).where(scope).order_by(FR.ts_event.desc()).limit(1)).scalar()
    capped = select(FR.id).where(scope).limit(count_cap + 1).subquery()
    count = int(_execute(session, select(func.count()).select_from(capped)).scalar() or 0)
    return {
        "oldest_ts": oldest,
        "newest_ts": newest,
        "record_count": min(count, count_cap),
        "record_count_capped": count > count_cap,
    }


def feed_tail_page(
    session: Session,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
    source: str | None = None,
    subject: str | None = None,
    kind: str | None = None,
    granularity: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page:
    """Feed records newest first, ordered by ``(ts_event, id)``."""
    query = select(
        FR.id,
        FR.source,
        FR.subject,
        FR.kind,
        FR.granularity,
        FR.ts_event,
        FR.ts_ingested,
        FR.final,
        FR.values_jsonb,
        FR.meta_jsonb,
    )
    for column, value in ((FR.source, source), (FR.subject, subject), (FR.kind, kind), (FR.granularity, granularity)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(FR.ts_event >= since)
    if until is not None:
        query = query.where(FR.ts_event <= until)
    order = [FR.ts_event, FR.id]
    if after is not None:
        query = query.where(after_key(order, after, True))
    rows = _execute(session, _ordered(query, order, True).limit(limit + 1)).all()
    return _page(rows, limit, lambda r: (r["ts_event"], r["id"]))


# -- snapshots -------------------------------------------------------------------------------------
def snapshots_page(
    session: Session,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
    model_ids: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page:
    """Snapshots newest first, ordered by ``(period_end, id)``; ``since`` bounds ``period_end``
    from below and ``until`` bounds ``period_start`` from above (both inclusive)."""
    query = select(
        SN.id,
        SN.model_id,
        SN.period_start,
        SN.period_end,
        SN.prediction_count,
        SN.scored_count,
        SN.failed_count,
        SN.absent_count,
        SN.value_sum,
        SN.result_summary_jsonb,
        SN.created_at,
        SN.updated_at,
    )
    if model_ids:
        query = query.where(SN.model_id.in_(list(model_ids)))
    if since is not None:
        query = query.where(SN.period_end >= since)
    if until is not None:
        query = query.where(SN.period_start <= until)
    order = [SN.period_end, SN.id]
    if after is not None:
        query = query.where(after_key(order, after, True))
    rows = _execute(session, _ordered(query, order, True).limit(limit + 1)).all()
    return _page(rows, limit, lambda r: (r["period_end"], r["id"]))


# -- checkpoints -----------------------------------------------------------------------------------
CHECKPOINT_COLUMNS = (
    CK.id,
    CK.period_start,
    CK.period_end,
    CK.status,
    CK.entries_jsonb,
    CK.meta_jsonb,
    CK.created_at,
    CK.tx_hash,
    CK.submitted_at,
    CK.merkle_root,
    CK.gate_jsonb,
)


def checkpoints_page(
    session: Session,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
    statuses: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page:
    """Checkpoints newest first by ``period_end`` (unique); ``since``/``until`` bound ``period_end``."""
    query = select(*CHECKPOINT_COLUMNS)
    if statuses:
        query = query.where(CK.status.in_(list(statuses)))
    if since is not None:
        query = query.where(CK.period_end >= since)
    if until is not None:
        query = query.where(CK.period_end <= until)
    if after is not None:
        query = query.where(after_key([CK.period_end], after, True))
    rows = _execute(session, query.order_by(CK.period_end.desc()).limit(limit + 1)).all()
    return _page(rows, limit, lambda r: (r["period_end"],))


def get_checkpoint(session: Session, checkpoint_id: str) -> dict[str, Any] | None:
    row = _execute(session, select(*CHECKPOINT_COLUMNS, _row_version(session)).where(CK.id == checkpoint_id)).first()
    return dict(row._mapping) if row else None


def checkpoint_version(session: Session, checkpoint_id: str) -> tuple[bool, str | None]:
    """``(exists, version)`` of one checkpoint by key, without its documents (version: see
    ``leaderboard_head``)."""
    row = _execute(session, select(CK.id, _row_version(session)).where(CK.id == checkpoint_id)).first()
    return (row is not None, row.version if row is not None else None)


def latest_checkpoint(session: Session) -> dict[str, Any] | None:
    row = _execute(session, select(*CHECKPOINT_COLUMNS).order_by(CK.period_end.desc()).limit(1)).first()
    return dict(row._mapping) if row else None
