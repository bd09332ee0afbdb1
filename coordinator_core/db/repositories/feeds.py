"""Feed records and ingestion watermarks.

A record is *observed* at ``ts_event`` for a tick and at ``ts_event + granularity`` for a candle
(its close); only observed, final records are read, so no price from after a decision leaks into
an input or an entry price.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import BigInteger, bindparam, cast, func, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Connection

from coordinator_core.db.bulk import upsert_rows
from coordinator_core.db.tables import FeedIngestionState, FeedRecord
from coordinator_core.db.types import UTCDateTime
from coordinator_core.feeds.base import FeedScope, SourceRecord, observe_delay
from coordinator_core.ports import PricePair, PriceQuery, StoredRecord

FR: Any = FeedRecord.__table__  # type: ignore[attr-defined]
FS: Any = FeedIngestionState.__table__  # type: ignore[attr-defined]
KEY = ["source", "subject", "kind", "granularity", "ts_event"]
PAGE = 2_000  # price queries per statement
LATEST = (  # built once: a round reads it for every subject
    select(FR.c.id, FR.c.ts_event, FR.c.values_jsonb)
    .where(
        FR.c.source == bindparam("source"),
        FR.c.subject == bindparam("subject"),
        FR.c.kind == bindparam("kind"),
        FR.c.granularity == bindparam("granularity"),
        FR.c.final.is_(True),
        FR.c.ts_event <= bindparam("cutoff", type_=UTCDateTime()),
    )
    .order_by(FR.c.ts_event.desc())
    .limit(bindparam("limit"))
)
_WINDOW = LATEST.subquery("w")
# Postgres: the same rows as ONE JSON array of ``[id, ts_event in epoch microseconds, values]``,
# oldest first: one value to decode instead of a row, a timestamp and a JSON value per record.
# The values are the jsonb text ``json.loads`` decodes either way; the microseconds are exact.
LATEST_JSON = select(
    func.json_agg(
        aggregate_order_by(
            func.json_build_array(
                _WINDOW.c.id,
                cast(func.extract("epoch", _WINDOW.c.ts_event) * 1_000_000, BigInteger),
                _WINDOW.c.values_jsonb,
            ),
            _WINDOW.c.ts_event,
        )
    )
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SqlFeedRepository:
    def __init__(self, db: Connection) -> None:
        self.db = db

    # -- writes -------------------------------------------------------------------------------------
    def upsert_records(self, scope: FeedScope, records: Sequence[SourceRecord], now: datetime) -> int:
        """Upsert on the natural key; a row is rewritten only if its values, meta or finality changed
        (so a re-run writes 0 rows), and a final row is never replaced by a non-final one."""
        unique = list({r.ts_event: r for r in records}.values())  # one row per key: the last wins
        rows = [
            {
                "source": scope.source,
                "subject": scope.subject,
                "kind": scope.kind,
                "granularity": scope.granularity,
                "ts_event": r.ts_event,
                "ts_ingested": now,
                "final": r.final,
                "values_jsonb": r.values,
                "meta_jsonb": r.meta,
            }
            for r in unique
        ]
        return upsert_rows(
            self.db,
            FR,
            rows,
            KEY,
            update=["values_jsonb", "meta_jsonb", "final"],
            refresh=("ts_ingested",),
            guard="final_wins",
        )

    def advance_watermark(self, scope: FeedScope, newest: datetime | None, now: datetime, phase: str) -> None:
        """The newest final record of the scope, only ever moving forward."""
        current = self.db.execute(select(FS.c.last_event_ts).where(FS.c.id == scope.key)).first()
        if current is None:
            self.db.execute(
                FS.insert().values(
                    id=scope.key,
                    source=scope.source,
                    subject=scope.subject,
                    kind=scope.kind,
                    granularity=scope.granularity,
                    last_event_ts=newest,
                    updated_at=now,
                    meta_jsonb={"phase": phase},
                )
            )
        elif newest is not None and (current.last_event_ts is None or newest > current.last_event_ts):
            self.db.execute(
                FS.update()
                .where(FS.c.id == scope.key)
                .values(last_event_ts=newest, updated_at=now, meta_jsonb={"phase": phase})
            )

    def prune(self, cutoff: datetime, batch: int) -> int:
        ids = list(self.db.execute(select(FR.c.id).where(FR.c.ts_event < cutoff).limit(batch)).scalars())
        if ids:
            self.db.execute(FR.delete().where(FR.c.id.in_(ids)))
        return len(ids)

    # -- reads --------------------------------------------------------------------------------------
    def watermark(self, scope: FeedScope) -> datetime | None:
        return self.db.execute(select(FS.c.last_event_ts).where(FS.c.id == scope.key)).scalar()

    def count(self) -> int:
        from sqlalchemy import func

        return int(self.db.execute(select(func.count()).select_from(FR)).scalar() or 0)

    def stored_times(self, scope: FeedScope, start: datetime, end: datetime) -> set[datetime]:
        return set(
            self.db.execute(
                select(FR.c.ts_event).where(*_scoped(scope), FR.c.ts_event >= start, FR.c.ts_event <= end)
            ).scalars()
        )

    def latest_records(self, scope: FeedScope, as_of: datetime, limit: int) -> list[StoredRecord]:
        """The newest ``limit`` final records observed at or before ``as_of``, oldest first (on
        Postgres read as one JSON array, ``LATEST_JSON``)."""
        params = {
            "source": scope.source,
            "subject": scope.subject,
            "kind": scope.kind,
            "granularity": scope.granularity,
            "cutoff": as_of - observe_delay(scope),
            "limit": limit,
        }
        if self.db.dialect.name == "postgresql":
            window = self.db.execute(LATEST_JSON, params).scalar() or []
            return [StoredRecord(i, EPOCH + timedelta(microseconds=us), values) for i, us, values in window]
        rows = self.db.execute(LATEST, params).all()
        return [StoredRecord(r.id, r.ts_event, r.values_jsonb) for r in reversed(rows)]

    def records_between(self, scope: FeedScope, start: datetime, as_of: datetime) -> list[StoredRecord]:
        """Final records with ``ts_event >= start`` observed at or before ``as_of``, oldest first."""
        rows = self.db.execute(
            select(FR.c.id, FR.c.ts_event, FR.c.values_jsonb)
            .where(
                *_scoped(scope),
                FR.c.final.is_(True),
                FR.c.ts_event >= start,
                FR.c.ts_event <= as_of - observe_delay(scope),
            )
            .order_by(FR.c.ts_event)
        ).all()
        return [StoredRecord(r.id, r.ts_event, r.values_jsonb) for r in rows]

    def price_pairs(self, queries: Sequence[PriceQuery]) -> dict[str, PricePair]:
        """For each query, the newest final record observed at or before its entry time and at or
        before its exit time: one statement per ``PAGE`` queries (a LATERAL join on Postgres; on
        SQLite correlated subqueries and one lookup of the records by id)."""
        out: dict[str, PricePair] = {}
        for offset in range(0, len(queries), PAGE):
            out.update(self._price_page(list(queries[offset : offset + PAGE])))
        return out

    def _price_page(self, queries: list[PriceQuery]) -> dict[str, PricePair]:
        if not queries:
            return {}
        if self.db.dialect.name == "postgresql":
            rows = [
                {
                    "k": q.key,
                    "source": q.scope.source,
                    "subject": q.scope.subject,
                    "kind": q.scope.kind,
                    "granularity": q.scope.granularity,
                    "e": (q.entry_at - delay).astimezone(UTC).isoformat(),
                    "x": (q.exit_at - delay).astimezone(UTC).isoformat(),
                }
                for q in queries
                for delay in [observe_delay(q.scope)]
            ]
            result = self.db.execute(PRICE_PAIRS, {"q": orjson.dumps(rows).decode()}).all()
            return {
                r.k: PricePair(
                    StoredRecord(r.eid, r.ets, r.ev) if r.eid is not None else None,
                    StoredRecord(r.xid, r.xts, r.xv) if r.xid is not None else None,
                    bool(r.later),
                )
                for r in result
            }
        params: dict[str, Any] = {}
        rows_sql = []
        binds = []
        for i, q in enumerate(queries):
            delay = observe_delay(q.scope)
            params.update(
                {
                    f"k{i}": q.key,
                    f"s{i}": q.scope.source,
                    f"u{i}": q.scope.subject,
                    f"d{i}": q.scope.kind,
                    f"g{i}": q.scope.granularity,
                    f"e{i}": q.entry_at - delay,
                    f"x{i}": q.exit_at - delay,
                }
            )
            binds += [bindparam(f"e{i}", type_=UTCDateTime()), bindparam(f"x{i}", type_=UTCDateTime())]
            rows_sql.append(f"(:k{i}, :s{i}, :u{i}, :d{i}, :g{i}, :e{i}, :x{i})")
        values = ", ".join(rows_sql)
        match = _PRICE_MATCH.replace("AND f.final", "AND f.final = 1")
        sql = (
            f"WITH q(k, source, subject, kind, granularity, e, x) AS (VALUES {values}) SELECT q.k, "
            f"(SELECT f.id FROM feed_records f WHERE {match} AND f.ts_event <= q.e ORDER BY f.ts_event DESC LIMIT 1), "
            f"(SELECT f.id FROM feed_records f WHERE {match} AND f.ts_event <= q.x ORDER BY f.ts_event DESC LIMIT 1), "
            f"EXISTS (SELECT 1 FROM feed_records f WHERE {match} AND f.ts_event > q.x) "
            "FROM q"
        )
        pairs = self.db.execute(text(sql).bindparams(*binds), params).all()
        ids = {i for _, e, x, _ in pairs for i in (e, x) if i is not None}
        records = (
            {
                r.id: StoredRecord(r.id, r.ts_event, r.values_jsonb)
                for r in self.db.execute(
                    select(FR.c.id, FR.c.ts_event, FR.c.values_jsonb).where(FR.c.id.in_(ids))
                ).all()
            }
            if ids
            else {}
        )
        return {
            k: PricePair(records.get(e) if e is not None else None, records.get(x) if x is not None else None, bool(lt))
            for k, e, x, lt in pairs
        }


_PRICE_MATCH = (
    "f.source = q.source AND f.subject = q.subject AND f.kind = q.kind AND f.granularity = q.granularity AND f.final"
)
PRICE_PAIRS = (
    text(
        # the queries as one jsonb recordset: one cached statement whatever their number (as VALUES
        # rows, 7 parameters each, the statement was built and parsed anew for every page). Whether
        # a later record exists is the first one's time, not an EXISTS: the planner ran that one as a
        # sequential scan from the oldest record, for each query (1 ms each with 10,000 records).
        "WITH q AS (SELECT * FROM jsonb_to_recordset(CAST(:q AS jsonb)) AS q(k text, source text, subject text, "
        "kind text, granularity text, e timestamptz, x timestamptz)) "
        "SELECT q.k, en.id AS eid, en.ts_event AS ets, en.values_jsonb AS ev, "
        "ex.id AS xid, ex.ts_event AS xts, ex.values_jsonb AS xv, "
        f"(SELECT f.ts_event FROM feed_records f WHERE {_PRICE_MATCH} AND f.ts_event > q.x "
        "ORDER BY f.ts_event LIMIT 1) IS NOT NULL AS later FROM q "
        f"LEFT JOIN LATERAL (SELECT f.id, f.ts_event, f.values_jsonb FROM feed_records f WHERE {_PRICE_MATCH} "
        "AND f.ts_event <= q.e ORDER BY f.ts_event DESC LIMIT 1) en ON true "
        f"LEFT JOIN LATERAL (SELECT f.id, f.ts_event, f.values_jsonb FROM feed_records f WHERE {_PRICE_MATCH} "
        "AND f.ts_event <= q.x ORDER BY f.ts_event DESC LIMIT 1) ex ON true"
    )
    .bindparams(bindparam("q"))
    .columns(ets=UTCDateTime(), xts=UTCDateTime())
)


def _scoped(scope: FeedScope) -> list[Any]:
    return [
        FR.c.source == scope.source,
        FR.c.subject == scope.subject,
        FR.c.kind == scope.kind,
        FR.c.granularity == scope.granularity,
    ]
