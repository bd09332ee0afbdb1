"""Report API latency on a large Postgres database (printed, never asserted).

``python -m benchmarks.api_bench`` (options: ``--help``):

1. creates the database ``api_bench`` on the Postgres server of ``BENCH_POSTGRES_URL`` (default
   ``postgresql+psycopg2://postgres@127.0.0.1:5432/postgres``) and migrates it with alembic
   (``coordinator_core.db.migrate.upgrade``). A database of its own rather than a schema: the
   engine's ``connect_args`` replace any ``options`` given in the URL, so ``search_path`` cannot be
   set there;
2. fills it: 200 models (two per participant), 2 configs, hourly rounds for ~104 days (5,000
   inputs), **1,000,000 predictions** and their scores by ``COPY`` into the bare tables (their keys,
   foreign keys and indexes are dropped for the load and rebuilt from their migrated definitions), snapshots aggregated from the
   scores by one ``INSERT .. SELECT`` (so they agree), the leaderboard built by the real
   ``rebuild_leaderboard`` (plus a week of hourly history), the weekly checkpoints built by the
   real ``build_checkpoints``, the hourly BTC candles and their feed state;
3. starts a real uvicorn server (``api.app:create_app``) on 127.0.0.1 as a subprocess and, for each
   measured request, sends a fixed rate (default 50 req/s for 10 s, after 2 s of warm-up) open-loop
   (requests are started on schedule whether or not earlier ones finished) and prints p50/p90/p99/max.

Measured: the leaderboard (target p99 < 20 ms), a predictions page of one model, a deep page of
one model (by cursor), a checkpoint by id, ``/reports/models/global``, one model's status, and the
unfiltered predictions page — first as the schema is, then with the index that
``ORDER BY performed_at DESC, id DESC LIMIT n`` needs (``--no-index-probe`` skips that part).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg2
from sqlalchemy.engine import make_url

PROJECT = Path(__file__).resolve().parent.parent
SERVER_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
DATABASE = "api_bench"
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
CONFIGS = (("CFG_BTC-3600", "BTC-3600", 3600, 900), ("CFG_BTC-14400", "BTC-14400", 14400, 3600))
READ_KEY = "bench-read-key"
PROPOSED_INDEX = "CREATE INDEX IF NOT EXISTS ix_predictions_performed_at ON predictions (performed_at, id)"


def ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S+00")


def dsn(url: str) -> str:
    parsed = make_url(url)
    parts = [
        f"host={parsed.host or '127.0.0.1'}",
        f"port={parsed.port or 5432}",
        f"dbname={parsed.database}",
        f"user={parsed.username or 'postgres'}",
        "options='-c timezone=UTC'",
    ]
    if parsed.password:
        parts.append(f"password={parsed.password}")
    return " ".join(parts)


def bench_url() -> str:
    return make_url(SERVER_URL).set(database=DATABASE).render_as_string(hide_password=False)


# -- data -------------------------------------------------------------------------------------------
def create_database() -> None:
    connection = psycopg2.connect(dsn(SERVER_URL))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{DATABASE}"')
    connection.close()
    from coordinator_core.db.migrate import upgrade

    upgrade(bench_url())


def secondary_indexes(cursor: Any, table: str) -> list[tuple[str, str]]:
    """``(name, CREATE INDEX ...)`` of the indexes of ``table`` that back no constraint."""
    cursor.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = current_schema() AND i.tablename = %s
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""",
        (table,),
    )
    return list(cursor.fetchall())


def constraints(cursor: Any, tables: tuple[str, ...]) -> list[tuple[str, str, str, str]]:
    """``(table, name, kind, definition)`` of the primary, unique and foreign keys on ``tables`` and of
    the foreign keys pointing at them, foreign keys first (the order to drop them in)."""
    cursor.execute(
        """
        SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        WHERE c.contype IN ('p', 'u', 'f')
          AND (c.conrelid::regclass::text = ANY(%s) OR (c.contype = 'f' AND c.confrelid::regclass::text = ANY(%s)))
        ORDER BY c.contype = 'f' DESC, c.conname""",
        (list(tables), list(tables)),
    )
    seen, out = set(), []
    for row in cursor.fetchall():
        if row[1] not in seen:
            seen.add(row[1])
            out.append(row)
    return out


