"""Speed figures of the core services (printed, never asserted). ``make bench``.

* ingest: 30 days of synthetic 1-minute candles (43,200 rows), then the same again (0 rows);
* backfill: 30 days of 1-minute candles (43,200 rows) from the local Binance double over real
  HTTP, then the same range again (0 rows written);
* backtest: 14 days of the shipped data, 6 example models, services only (no Prefect), and the
  cost split per service; on SQLite and, when reachable, on the Postgres at 127.0.0.1:5432.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from coordinator_core.bootstrap import build_runtime
from coordinator_core.db.engine import get_engine
from coordinator_core.db.migrate import upgrade
from coordinator_core.services import backtest, checkpoint, ingest, predict, score

PROJECT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def fresh_sqlite() -> str:
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(url)
    return url


# a schema of this run's own, dropped at the end: two benchmarks can run at once on one server
SCHEMA = f"bench_{os.getpid()}_{int(time.time())}"


def fresh_postgres() -> str | None:
    try:
        with get_engine(POSTGRES).begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    except Exception:
        return None
    url = POSTGRES + f"?options=-csearch_path%3D{SCHEMA}"
    upgrade(url)
    return url


def drop_postgres() -> None:
    with get_engine(POSTGRES).begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))


def bench_ingest(url: str) -> None:
    runtime = build_runtime(database_url=url, feed_source="synthetic", feed_granularity="1m")
    scope = ingest.feed_scopes(runtime.settings)[0]
    end = datetime(2026, 11, 1, tzinfo=UTC)
    records = runtime.source.fetch(scope, end - timedelta(days=30), end - timedelta(minutes=1))
    started = time.perf_counter()
    written = ingest.upsert_records(runtime.uow, scope, records, end)
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = ingest.upsert_records(runtime.uow, scope, records, end)
    second = time.perf_counter() - started
    print(
        f"  ingest 30 d of 1m candles: {written:,} rows in {first:.2f} s ({written / first:,.0f} rows/s); "
        f"re-run wrote {again} rows in {second:.2f} s"
    )


def bench_binance_backfill(url: str) -> None:
    from coordinator_core.feeds.base import FeedScope
    from coordinator_core.services.backfill import backfill
    from tests.doubles.binance_server import FakeBinance

    end = datetime(2026, 11, 1, tzinfo=UTC)
    with FakeBinance(now_ms=int(end.timestamp() * 1000) + 3_600_000) as fake:
        runtime = build_runtime(
            database_url=url, feed_source="binance", feed_granularity="1m", binance_api_url=fake.url
        )
        scope = FeedScope("binance", "BTC", "candle", "1m")
        start = end - timedelta(days=30)
        last = end - timedelta(minutes=1)
        started = time.perf_counter()
        first = backfill(runtime.uow, runtime.source, scope, start, last, end)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        again = backfill(runtime.uow, runtime.source, scope, start, last, end)
        again_s = time.perf_counter() - started
    print(
        f"  backfill 30 d of 1m klines from the Binance double: {first.written:,} rows, {first.pages} pages "
        f"in {first_s:.2f} s; re-run wrote {again.written} rows in {again_s:.2f} s; gaps left {len(first.gaps)}"
    )


def bench_backtest(url: str) -> None:
    runtime = build_runtime(database_url=url, models_dir=str(PROJECT / "examples" / "models"))
    start, end = backtest.default_window(runtime, 14, datetime.now(UTC))
    backtest.prepare(runtime, start)
    times = list(backtest.virtual_times(start, end, backtest.step_seconds(runtime)))
    spent = dict.fromkeys(("ingest", "predict", "score", "checkpoint"), 0.0)
    counted = {"predictions": 0, "scored": 0}
    started = time.perf_counter()
    for now in times:
        t0 = time.perf_counter()
        ingest.ingest(runtime.uow, runtime.sources, runtime.settings, now)
        t1 = time.perf_counter()
        result = predict.predict_round(runtime.uow, runtime.gateway, runtime.contract, runtime.settings, now)
        t2 = time.perf_counter()
        scored = score.score_predictions(runtime.uow, runtime.contract, runtime.settings, now)
        t3 = time.perf_counter()
        checkpoint.build_checkpoints(runtime.uow, runtime.contract, runtime.settings, now)
        t4 = time.perf_counter()
        spent["ingest"] += t1 - t0
        spent["predict"] += t2 - t1
        spent["score"] += t3 - t2
        spent["checkpoint"] += t4 - t3
        counted["predictions"] += sum(result.statuses.values())
        counted["scored"] += sum(scored.statuses.values())
    total = time.perf_counter() - started
    print(
        f"  backtest 14 d: {len(times)} steps, {counted['predictions']:,} predictions, {counted['scored']:,} "
        f"scored in {total:.1f} s ({len(times) / total:.1f} steps/s)"
    )
    print(
        "    per service: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in spent.items())
        + " (predict includes the models' own time and deadlines)"
    )
    runtime.close()


def main() -> None:
    for name, factory in (("SQLite", fresh_sqlite), ("Postgres", fresh_postgres)):
        url = factory()
        if url is None:
            print(f"{name}: not reachable at {POSTGRES}, skipped")
            continue
        print(f"{name}:")
        try:
            bench_ingest(url)
            bench_binance_backfill(url)
            bench_backtest(url)
        finally:
            if name == "Postgres":
                drop_postgres()


if __name__ == "__main__":
    main()
