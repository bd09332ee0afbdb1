"""A real game through the whole coordinator (``make bench``): figures printed, never asserted.

* a 7-day backtest (``--quick``: 1 day) of the Crunch-Synth 1 h preset with 20 trackers (copies
  of the package's ``GaussianStepTracker``) on 1-minute synthetic BTC, services only, on Postgres:
  wall time, predictions per second, time per service;
* storage of density paths on Postgres: a day of the 24 h preset (288 densities of 5 minutes,
  24 of 1 hour, 4 of 6 hours, 1 of 24 hours per prediction): JSON bytes of an output, its stored
  (TOAST-compressed) size, and the predictions table's heap bytes per row (what status updates
  and the hot queries touch) next to its total.

``BENCH_POSTGRES_URL`` names the server database used to create the benchmark's own databases.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from benchmarks.core_bench import create_database, drop_database

START = datetime(2026, 10, 1, tzinfo=UTC)
TRACKER = """from crunch_synth.examples.exampletracker import GaussianStepTracker


class Tracker{index}(GaussianStepTracker):
    pass
"""


def trackers(count: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix="bench_trackers_"))
    for i in range(count):
        (root / f"t{i:02d}").mkdir()
        (root / f"t{i:02d}" / "main.py").write_text(TRACKER.format(index=i))
    return root


def run(url: str, contract: str, models: Path, days: float) -> dict[str, float]:
    from coordinator_core.bootstrap import build_runtime
    from coordinator_core.db.migrate import upgrade
    from coordinator_core.services import backtest, checkpoint, ingest, predict, score

    upgrade(url)
    rt = build_runtime(
        database_url=url,
        crunch_contract=contract,
        feed_source="synthetic",
        feed_granularity="1m",
        models_dir=str(models),
        model_base_classname="crunch_synth.tracker.TrackerBase",
        local_model_timeout_seconds=60,
        checkpoint_interval_seconds=86_400,
    )
    backtest.prepare(rt, START)
    spent = dict.fromkeys(("ingest", "predict", "score", "checkpoint"), 0.0)
    predictions = scored = 0
    times = list(backtest.virtual_times(START, START + timedelta(days=days), backtest.step_seconds(rt)))
    started = time.perf_counter()
    for now in times:
        t0 = time.perf_counter()
        ingest.ingest(rt.uow, rt.sources, rt.settings, now, rt.contract.history_seconds)
        t1 = time.perf_counter()
        predictions += sum(predict.predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, now).statuses.values())
        t2 = time.perf_counter()
        scored += score.score_predictions(rt.uow, rt.contract, rt.settings, now).statuses.get("SCORED", 0)
        t3 = time.perf_counter()
        checkpoint.build_checkpoints(rt.uow, rt.contract, rt.settings, now)
        t4 = time.perf_counter()
        spent["ingest"] += t1 - t0
        spent["predict"] += t2 - t1
        spent["score"] += t3 - t2
        spent["checkpoint"] += t4 - t3
    rt.close()
    return {
        "seconds": time.perf_counter() - started,
        "steps": len(times),
        "predictions": predictions,
        "scored": scored,
        **spent,
    }


def bench_backtest(days: float, count: int = 20) -> None:
    url = create_database()
    try:
        figures = run(url, "coordinator_core.games.crunch_synth:contract_1h", trackers(count), days)
    finally:
        drop_database(url)
    print(
        f"  Crunch-Synth 1 h preset, {days:g} day(s) of 1-minute BTC, {count} trackers: {figures['steps']} rounds, "
        f"{figures['predictions']:,} predictions ({figures['scored']:,} scored) in {figures['seconds']:.1f} s = "
        f"{figures['predictions'] / figures['seconds']:.1f} predictions/s"
    )
    print(
        "    per service: "
        + ", ".join(f"{k} {figures[k]:.1f} s" for k in ("ingest", "predict", "score", "checkpoint"))
        + " (predict includes the trackers' own time; the first ingest fetches the 30-day history)"
    )


def bench_storage(count: int = 5) -> None:
    from coordinator_core.db.engine import get_engine

    url = create_database()
    try:
        run(url, "coordinator_core.games.crunch_synth:contract_24h", trackers(count), 1.0)
        with get_engine(url).connect() as c:
            rows, json_bytes, stored, heap, total = c.execute(
                text(
                    "SELECT count(*), avg(octet_length(inference_output_jsonb::text)), avg(pg_column_size(inference_output_jsonb)), "
                    "pg_relation_size('predictions') / count(*), pg_total_relation_size('predictions') / count(*) "
                    "FROM predictions WHERE status <> 'FAILED'"
                )
            ).one()
        get_engine(url).dispose()
    finally:
        drop_database(url)
    print(
        f"  density paths of the 24 h preset (317 densities each), {rows} predictions on Postgres: "
        f"{float(json_bytes):,.0f} B of JSON, stored {float(stored):,.0f} B (TOAST, compressed); predictions table: "
        f"{heap:,} B of heap per row (what status updates rewrite), {total:,} B in all per row"
    )


def main() -> None:
    quick = "--quick" in sys.argv
    print("A real game on Postgres:")
    bench_storage()
    bench_backtest(1.0 if quick else 7.0)


if __name__ == "__main__":
    main()