def copy_rows(cursor: Any, table: str, columns: tuple[str, ...], rows: Iterator[str], batch: int = 100_000) -> int:
    """``COPY table FROM STDIN`` in batches of text-format lines."""
    count = 0
    buffer = io.StringIO()
    for line in rows:
        buffer.write(line)
        count += 1
        if count % batch == 0:
            buffer.seek(0)
            cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
            buffer = io.StringIO()
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
    return count


@dataclass
class Shape:
    models: int
    predictions: int

    @property
    def rounds(self) -> int:  # rounds per config
        return math.ceil(self.predictions / self.models / len(CONFIGS))

    @property
    def end(self) -> datetime:
        return START + timedelta(hours=self.rounds)


def fill(shape: Shape, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    connection = psycopg2.connect(dsn(bench_url()))
    cursor = connection.cursor()
    now = shape.end
    models = [f"m{i:04d}" for i in range(shape.models)]
    skill = {m: rng.uniform(40, 160) for m in models}
    flaky = {m: rng.random() < 0.2 for m in models}
    started = time.perf_counter()
    copy_rows(
        cursor,
        "models",
        (
            "id",
            "name",
            "deployment_identifier",
            "player_id",
            "player_name",
            "wallet",
            "hotkey",
            "state",
            "first_seen_at",
            "last_seen_at",
            "overall_score_jsonb",
            "scores_by_scope_jsonb",
            "meta_jsonb",
            "created_at",
            "updated_at",
        ),
        (
            f"{m}\t{m}\tdep-{m}\tp{i // 2:04d}\tPlayer {i // 2}\t{'W' + format(i // 2, '040x') if i % 4 < 2 else chr(92) + 'N'}"
            f"\t\\N\tRUNNING\t{ts(START)}\t{ts(now)}\t{{}}\t[]\t{{}}\t{ts(START)}\t{ts(now)}\n"
            for i, m in enumerate(models)
        ),
    )
    for config_id, scope_key, horizon, step in CONFIGS:
        cursor.execute(
            "INSERT INTO scheduled_prediction_configs (id, scope_key, scope_template_jsonb, schedule_jsonb, active, "
            '"order", meta_jsonb, updated_at) VALUES (%s, %s, %s, %s, true, 0, %s, %s)',
            (
                config_id,
                scope_key,
                f'{{"subject": "BTC", "horizon_seconds": {horizon}, "step_seconds": {step}}}',
                f'{{"prediction_interval_seconds": 3600, "resolve_after_seconds": {horizon}}}',
                "{}",
                START,
            ),
        )
    price = 60_000.0
    candles = []
    for hour in range(-200, shape.rounds + 6):
        price *= math.exp(rng.gauss(0, 0.006))
        candles.append((START + timedelta(hours=hour), price))
    copy_rows(
        cursor,
        "feed_records",
        ("source", "subject", "kind", "granularity", "ts_event", "ts_ingested", "final", "values_jsonb", "meta_jsonb"),
        (
            f"replay\tBTC\tcandle\t1h\t{ts(t)}\t{ts(t + timedelta(hours=1))}\tt\t"
            f'{{"open": {p:.2f}, "high": {p * 1.002:.2f}, "low": {p * 0.998:.2f}, "close": {p:.2f}, "volume": 12.5}}\t{{}}\n'
            for t, p in candles
        ),
    )
    last = candles[-1][0]
    cursor.execute(
        "INSERT INTO feed_ingestion_state (id, source, subject, kind, granularity, last_event_ts, updated_at,"
        " meta_jsonb) VALUES ('replay:BTC:candle:1h', 'replay', 'BTC', 'candle', '1h', %s, %s, %s)",
        (last, last + timedelta(hours=1), '{"phase": "poll"}'),
    )

    def inputs() -> Iterator[str]:
        for config_id, scope_key, horizon, _ in CONFIGS:
            for r in range(shape.rounds):
                round_at = START + timedelta(hours=r)
                resolvable = round_at + timedelta(seconds=horizon)
                status, resolved = ("RESOLVED", ts(resolvable)) if resolvable <= now else ("RECEIVED", "\\N")
                yield (
                    f"INP_{scope_key}_{round_at:%Y%m%dT%H%M%S}\t{config_id}\t{scope_key}\t{status}\t{ts(round_at)}\t"
                    f"{ts(round_at)}\t{ts(resolvable)}\t{resolved}\t{{}}\t\\N\t"
                    f'{{"subject": "BTC", "horizon_seconds": {horizon}, "scope_key": "{scope_key}"}}\t{{}}\n'
                )

    copy_rows(
        cursor,
        "inputs",
        (
            "id",
            "prediction_config_id",
            "scope_key",
            "status",
            "round_at",
            "received_at",
            "resolvable_at",
            "resolved_at",
            "raw_data_jsonb",
            "actuals_jsonb",
            "scope_jsonb",
            "meta_jsonb",
        ),
        inputs(),
    )
    scores: list[str] = []
    total = 0

    def predictions() -> Iterator[str]:
        nonlocal total
        for r in range(shape.rounds):
            round_at = START + timedelta(hours=r)
            for config_id, scope_key, horizon, step in CONFIGS:
                resolvable = round_at + timedelta(seconds=horizon)
                scored_at = resolvable  # scored as soon as due
                input_id = f"INP_{scope_key}_{round_at:%Y%m%dT%H%M%S}"
                scope = f'{{"subject": "BTC", "horizon_seconds": {horizon}, "step_seconds": {step}, "scope_key": "{scope_key}"}}'
                worst = -250.0
                for m in models:
                    if total >= shape.predictions:
                        return
                    total += 1
                    roll = rng.random()
                    exec_ms = round(rng.lognormvariate(0.0, 0.6), 3)
                    reason = "\\N"
                    if roll < 0.01:
                        status, prefix, exec_ms, reason = "ABSENT", "ABS", 0.0, "model did not answer the round"
                    elif flaky[m] and roll < 0.08:
                        status, prefix, reason = "FAILED", "PRE", "FAILED: RuntimeError: feature pipeline crashed"
                    else:
                        status, prefix = "PENDING", "PRE"
                    prediction_id = f"{prefix}_{m}_{scope_key}_{round_at:%Y%m%dT%H%M%S}"
                    due = scored_at <= now
                    if status == "PENDING" and due:
                        status = "SCORED"
                        value = -abs(rng.gauss(0, skill[m]))
                        scores.append(
                            f"SCR_{prediction_id}\t{prediction_id}\t{m}\t{input_id}\tSCORED\t{value:.6f}\tt\t\\N\t"
                            f'{{"value": {value:.6f}, "success": true, "failed_reason": null}}\t{ts(scored_at)}\n'
                        )
                    elif status != "PENDING" and due:
                        scores.append(
                            f"SCR_{prediction_id}\t{prediction_id}\t{m}\t{input_id}\t{status}\t{worst:.6f}\tf\t"
                            f'{reason}\t{{"value": {worst:.6f}, "success": false}}\t{ts(scored_at)}\n'
                        )
                    output = "{}" if status in ("ABSENT", "FAILED") else f'{{"value": {rng.gauss(0, 0.004):.6f}}}'
                    yield (
                        f"{prediction_id}\t{input_id}\t{m}\t{config_id}\t{scope_key}\t{scope}\t{status}\t"
                        f"{'SUCCESS' if status in ('SCORED', 'PENDING') else chr(92) + 'N'}\t{reason}\t{exec_ms}\t{output}\t"
                        f"{{}}\t{ts(round_at)}\t{ts(resolvable)}\n"
                    )

    # bulk load: the secondary indexes of the two big tables are built once afterwards (as migrated)
    cursor.execute("SET synchronous_commit = off")
    cursor.execute("SET maintenance_work_mem = '256MB'")
    # the rows are consistent by construction: load the two big tables bare, then build their keys
    # and indexes once from the migrated definitions (and validate the foreign keys in one pass)
    keys = constraints(cursor, ("predictions", "scores"))
    deferred = secondary_indexes(cursor, "predictions") + secondary_indexes(cursor, "scores")
    for table, name, _, _ in keys:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in deferred:
        cursor.execute(f'DROP INDEX "{name}"')
    phases: dict[str, float] = {}
    mark = time.perf_counter()
    copied = copy_rows(
        cursor,
        "predictions",
        (
            "id",
            "input_id",
            "model_id",
            "prediction_config_id",
            "scope_key",
            "scope_jsonb",
            "status",
            "runner_status",
            "failed_reason",
            "exec_time_ms",
            "inference_output_jsonb",
            "meta_jsonb",
            "performed_at",
            "resolvable_at",
        ),
        predictions(),
    )
    phases["predictions (generate + COPY)"] = time.perf_counter() - mark
    mark = time.perf_counter()
    copy_rows(
        cursor,
        "scores",
        (
            "id",
            "prediction_id",
            "model_id",
            "input_id",
            "prediction_status",
            "value",
            "success",
            "failed_reason",
            "result_jsonb",
            "scored_at",
        ),
        iter(scores),
    )
    phases["scores (COPY)"] = time.perf_counter() - mark
    mark = time.perf_counter()
    for table, name, _, definition in sorted(keys, key=lambda k: k[2] == "f"):  # keys before foreign keys
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for _, definition in deferred:
        cursor.execute(definition)
    phases[f"{len(keys)} keys and {len(deferred)} indexes"] = time.perf_counter() - mark
    mark = time.perf_counter()
    cursor.execute("""
        INSERT INTO snapshots (id, model_id, period_start, period_end, prediction_count, scored_count, failed_count,
                               absent_count, value_sum, result_summary_jsonb, meta_jsonb, created_at, updated_at)
        SELECT 'SNAP_' || model_id || '_' || to_char(date_trunc('hour', scored_at), 'YYYYMMDD"T"HH24MISS'),
               model_id, date_trunc('hour', scored_at), date_trunc('hour', scored_at) + interval '1 hour',
               count(*), count(*) FILTER (WHERE success), count(*) FILTER (WHERE prediction_status = 'FAILED'),
               count(*) FILTER (WHERE prediction_status = 'ABSENT'), sum(value),
               jsonb_build_object('value', avg(value) FILTER (WHERE success)), '{}', max(scored_at), max(scored_at)
        FROM scores GROUP BY model_id, date_trunc('hour', scored_at)""")
    connection.commit()
    phases["snapshots (INSERT .. SELECT)"] = time.perf_counter() - mark
    loaded = time.perf_counter() - started
    cursor.execute("ANALYZE")
    connection.commit()
    counts = {}
    for table in ("models", "inputs", "predictions", "scores", "snapshots", "feed_records"):
        cursor.execute(f"SELECT count(*) FROM {table}")
        counts[table] = cursor.fetchone()[0]
    connection.close()
    assert copied == shape.predictions
    return {"seconds": loaded, "counts": counts, "now": now, "phases": phases}


def build_derived(now: datetime) -> dict[str, Any]:
    """The leaderboard and checkpoints through the real services, plus a week of leaderboard history."""
    from coordinator_core.bootstrap import build_runtime
    from coordinator_core.services.checkpoint import build_checkpoints
    from coordinator_core.services.score import rebuild_leaderboard

    runtime = build_runtime(database_url=bench_url())
    started = time.perf_counter()
    with runtime.uow() as work:
        rebuild_leaderboard(work, runtime.contract, now, runtime.settings.snapshot_period_seconds)
        work.commit()
    leaderboard_seconds = time.perf_counter() - started
    started = time.perf_counter()
    checkpoint_ids = build_checkpoints(runtime.uow, runtime.contract, runtime.settings, now)
    checkpoint_seconds = time.perf_counter() - started
    connection = psycopg2.connect(dsn(bench_url()))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO leaderboards (id, created_at, entries_jsonb, meta_jsonb)
            SELECT 'LBR_' || to_char(t, 'YYYYMMDD"T"HH24MISS') || '.000000', t, l.entries_jsonb, l.meta_jsonb
            FROM leaderboards l, generate_series(%s::timestamptz - interval '168 hours', %s::timestamptz - interval '1 hour',
                                                 interval '1 hour') AS t
            ON CONFLICT DO NOTHING""",
            (now, now),
        )
        cursor.execute("ANALYZE")
    connection.commit()
    connection.close()
    return {
        "leaderboard_seconds": leaderboard_seconds,
        "checkpoint_seconds": checkpoint_seconds,
        "checkpoints": checkpoint_ids,
    }


# -- server and load --------------------------------------------------------------------------------
class Server:
    def __init__(self, port: int, workers: int = 1) -> None:
        self.port = port
        self.workdir = tempfile.mkdtemp(prefix="api_bench_")  # no .env / .local.env of the project
        env = {**os.environ, "DATABASE_URL": bench_url(), "API_READ_KEYS": READ_KEY, "PYTHONPATH": str(PROJECT)}
        self.workers = workers
        for name in ("API_PUBLIC_KEYS", "API_ADMIN_KEYS", "READ_DATABASE_URL", "CRUNCH_CONTRACT", "API_CORS_ORIGINS"):
            env.pop(name, None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--workers",
                str(workers),
            ],
            cwd=self.workdir,
            env=env,
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("uvicorn did not become healthy")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


async def _load(
    base: str, make_path: Any, rate: float, seconds: float, warmup: float, headers: dict[str, str]
) -> tuple[list[float], int, int]:
    latencies: list[float] = []
    errors = 0
    late = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10, headers=headers) as client:

        async def one(path: str, measured: bool) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                response = await client.get(path)
                ok = response.status_code == 200
                await response.aread()
            except httpx.HTTPError:
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            if measured:
                latencies.append(elapsed)
                errors += 0 if ok else 1

        tasks = []
        total = int((warmup + seconds) * rate)
        t0 = time.perf_counter()
        for k in range(total):
            target = t0 + k / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.005:
                late += 1
            tasks.append(asyncio.create_task(one(make_path(), k >= warmup * rate)))
        await asyncio.gather(*tasks)
    return latencies, errors, late


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def sequential(server: Server, make_path: Any, headers: dict[str, str] | None, count: int = 30) -> float:
    """Median latency of ``count`` requests one after the other: the service time without queueing."""
    times = []
    with httpx.Client(base_url=server.base, headers=headers or {}, timeout=30) as client:
        for _ in range(count):
            started = time.perf_counter()
            client.get(make_path())
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def drain(server: Server, timeout: float = 120) -> None:
    """Wait until the server answers /healthz quickly again (a backlog from an overload is gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            httpx.get(f"{server.base}/healthz", timeout=30)
        except httpx.HTTPError:
            pass
        if time.perf_counter() - started < 0.05:
            return
        time.sleep(0.5)


def measure(
    server: Server,
    name: str,
    make_path: Any,
    rate: float,
    seconds: float,
    warmup: float,
    headers: dict[str, str] | None = None,
    alone_count: int = 30,
) -> dict[str, Any]:
    drain(server)
    alone = sequential(server, make_path, headers, alone_count)
    latencies, errors, late = asyncio.run(_load(server.base, make_path, rate, seconds, warmup, headers or {}))
    row = {
        "name": name,
        "alone": alone,
        "n": len(latencies),
        "errors": errors,
        "p50": statistics.median(latencies),
        "p90": percentile(latencies, 0.90),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
    }
    row["load"] = os.getloadavg()[0]
    print(
        f"  {name:<56} alone {alone:5.1f} ms | n={row['n']:>4} err={errors:<3} p50 {row['p50']:6.1f} ms  p90 {row['p90']:6.1f} ms  "
        f"p99 {row['p99']:6.1f} ms  max {row['max']:6.1f} ms  load {row['load']:.1f}"
        + (f"  ({late} sends late)" if late else "")
    )
    return row


def run_load(args: argparse.Namespace, now: datetime, shape: Shape) -> list[dict[str, Any]]:
    connection = psycopg2.connect(dsn(bench_url()))
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM checkpoints ORDER BY period_end")
        checkpoints = [r[0] for r in cursor.fetchall()]
        cursor.execute("SELECT id FROM models ORDER BY id")
        models = [r[0] for r in cursor.fetchall()]
    rng = random.Random(11)
    private = {"X-API-Key": READ_KEY}
    span = int((now - START).total_seconds())

    def deep_page() -> str:  # a page that starts anywhere in a model's history
        end = START + timedelta(seconds=rng.randrange(span))
        return f"/reports/predictions?model_id={rng.choice(models)}&end={end:%Y-%m-%dT%H:%M:%SZ}&limit=100"

    server = Server(args.port, args.workers)
    results = []
    try:
        server.wait()
        print(
            f"\nlatency at a fixed rate for {args.seconds:g} s each (after {args.warmup:g} s warm-up), uvicorn "
            f"{args.workers} worker(s) on 127.0.0.1, load generator on the same machine ({os.cpu_count()} CPUs); "
            "'alone' = median of 30 sequential requests first; load = 1-min load average:"
        )
        plan = [
            ("GET /info (floor: no database)", lambda: "/info", None, args.rate),
            (f"GET /reports/leaderboard (100 of {shape.models})", lambda: "/reports/leaderboard", None, args.rate),
            (
                "GET /reports/predictions?model_id=… (page 1)",
                lambda: f"/reports/predictions?model_id={rng.choice(models)}&limit=100",
                private,
                args.rate,
            ),
            ("GET /reports/predictions?model_id=…&end=… (deep)", deep_page, private, args.rate),
            (
                "GET /reports/checkpoints/{id}",
                lambda: f"/reports/checkpoints/{rng.choice(checkpoints)}",
                None,
                args.rate,
            ),
            (
                "GET /reports/models/{id}/status",
                lambda: f"/reports/models/{rng.choice(models)}/status",
                None,
                args.rate,
            ),
            # four window_totals GROUP BYs over a week of snapshots per call: measured at a fifth of the rate
            ("GET /reports/models/global (100 models)", lambda: "/reports/models/global", None, args.rate / 5),
        ]
        for name, make_path, headers, rate in plan:
            if args.only and not any(word in name for word in args.only):
                continue
            rounds = [
                measure(
                    server,
                    f"{name} @{rate:g}/s" + (f" #{r + 1}" if args.repeat > 1 else ""),
                    make_path,
                    rate,
                    args.seconds,
                    args.warmup,
                    headers,
                )
                for r in range(args.repeat)
            ]
            if args.repeat > 1:
                p99s = sorted(r["p99"] for r in rounds)
                print(
                    f"  {'':<56} -> p99 over {args.repeat} rounds: median {statistics.median(p99s):.1f} ms, "
                    f"best {p99s[0]:.1f} ms"
                )
            results.extend(rounds)
        if not args.no_index_probe and (not args.only or "unfiltered" in args.only):
            unfiltered = lambda: "/reports/predictions?limit=100"  # noqa: E731
            drain(server)
            alone = sequential(server, unfiltered, private, 5)
            print(
                f"  {'GET /reports/predictions (unfiltered, as migrated)':<56} alone {alone:5.1f} ms | "
                "(no rate test: it scans and sorts the whole table)"
            )
            results.append({"name": "unfiltered, as migrated", "alone": alone})
            connection.commit()
            connection.autocommit = True
            with connection.cursor() as cursor:
                started = time.perf_counter()
                cursor.execute(PROPOSED_INDEX)
                cursor.execute("ANALYZE predictions")
                print(f"  ({PROPOSED_INDEX}: {time.perf_counter() - started:.1f} s)")
            for r in range(args.repeat):
                results.append(
                    measure(
                        server,
                        f"GET /reports/predictions (unfiltered, +index) @{args.rate:g}/s"
                        + (f" #{r + 1}" if args.repeat > 1 else ""),
                        unfiltered,
                        args.rate,
                        args.seconds,
                        args.warmup,
                        private,
                    )
                )
    finally:
        server.stop()
        connection.close()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per request kind")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per request kind (the machine may be shared)")
    parser.add_argument("--only", nargs="*", default=[], help="measure only request kinds whose name has one of these")
    parser.add_argument("--reuse", action="store_true", help="keep the existing api_bench database (skip the load)")
    parser.add_argument("--no-index-probe", action="store_true", help="skip the unfiltered page with and without index")
    parser.add_argument("--drop", action="store_true", help="drop the api_bench database at the end")
    args = parser.parse_args(argv)
    shape = Shape(args.models, args.predictions)
    if not args.reuse:
        print(f"filling database {DATABASE}: {args.models} models, {args.predictions:,} predictions ...")
        started = time.perf_counter()
        create_database()
        filled = fill(shape)
        derived = build_derived(filled["now"])
        print(
            f"  loaded in {filled['seconds']:.1f} s (COPY + snapshot aggregation); leaderboard (real service) "
            f"{derived['leaderboard_seconds']:.2f} s; {len(derived['checkpoints'])} checkpoints (real service) "
            f"{derived['checkpoint_seconds']:.1f} s; total {time.perf_counter() - started:.1f} s"
        )
        print("  phases: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in filled["phases"].items()))
        print("  rows: " + ", ".join(f"{table} {count:,}" for table, count in filled["counts"].items()))
    else:
        # an earlier run left the index probe's index: drop it so "as is" means as migrated
        connection = psycopg2.connect(dsn(bench_url()))
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS ix_predictions_performed_at")
        connection.close()
    run_load(args, shape.end, shape)
    if args.drop:
        connection = psycopg2.connect(dsn(SERVER_URL))
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        connection.close()


if __name__ == "__main__":
    main()
