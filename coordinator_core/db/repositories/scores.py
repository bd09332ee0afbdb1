"""Scores, snapshots and the work owed to them (``derived_dirty``).

Snapshots are derived: per model and per snapshot period, the counts and the sum of the counted
score values of the scores whose ``scored_at`` falls in the period, plus a summary of the
successful results (``MODEL_SCORE_AGGREGATOR``). They are rebuilt from the scores, never
incremented, so rebuilding twice gives the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Float, Integer, Text, and_, case, cast, func, literal, literal_column, or_, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from coordinator_core.db.bulk import upsert_rows
from coordinator_core.db.engine import dialect_insert
from coordinator_core.db.tables import DerivedDirty, PredictionStatus, Score, Snapshot
from coordinator_core.domain.periods import aligned, period_end, period_start
from coordinator_core.domain.scoring import ScoreRow
from coordinator_core.domain.windows import WindowTotals
from coordinator_core.ports import Aggregator, SnapshotRow

S: Any = Score.__table__  # type: ignore[attr-defined]
SN: Any = Snapshot.__table__  # type: ignore[attr-defined]
DD: Any = DerivedDirty.__table__  # type: ignore[attr-defined]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FOLDED_KEYS = 32  # result keys the default summary folds into the counts' scan; more: one row per key
SNAPSHOT_COLUMNS = [
    "prediction_count",
    "scored_count",
    "failed_count",
    "absent_count",
    "value_sum",
    "result_summary_jsonb",
    "updated_at",
]


class SqlScoreRepository:
    def __init__(self, db: Connection) -> None:
        self.db = db
        self.dialect = db.dialect.name

    # -- scores -------------------------------------------------------------------------------------
    def add(self, rows: Sequence[ScoreRow]) -> int:
        """Insert score rows (one per prediction; an existing one is kept). Returns rows inserted."""
        return upsert_rows(
            self.db,
            S,
            [
                {
                    "id": r.id,
                    "prediction_id": r.prediction_id,
                    "model_id": r.model_id,
                    "input_id": r.input_id,
                    "prediction_status": r.prediction_status,
                    "value": r.value,
                    "success": r.success,
                    "failed_reason": r.failed_reason,
                    "result_jsonb": dict(r.result),
                    "scored_at": r.scored_at,
                }
                for r in rows
            ],
            ["prediction_id"],
        )

    # -- work owed ----------------------------------------------------------------------------------
    def mark_dirty(self, kind: str, periods: Sequence[datetime], owed_at: datetime) -> None:
        """Owe the work of ``kind`` for each of ``periods``, incurred at ``owed_at`` (one statement);
        work owed already keeps the earlier of the two times (NULL, owed before revision 0005,
        stays NULL)."""
        rows = [{"kind": kind, "period_start": p, "owed_at": owed_at} for p in sorted(set(periods))]
        if not rows:
            return
        stmt = dialect_insert(self.dialect)(DD)
        stmt = stmt.on_conflict_do_update(
            index_elements=["kind", "period_start"],
            set_={"owed_at": stmt.excluded.owed_at},
            where=stmt.excluded.owed_at < DD.c.owed_at,
        )
        self.db.execute(stmt, rows)

    def dirty(self, kind: str, until: datetime) -> list[datetime]:
        """The periods of ``kind`` whose work is owed at or before ``until`` (or since before
        revision 0005): what a refresh at ``until`` does. Work owed later is left for a refresh at
        or after the time it was owed."""
        query = select(DD.c.period_start).where(DD.c.kind == kind, or_(DD.c.owed_at.is_(None), DD.c.owed_at <= until))
        return list(self.db.execute(query.order_by(DD.c.period_start)).scalars())

    def clear_dirty(self, kind: str, periods: Sequence[datetime]) -> None:
        for offset in range(0, len(periods), 1_000):
            self.db.execute(
                DD.delete().where(DD.c.kind == kind, DD.c.period_start.in_(list(periods[offset : offset + 1_000])))
            )

    # -- snapshots ----------------------------------------------------------------------------------
    def rebuild_snapshots(
        self, periods: Sequence[datetime], period_seconds: int, aggregator: Aggregator | None, now: datetime
    ) -> int:
        """Rebuild every model's snapshot of each period in ``periods`` (period starts) from the
        scores: one ``GROUP BY`` for the counts and, for the default aggregator (``None``: the mean
        of every numeric key of the successful results), one for the summary; a custom aggregator
        gets each model's successful results of the period in prediction order. Returns rows
        written (an unchanged snapshot is not rewritten)."""
        wanted = sorted(set(periods))
        if not wanted:
            return 0
        bucket = self._bucket(period_seconds)
        inside = self._ranges(wanted, period_seconds)
        counted = [
            func.count(),
            func.sum(S.c.value),
            func.sum(case((S.c.success.is_(True), 1), else_=0)),
            func.sum(case((S.c.prediction_status == PredictionStatus.FAILED.value, 1), else_=0)),
            func.sum(case((S.c.prediction_status == PredictionStatus.ABSENT.value, 1), else_=0)),
        ]
        keys = self._result_keys(inside) if aggregator is None and self.dialect == "postgresql" else None
        # with ``keys``, the default summary in the same scan as the counts: per key, the mean of
        # the successful results where it is a number (``_summaries``' rule, without unpacking
        # every result into rows: a third of the time at a million scores)
        means = [
            func.avg(
                case(
                    (
                        and_(
                            S.c.success.is_(True),
                            func.jsonb_typeof(S.c.result_jsonb.op("->")(literal(k))) == "number",
                        ),
                        cast(S.c.result_jsonb.op("->>")(literal(k)), Float),
                    )
                )
            )
            for k in keys or []
        ]
        found = self.db.execute(
            select(S.c.model_id, bucket.label("bucket"), *counted, *means).where(inside).group_by(S.c.model_id, bucket)
        ).all()
        counts = [(row[0], self._index(row[1], period_seconds), *row[2:7]) for row in found]
        if keys is None:
            summaries = self._summaries(inside, bucket, aggregator, period_seconds)
        else:
            summaries = {}
            for (model_id, index, *_), row in zip(counts, found, strict=True):
                summary = {k: float(v) for k, v in zip(keys, row[7:], strict=True) if v is not None}
                if summary:
                    summaries[(model_id, index)] = summary
        rows = []
        for model_id, index, count, value_sum, scored, failed, absent in counts:
            start = datetime.fromtimestamp(index * period_seconds, UTC)
            rows.append(
                {
                    "id": f"SNAP_{model_id}_{start:%Y%m%dT%H%M%S}",
                    "model_id": model_id,
                    "period_start": start,
                    "period_end": start + timedelta(seconds=period_seconds),
                    "prediction_count": int(count),
                    "scored_count": int(scored or 0),
                    "failed_count": int(failed or 0),
                    "absent_count": int(absent or 0),
                    "value_sum": float(value_sum or 0.0),
                    "result_summary_jsonb": summaries.get((model_id, index), {}),
                    "meta_jsonb": {},
                    "created_at": now,
                    "updated_at": now,
                }
            )
        return upsert_rows(self.db, SN, rows, ["model_id", "period_start"], update=SNAPSHOT_COLUMNS)

    def _bucket(self, period_seconds: int) -> Any:
        """The period ``(k P, (k + 1) P]`` holding ``scored_at`` (``domain.periods``), as SQL: on
        Postgres its start ``k P`` (``date_bin`` of the microsecond before: integer arithmetic on
        the timestamp, where ``ceil(epoch / P)`` took numeric arithmetic for each score); on
        SQLite its index ``k`` (integer arithmetic on the stored text). ``_index`` reads either."""
        if self.dialect == "postgresql":
            return func.date_bin(
                func.make_interval(0, 0, 0, 0, 0, 0, literal(period_seconds, Integer)),
                S.c.scored_at - literal_column("interval '1 microsecond'"),
                literal_column("timestamptz '1970-01-01 00:00:00+00'"),
            )
        # the whole seconds, truncated (strftime rounds a fraction of .9995 or more up, so cut it off)
        seconds = cast(func.strftime("%s", func.substr(S.c.scored_at, 1, 19)), Integer)
        # ceil(t / P) - 1 == floor((ceil(t) - 1) / P): ceil(t) - 1 is the whole seconds when the stored
        # text has a fraction ("YYYY-MM-DD HH:MM:SS.ffffff"), else one less (integer division)
        fraction = func.substr(S.c.scored_at, 21)
        below = case((fraction > "000000", seconds), else_=seconds - 1)
        return below.op("/")(literal(period_seconds, Integer))

    @staticmethod
    def _index(bucket: Any, period_seconds: int) -> int:
        """The period index ``k`` of a ``_bucket`` value (a period start on Postgres: a whole
        multiple of ``P`` seconds since the epoch, so the division is exact)."""
        if isinstance(bucket, datetime):
            return int((bucket - EPOCH) // timedelta(seconds=period_seconds))
        return int(bucket)

    def _result_keys(self, inside: Any) -> list[str] | None:
        """The keys of the successful results of the periods (Postgres), or ``None`` when there
        are more than ``FOLDED_KEYS`` (each is a column of the folded summary)."""
        keys = func.jsonb_object_keys(S.c.result_jsonb).table_valued("key").render_derived(name="k")
        found = self.db.execute(
            select(keys.c.key).distinct().select_from(S.join(keys, true())).where(inside, S.c.success.is_(True))
        ).scalars()
        out = sorted(found)
        return out if len(out) <= FOLDED_KEYS else None

    def _ranges(self, starts: list[datetime], period_seconds: int) -> Any:
        """``scored_at`` inside one of the periods (adjacent periods merged into one range)."""
        period = timedelta(seconds=period_seconds)
        ranges: list[list[datetime]] = []
        for start in starts:
            if ranges and ranges[-1][1] == start:
                ranges[-1][1] = start + period
            else:
                ranges.append([start, start + period])
        return or_(*[and_(S.c.scored_at > lo, S.c.scored_at <= hi) for lo, hi in ranges])

    def _summaries(
        self, inside: Any, bucket: Any, aggregator: Aggregator | None, period_seconds: int
    ) -> dict[tuple[str, int], dict[str, Any]]:
        out: dict[tuple[str, int], dict[str, Any]] = {}
        if aggregator is None:
            if self.dialect == "postgresql":
                pairs = func.jsonb_each(S.c.result_jsonb).table_valued("key", "value")
                mean = func.avg(cast(cast(pairs.c.value, Text), Float))
                numeric = func.jsonb_typeof(pairs.c.value) == "number"
            else:
                pairs = func.json_each(S.c.result_jsonb).table_valued("key", "value", "type")
                mean = func.avg(pairs.c.value)
                numeric = pairs.c.type.in_(["integer", "real"])
            query = (
                select(S.c.model_id, bucket, pairs.c.key, mean)
                .select_from(S.join(pairs, true()))
                .where(inside, S.c.success.is_(True), numeric)
                .group_by(S.c.model_id, bucket, pairs.c.key)
            )
            for model_id, index, key, value in self.db.execute(query).all():
                out.setdefault((model_id, self._index(index, period_seconds)), {})[key] = float(value)
            return out
        results: dict[tuple[str, int], list[dict[str, Any]]] = {}
        rows = self.db.execute(
            select(S.c.model_id, bucket, S.c.result_jsonb)
            .where(inside, S.c.success.is_(True))
            .order_by(S.c.prediction_id)
        ).all()
        for model_id, index, result in rows:
            results.setdefault((model_id, self._index(index, period_seconds)), []).append(result)
        return {key: aggregator(values) for key, values in results.items()}

    # -- reads --------------------------------------------------------------------------------------
    def window_totals(
        self, since: datetime, until: datetime, period_seconds: int | None = None
    ) -> dict[str, WindowTotals]:
        """Per model, the scores resolved in ``(since, until]`` (see ``window_totals``)."""
        return window_totals(self.db, since, until, period_seconds)

    def snapshot_count(self, start: datetime, end: datetime) -> int:
        """Snapshots whose period ends in ``(start, end]``."""
        return int(
            self.db.execute(
                select(func.count()).select_from(SN).where(SN.c.period_end > start, SN.c.period_end <= end)
            ).scalar()
            or 0
        )

    def first_snapshot_start(self) -> datetime | None:
        return self.db.execute(select(func.min(SN.c.period_start))).scalar()

    def snapshots_between(
        self,
        start: datetime,
        end: datetime,
        model_id: str | None = None,
        after: datetime | None = None,
        limit: int | None = None,
    ) -> list[SnapshotRow]:
        """Snapshots ending in ``(start, end]`` (of one model, starting after ``after``), ordered by
        ``(model_id, period_start)`` (index on ``period_end``; per model the unique key)."""
        query = select(
            SN.c.id,
            SN.c.model_id,
            SN.c.period_start,
            SN.c.period_end,
            SN.c.value_sum,
            SN.c.prediction_count,
            SN.c.scored_count,
            SN.c.failed_count,
            SN.c.absent_count,
        ).where(SN.c.period_end > start, SN.c.period_end <= end)
        if model_id is not None:
            query = query.where(SN.c.model_id == model_id)
        if after is not None:
            query = query.where(SN.c.period_start > after)
        query = query.order_by(SN.c.model_id, SN.c.period_start)
        if limit is not None:
            query = query.limit(limit)
        return [
            SnapshotRow(
                r.id,
                r.model_id,
                r.period_start,
                r.period_end,
                WindowTotals(
                    float(r.value_sum),
                    int(r.prediction_count),
                    int(r.scored_count),
                    int(r.failed_count),
                    int(r.absent_count),
                ),
            )
            for r in self.db.execute(query).all()
        ]

    def counted_results(self, lo: datetime, hi: datetime) -> dict[str, list[dict[str, Any]]]:
        """Per model, the results of its scores resolved in ``(lo, hi]`` in ``(scored_at,
        prediction_id)`` order: what a custom aggregator scores a window on (``domain.windows``)."""
        return counted_results(self.db, lo, hi)

    def scores_between(self, lo: datetime, hi: datetime, model_id: str | None = None) -> list[ScoreRow]:
        """Score rows with ``scored_at`` in ``(lo, hi]``, ordered by ``(model_id, prediction_id)``
        (index ``(model_id, scored_at)`` for one model, ``scored_at`` otherwise)."""
        query = select(*SCORE_COLUMNS).where(S.c.scored_at > lo, S.c.scored_at <= hi)
        if model_id is not None:
            query = query.where(S.c.model_id == model_id)
        return [_score_row(r) for r in self.db.execute(query.order_by(S.c.model_id, S.c.prediction_id)).all()]

    def input_ids_between(self, lo: datetime, hi: datetime) -> list[str]:
        """The rounds with a score whose ``scored_at`` is in ``(lo, hi]``, sorted."""
        query = select(S.c.input_id).where(S.c.scored_at > lo, S.c.scored_at <= hi).distinct()
        return sorted(self.db.execute(query).scalars())

    def scores_of(self, prediction_ids: Sequence[str]) -> dict[str, ScoreRow]:
        out: dict[str, ScoreRow] = {}
        ids = sorted(set(prediction_ids))
        for offset in range(0, len(ids), 5_000):
            rows = self.db.execute(select(*SCORE_COLUMNS).where(S.c.prediction_id.in_(ids[offset : offset + 5_000])))
            out.update((r.prediction_id, _score_row(r)) for r in rows.all())
        return out


SCORE_COLUMNS = (
    S.c.prediction_id,
    S.c.model_id,
    S.c.input_id,
    S.c.prediction_status,
    S.c.value,
    S.c.success,
    S.c.failed_reason,
    S.c.result_jsonb,
    S.c.scored_at,
)


def _score_row(r: Any) -> ScoreRow:
    return ScoreRow(
        r.prediction_id,
        r.model_id,
        r.input_id,
        r.prediction_status,
        float(r.value),
        bool(r.success),
        r.failed_reason,
        r.result_jsonb or {},
        r.scored_at,
    )


def window_totals(
    session: Connection | Session, since: datetime, until: datetime, period_seconds: int | None = None
) -> dict[str, WindowTotals]:
    """Per model, the totals of the scores resolved in ``(since, until]`` (``domain.periods``): the
    snapshots whose period overlaps it (``period_end > since`` and ``period_start < until``), one
    indexed GROUP BY, less the scores of the two edge periods that fall outside when ``since`` or
    ``until`` is not on a period boundary (``period_seconds``; without it the bounds are taken as
    aligned, as a checkpoint's are)."""
    rows = session.execute(
        select(
            SN.c.model_id,
            func.sum(SN.c.value_sum),
            func.sum(SN.c.prediction_count),
            func.sum(SN.c.scored_count),
            func.sum(SN.c.failed_count),
            func.sum(SN.c.absent_count),
        )
        .where(SN.c.period_end > since, SN.c.period_start < until)
        .group_by(SN.c.model_id)
    ).all()
    totals = {
        model_id: WindowTotals(
            float(value_sum or 0.0), int(count or 0), int(scored or 0), int(failed or 0), int(absent or 0)
        )
        for model_id, value_sum, count, scored, failed, absent in rows
    }
    if period_seconds is None:
        return totals
    outside = []  # the parts of the edge periods outside the window
    if not aligned(since, period_seconds):
        outside.append(and_(S.c.scored_at > period_start(since, period_seconds), S.c.scored_at <= since))
    if not aligned(until, period_seconds):
        outside.append(and_(S.c.scored_at > until, S.c.scored_at <= period_end(until, period_seconds)))
    if not outside:
        return totals
    edges = session.execute(
        select(
            S.c.model_id,
            func.sum(S.c.value),
            func.count(),
            func.sum(case((S.c.success.is_(True), 1), else_=0)),
            func.sum(case((S.c.prediction_status == PredictionStatus.FAILED.value, 1), else_=0)),
            func.sum(case((S.c.prediction_status == PredictionStatus.ABSENT.value, 1), else_=0)),
        )
        .where(or_(*outside))
        .group_by(S.c.model_id)
    ).all()
    for model_id, value_sum, count, scored, failed, absent in edges:
        kept = totals.get(model_id, WindowTotals())
        totals[model_id] = WindowTotals(
            kept.value_sum - float(value_sum or 0.0),
            kept.prediction_count - int(count or 0),
            kept.scored_count - int(scored or 0),
            kept.failed_count - int(failed or 0),
            kept.absent_count - int(absent or 0),
        )
        if totals[model_id].prediction_count == 0:
            del totals[model_id]
    return totals


def counted_results(session: Connection | Session, lo: datetime, hi: datetime) -> dict[str, list[dict[str, Any]]]:
    """See ``SqlScoreRepository.counted_results`` (shared with the read queries)."""
    out: dict[str, list[dict[str, Any]]] = {}
    rows = session.execute(
        select(S.c.model_id, S.c.result_jsonb, S.c.value)
        .where(S.c.scored_at > lo, S.c.scored_at <= hi)
        .order_by(S.c.scored_at, S.c.prediction_id)
    ).all()
    for model_id, result, value in rows:
        out.setdefault(model_id, []).append({**(result or {}), "value": float(value)})
    return out
