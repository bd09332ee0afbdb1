"""Speed of the core services against set-based floors, on Postgres (``make bench``).

Printed, never asserted. Each figure is measured in this run next to its reference, and the ratio
is printed, because the machine is shared and noisy.

* **score cycle** at 20,000 / 100,000 / 1,000,000 pending predictions (100 models): the real
  ``score_predictions`` (resolve, score, statuses, scores, snapshots, leaderboard) against a
  *floor* written directly in SQL on an identical copy of the database: one LATERAL query for the
  truths, the same rule computed in a Python loop, ``COPY`` of the scores, one ``UPDATE`` each for
  predictions and inputs, one ``INSERT … SELECT … GROUP BY`` for the snapshots. Each side runs in
  a fresh process, so its peak memory (max RSS) is its own. The ratio compares the same work: our
  cycle without the leaderboard's metric columns (coverage, bootstrap CI, IC…, which the floor does
  not compute); the cycle with them is printed after it, on a third copy.
* **flat cost**: scoring 20 new predictions with no history and with 100,000 scored ones.
* **rounds**: ``predict_round`` with 16 in-process models (data → persisted predictions, p50/p99),
  next to a floor interleaved with it (``RoundFloor``: the round's reads and writes as four raw
  psycopg2 calls on one open connection), and with 5,000 (p50 of the round beyond the models' own
  time, persistence included).

``BENCH_POSTGRES_URL`` names a database on the server used to create (and drop) the benchmark's
own databases (default ``postgresql+psycopg2://127.0.0.1:5432/test``).
"""

from __future__ import annotations

import io
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg2://127.0.0.1:5432/test")
MODELS = 100
START = datetime(2026, 1, 5, tzinfo=UTC)  # rounds every minute from here
MINUTE = timedelta(minutes=1)


# -- databases ---------------------------------------------------------------------------------------
def _dsn(url: str) -> str:
    u = make_url(url)
    parts = [f"host={u.host or '127.0.0.1'}", f"port={u.port or 5432}", f"dbname={u.database}"]
    if u.username:
        parts.append(f"user={u.username}")
    if u.password:
        parts.append(f"password={u.password}")
    return " ".join(parts)


def _admin(sql: str) -> None:
    connection = psycopg2.connect(_dsn(ADMIN_URL))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()


def create_database(template: str | None = None) -> str:
    name = f"coordbench_{os.getpid()}_{secrets.token_hex(3)}"
    _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{make_url(template).database}"' if template else ""))
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


# -- data --------------------------------------------------------------------------------------------
def _copy(cursor: Any, table: str, columns: list[str], rows: Any) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row))
        buffer.write("\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def fill(url: str, pending: int, scored_history: int = 0) -> None:
    """``pending`` PENDING predictions (MODELS per round, one round a minute from START, horizon 60 s),
    after ``scored_history`` predictions already scored (and their scores and snapshots)."""
    from coordinator_core.db.migrate import upgrade

    upgrade(url)
    history_rounds = scored_history // MODELS
    rounds = pending // MODELS
    total = history_rounds + rounds
    connection = psycopg2.connect(_dsn(url))
    cursor = connection.cursor()
    scope = json.dumps(
        {
            "source": "synthetic",
            "sources": ["synthetic"],
            "subject": "BTC",
            "kind": "candle",
            "granularity": "1m",
            "horizon_seconds": 60,
            "step_seconds": 60,
            "scope_key": "BTC-60",
        }
    )
    cursor.execute(
        'INSERT INTO scheduled_prediction_configs (id, scope_key, scope_template_jsonb, schedule_jsonb, active, "order", '
        "meta_jsonb, updated_at) VALUES ('CFG_BTC-60', 'BTC-60', '{}', '{\"prediction_interval_seconds\": 60}', true, 0, '{}', %s)",
        (START,),
    )
    _copy(
        cursor,
        "models",
        [
            "id",
            "name",
            "deployment_identifier",
            "player_id",
            "player_name",
            "state",
            "first_seen_at",
            "last_seen_at",
            "overall_score_jsonb",
            "scores_by_scope_jsonb",
            "meta_jsonb",
            "created_at",
            "updated_at",
        ],
        (
            (
                f"m{i:04d}",
                f"m{i:04d}",
                "bench",
                f"p{i:04d}",
                f"P{i}",
                "RUNNING",
                START,
                START,
                "{}",
                "[]",
                "{}",
                START,
                START,
            )
            for i in range(MODELS)
        ),
    )
    price = 60_000.0
    candles = []
    for k in range(-2, total + 3):  # candle opened at START + (k-1) min closes at START + k min
        price *= 1.0 + 0.0004 * ((k * 7919) % 13 - 6) / 6
        candles.append(
            (
                "synthetic",
                "BTC",
                "candle",
                "1m",
                START + (k - 1) * MINUTE,
                START,
                "true",
                json.dumps({"open": price, "high": price, "low": price, "close": price, "volume": 1.0}),
                "{}",
            )
        )
    _copy(
        cursor,
        "feed_records",
        ["source", "subject", "kind", "granularity", "ts_event", "ts_ingested", "final", "values_jsonb", "meta_jsonb"],
        candles,
    )

    def inputs() -> Any:
        for r in range(total):
            at = START + r * MINUTE
            status = "RESOLVED" if r < history_rounds else "RECEIVED"
            yield (
                f"INP_{r:07d}",
                "CFG_BTC-60",
                "BTC-60",
                status,
                at,
                at,
                at + MINUTE,
                (at + MINUTE) if status == "RESOLVED" else None,
                "{}",
                "{}" if status == "RESOLVED" else None,
                scope,
                "{}",
            )

    _copy(
        cursor,
        "inputs",
        [
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
        ],
        inputs(),
    )

    def predictions() -> Any:
        for r in range(total):
            at = START + r * MINUTE
            for m in range(MODELS):
                value = ((r * 31 + m * 17) % 200 - 100) / 100_000
                status = "SCORED" if r < history_rounds else "PENDING"
                yield (
                    f"PRE_m{m:04d}_{r:07d}",
                    f"INP_{r:07d}",
                    f"m{m:04d}",
                    "CFG_BTC-60",
                    "BTC-60",
                    scope,
                    status,
                    "SUCCESS",
                    None,
                    0.1,
                    json.dumps({"value": value}),
                    "{}",
                    at,
                    at + MINUTE,
                )

    _copy(
        cursor,
        "predictions",
        [
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
        ],
        predictions(),
    )
    if history_rounds:
        cursor.execute(
            "INSERT INTO scores (id, prediction_id, model_id, input_id, prediction_status, value, success, result_jsonb, scored_at) "
            "SELECT 'SCR_' || id, id, model_id, input_id, 'SCORED', -1.0, true, '{\"value\": -1.0, \"success\": true}', "
            "resolvable_at FROM predictions WHERE status = 'SCORED'"
        )
        cursor.execute(
            "INSERT INTO snapshots (id, model_id, period_start, period_end, prediction_count, scored_count, failed_count, "
            "absent_count, value_sum, result_summary_jsonb, meta_jsonb, created_at, updated_at) "
            "SELECT 'SNAP_' || model_id || '_' || to_char(date_trunc('hour', scored_at), 'YYYYMMDD\"T\"HH24MISS'), model_id, "
            "date_trunc('hour', scored_at), date_trunc('hour', scored_at) + interval '1 hour', count(*), count(*), 0, 0, "
            "sum(value), '{\"value\": -1.0}', '{}', now(), now() FROM scores GROUP BY model_id, date_trunc('hour', scored_at)"
        )
    connection.commit()
    cursor.execute("ANALYZE")
    connection.close()
    from coordinator_core.db.engine import get_engine

    get_engine(url).dispose()  # no pooled connection left: the database can serve as a template


def due_time(pending: int, history: int = 0) -> datetime:
    return START + (history // MODELS + pending // MODELS + 1) * MINUTE


# -- the two sides, each in its own process ----------------------------------------------------------------
def run_ours(url: str, now: datetime, metrics: bool = True) -> dict[str, Any]:
    """Our score cycle; ``metrics=False``: without the leaderboard's metric columns (issue 12),
    which the floor does not compute, so the ratio compares the same work."""
    from coordinator_core.bootstrap import build_runtime
    from coordinator_core.services.score import score_predictions

    runtime = build_runtime(
        database_url=url, feed_source="synthetic", feed_granularity="1m", score_batch_size=500, crunch_contract=None
    )
    contract = runtime.contract if metrics else runtime.contract.model_copy(update={"metrics": ()})
    started = time.perf_counter()
    result = score_predictions(runtime.uow, contract, runtime.settings, now)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "scored": result.statuses.get("SCORED", 0)}


def run_floor(url: str, now: datetime) -> dict[str, Any]:
    """The same cycle as plain SQL over psycopg2: the least a set-based implementation must do."""
    connection = psycopg2.connect(_dsn(url))
    cursor = connection.cursor()
    started = time.perf_counter()
    cursor.execute(
        "SELECT i.id, en.values_jsonb->>'close', ex.values_jsonb->>'close' FROM inputs i "
        "LEFT JOIN LATERAL (SELECT f.values_jsonb FROM feed_records f WHERE f.source = 'synthetic' AND f.subject = 'BTC' "
        "AND f.kind = 'candle' AND f.granularity = '1m' AND f.final AND f.ts_event <= i.received_at - interval '1 minute' "
        "ORDER BY f.ts_event DESC LIMIT 1) en ON true "
        "LEFT JOIN LATERAL (SELECT f.values_jsonb FROM feed_records f WHERE f.source = 'synthetic' AND f.subject = 'BTC' "
        "AND f.kind = 'candle' AND f.granularity = '1m' AND f.final AND f.ts_event <= i.received_at "
        "ORDER BY f.ts_event DESC LIMIT 1) ex ON true WHERE i.status = 'RECEIVED' AND i.resolvable_at <= %s",
        (now,),
    )
    returns = {i: (float(x) - float(e)) / float(e) for i, e, x in cursor.fetchall()}
    cursor.execute(
        "SELECT id, model_id, input_id, inference_output_jsonb FROM predictions p WHERE status = 'PENDING' "
        "AND resolvable_at <= %s",
        (now,),
    )
    buffer = io.StringIO()
    stamp = now.isoformat()
    for pid, model_id, input_id, output in cursor.fetchall():
        value = -abs(float(output["value"]) - returns[input_id]) * 10_000
        result = json.dumps({"value": value, "success": True, "failed_reason": None})
        buffer.write(f"SCR_{pid}\t{pid}\t{model_id}\t{input_id}\tSCORED\t{value!r}\tt\t{result}\t{stamp}\n")
    buffer.seek(0)
    cursor.copy_expert(
        "COPY scores (id, prediction_id, model_id, input_id, prediction_status, value, success, result_jsonb, "
        "scored_at) FROM STDIN",
        buffer,
    )
    cursor.execute("UPDATE predictions SET status = 'SCORED' WHERE status = 'PENDING' AND resolvable_at <= %s", (now,))
    cursor.execute(
        "UPDATE inputs SET status = 'RESOLVED', resolved_at = %s WHERE status = 'RECEIVED' AND resolvable_at <= %s",
        (now, now),
    )
    cursor.execute(
        "INSERT INTO snapshots (id, model_id, period_start, period_end, prediction_count, scored_count, failed_count, "
        "absent_count, value_sum, result_summary_jsonb, meta_jsonb, created_at, updated_at) "
        "SELECT 'SNAP_' || model_id || '_' || to_char(date_trunc('hour', scored_at), 'YYYYMMDD\"T\"HH24MISS'), model_id, "
        "date_trunc('hour', scored_at), date_trunc('hour', scored_at) + interval '1 hour', count(*), count(*), 0, 0, "
        "sum(value), jsonb_build_object('value', avg(value)), '{}', %s, %s FROM scores WHERE scored_at = %s "
        "GROUP BY model_id, date_trunc('hour', scored_at) "
        "ON CONFLICT (model_id, period_start) DO UPDATE SET prediction_count = EXCLUDED.prediction_count, "
        "value_sum = EXCLUDED.value_sum",
        (now, now, now),
    )
    connection.commit()
    seconds = time.perf_counter() - started
    connection.close()
    return {"seconds": seconds}


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``: reset by exec, unlike ``ru_maxrss``, which a
    child inherits from the parent it was forked from)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, url: str, now: str) -> None:
    when = datetime.fromisoformat(now)
    if kind == "floor":
        out = run_floor(url, when)
    else:
        out = run_ours(url, when, metrics=kind == "ours")
    out["max_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))


def in_process(kind: str, url: str, now: datetime) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.core_bench", "--child", kind, url, now.isoformat()],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_score_cycle(sizes: list[int]) -> None:
    for pending in sizes:
        started = time.perf_counter()
        ours_db = create_database()
        try:
            fill(ours_db, pending)
            floor_db = create_database(template=ours_db)
            plain_db = create_database(template=ours_db)
            filled = time.perf_counter() - started
            try:
                now = due_time(pending)
                floor = in_process("floor", floor_db, now)
                plain = in_process("ours-without-metrics", plain_db, now)
                ours = in_process("ours", ours_db, now)
            finally:
                drop_database(floor_db)
                drop_database(plain_db)
        finally:
            drop_database(ours_db)
        print(
            f"  score cycle, {pending:>9,} pending: ours {plain['seconds']:7.2f} s ({plain['scored']:,} scored, "
            f"max RSS {plain['max_rss_mb']:,.0f} MB) | floor {floor['seconds']:7.2f} s (max RSS {floor['max_rss_mb']:,.0f} MB)"
            f" | ratio {plain['seconds'] / floor['seconds']:.2f}x | with the leaderboard metrics {ours['seconds']:.2f} s"
            f" ({ours['seconds'] / floor['seconds']:.2f}x, max RSS {ours['max_rss_mb']:,.0f} MB)   [data {filled:.0f} s]"
        )


FLAT_REPEATS = 5


def bench_flat() -> None:
    """One cycle of 20 new predictions costs milliseconds, so one measurement is mostly noise: each
    side is filled once and scored ``FLAT_REPEATS`` times, each on a fresh copy of its database,
    the two sides interleaved; the medians are printed."""
    templates = {}
    try:
        for history in (0, 100_000):
            templates[history] = create_database()
            fill(templates[history], MODELS // 5, scored_history=history)  # 20 new predictions: a fifth of a round
        times: dict[int, list[float]] = {0: [], 100_000: []}
        for _ in range(FLAT_REPEATS):
            for history, template in templates.items():
                url = create_database(template=template)
                try:
                    times[history].append(in_process("ours", url, due_time(MODELS // 5, history))["seconds"])
                finally:
                    drop_database(url)
    finally:
        for template in templates.values():
            drop_database(template)
    a, b = statistics.median(times[0]), statistics.median(times[100_000])
    print(
        f"  20 new predictions (median of {FLAT_REPEATS}): {a * 1000:.1f} ms with no history, {b * 1000:.1f} ms with "
        f"100,000 scored ({b / a:.2f}x)"
    )


# -- rounds --------------------------------------------------------------------------------------------------
MODEL_SOURCE = """from tracker import TrackerBase


class Model{index}(TrackerBase):
    def predict(self, subject, horizon_seconds, step_seconds):
        return {{"value": {value}}}
"""


def model_folders(count: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"bench_models_{count}_"))
    for i in range(count):
        folder = root / f"m{i:05d}"
        folder.mkdir()
        (folder / "main.py").write_text(MODEL_SOURCE.format(index=i, value=(i % 7 - 3) / 1000))
    return root


class RoundFloor:
    """The least a round of ``models`` predictions can cost on this server, written directly with
    psycopg2 on one open connection: the feed window (``FEED_CANDLES_WINDOW`` records) in one SELECT, one input row
    (the records' values as its JSON data), one multi-row INSERT of the predictions, COMMIT. It
    writes rounds of its own (``FLOOR_…``, round times before the real ones), interleaved with the
    real rounds, so both see the same load."""

    def __init__(self, url: str, rt: Any, scope_key: str, subject: str) -> None:
        from coordinator_core.feeds.base import FeedScope

        self.connection = psycopg2.connect(_dsn(url))
        settings = rt.settings
        self.scope = FeedScope(settings.sources[0], subject, settings.feed_kind, settings.feed_granularity)
        self.window, self.scope_key = settings.feed_candles_window, scope_key
        with rt.uow() as work:
            self.config_id = next(c.id for c in work.configs.active() if c.scope_key == scope_key)
        self.models = sorted(i.model_id for i in rt.gateway.models())

    def run(self, k: int, at: datetime) -> float:
        from coordinator_core.feeds.base import observe_delay

        scope = self.scope
        started = time.perf_counter()
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, ts_event, values_jsonb FROM feed_records WHERE source = %s AND subject = %s AND kind = %s "
                "AND granularity = %s AND final AND ts_event <= %s ORDER BY ts_event DESC LIMIT %s",
                (scope.source, scope.subject, scope.kind, scope.granularity, at - observe_delay(scope), self.window),
            )
            records = cursor.fetchall()
            assert len(records) == self.window, f"the floor read {len(records)} records, not {self.window}"
            input_id = f"FLOOR_{k}"
            data = json.dumps({"candles": [{"ts": int(r[1].timestamp()), **r[2]} for r in reversed(records)]})
            cursor.execute(
                "INSERT INTO inputs (id, prediction_config_id, scope_key, status, round_at, received_at, resolvable_at, "
                "raw_data_jsonb, actuals_jsonb, scope_jsonb, meta_jsonb) "
                "VALUES (%s, %s, %s, 'RECEIVED', %s, %s, %s, %s, 'null', '{}', '{}')",
                (
                    input_id,
                    self.config_id,
                    self.scope_key,
                    at - timedelta(days=3650) + k * MINUTE,
                    at,
                    at + timedelta(hours=1),
                    data,
                ),
            )
            rows = [
                {
                    "id": f"PRE_{m}_{input_id}",
                    "input_id": input_id,
                    "model_id": m,
                    "prediction_config_id": self.config_id,
                    "scope_key": self.scope_key,
                    "scope_jsonb": {"subject": scope.subject, "horizon_seconds": 3600, "step_seconds": 900},
                    "status": "PENDING",
                    "exec_time_ms": 0.1,
                    "inference_output_jsonb": {"value": 0.001},
                    "meta_jsonb": {},
                    "performed_at": at.isoformat(),
                    "resolvable_at": (at + timedelta(hours=1)).isoformat(),
                }
                for m in self.models
            ]
            cursor.execute(
                "INSERT INTO predictions (id, input_id, model_id, prediction_config_id, scope_key, scope_jsonb, status, "
                "exec_time_ms, inference_output_jsonb, meta_jsonb, performed_at, resolvable_at) "
                "SELECT id, input_id, model_id, prediction_config_id, scope_key, scope_jsonb, status, exec_time_ms, "
                "inference_output_jsonb, meta_jsonb, performed_at, resolvable_at "
                "FROM jsonb_populate_recordset(NULL::predictions, %s::jsonb)",
                (json.dumps(rows),),
            )
        self.connection.commit()
        return time.perf_counter() - started

    def close(self) -> None:
        self.connection.close()


def _percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


def bench_rounds(models: int, rounds: int, label: str, floor: bool = False) -> None:
    from coordinator_core.bootstrap import build_runtime
    from coordinator_core.services.configs import seed_configs
    from coordinator_core.services.ingest import ingest
    from coordinator_core.services.predict import predict_round

    url = create_database()
    try:
        from coordinator_core.db.migrate import upgrade

        upgrade(url)
        folder = model_folders(models)
        configs = folder / "configs.json"  # one round per hour: horizon 1 h
        configs.write_text(
            json.dumps(
                [
                    {
                        "scope_key": "BTC-3600",
                        "scope_template": {"subject": "BTC", "horizon_seconds": 3600, "step_seconds": 900},
                        "schedule": {"prediction_interval_seconds": 3600},
                    }
                ]
            )
        )
        loaded = time.perf_counter()
        rt = build_runtime(
            database_url=url,
            models_dir=str(folder),
            feed_source="synthetic",
            feed_granularity="1m",
            crunch_contract=None,
            scheduled_prediction_configs_path=str(configs),
            local_model_timeout_seconds=30.0,
        )
        gateway = rt.gateway
        loaded = time.perf_counter() - loaded
        now = datetime(2026, 11, 2, tzinfo=UTC)
        seed_configs(rt.uow, rt.contract, rt.settings, now)
        times, floor_times = [], []
        reference = RoundFloor(url, rt, "BTC-3600", "BTC") if floor else None
        for k in range(rounds):
            at = now + k * timedelta(hours=1)
            ingest(rt.uow, rt.sources, rt.settings, at)  # the round's data, not timed
            started = time.perf_counter()
            result = predict_round(rt.uow, gateway, rt.contract, rt.settings, at)
            times.append(time.perf_counter() - started)
            assert sum(result.statuses.values()) == models * len(result.inputs) and result.inputs, result
            if reference is not None:
                floor_times.append(reference.run(k, at))
        rt.close()
        p50, p99 = _percentiles(times)
        print(
            f"  {label}: {models:,} models × {rounds} rounds (one config), models loaded in {loaded:.1f} s; "
            f"round p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms (models' own time ≈ 0: each returns a constant)"
        )
        if reference is not None:
            reference.close()
            f50, f99 = _percentiles(floor_times)
            print(
                f"    floor (one connection, raw psycopg2: feed SELECT, input INSERT, one predictions INSERT, COMMIT; "
                f"interleaved): p50 {f50 * 1000:.1f} ms, p99 {f99 * 1000:.1f} ms | ratio p50 {p50 / f50:.2f}x, "
                f"p99 {p99 / f99:.2f}x"
            )
    finally:
        drop_database(url)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    quick = "--quick" in sys.argv
    only = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--only=")), "score,flat,rounds")
    print(f"Postgres (databases of this run's own, on the server of {make_url(ADMIN_URL).render_as_string()}):")
    sizes = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--sizes=")), None)
    if "score" in only:
        default = [20_000, 100_000] if quick else [20_000, 100_000, 1_000_000]
        bench_score_cycle([int(n) for n in sizes.split(",")] if sizes else default)
    if "flat" in only:
        bench_flat()
    if "rounds" in only:
        bench_rounds(16, 200, "data → persisted predictions", floor=True)
        bench_rounds(5_000, 7 if quick else 11, "a round of 5,000 in-process models")


if __name__ == "__main__":
    main()
