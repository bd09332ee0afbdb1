"""Two backtests of the same inputs give the same results whatever the machine's load: in virtual
time no wall-clock deadline decides a result (a call is waited for up to
BACKTEST_MODEL_TIMEOUT_SECONDS; an answer after the live deadline is kept and flagged ``late``).

The example models include ``slow``, which takes 1.3 s (past the live deadline of 1 s) on some
rounds; one backtest runs while two processes keep both cores busy."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import inspect, text

from coordinator_core.bootstrap import build_runtime
from coordinator_core.db.engine import get_engine
from coordinator_core.db.migrate import upgrade
from coordinator_core.services import backtest
from tests.conftest import EXAMPLE_MODELS

START = datetime(2019, 10, 6, 4, tzinfo=UTC)  # the slow model sleeps on the 1 h round of 11:00 (epoch hour % 40 == 11)
END = START + timedelta(hours=12)
VOLATILE = {"exec_time_ms"}  # measurements, not results


def _dump(url: str) -> dict[str, list[Any]]:
    engine = get_engine(url)
    out = {}
    with engine.connect() as c:
        for table in sorted(inspect(engine).get_table_names()):
            if table == "alembic_version":
                continue
            columns = [col["name"] for col in inspect(engine).get_columns(table) if col["name"] not in VOLATILE]
            rows = []
            for row in c.execute(
                text(f"SELECT {', '.join(chr(34) + x + chr(34) for x in columns)} FROM {table}")
            ).all():
                record = dict(zip(columns, row, strict=True))
                if table == "predictions" and record.get("meta_jsonb"):
                    meta = (
                        record["meta_jsonb"]
                        if isinstance(record["meta_jsonb"], dict)
                        else json.loads(record["meta_jsonb"])
                    )
                    meta.pop("late", None)  # a flag of timing; its answer is kept the same either way
                    record["meta_jsonb"] = meta
                rows.append(json.dumps(record, sort_keys=True, default=str))
            out[table] = sorted(rows)
    return out


def _backtest(url: str) -> None:
    upgrade(url)
    rt = build_runtime(database_url=url, models_dir=str(EXAMPLE_MODELS), crunch_contract=None)
    try:
        backtest.prepare(rt, START)
        backtest.run_steps(rt, list(backtest.virtual_times(START, END, 3600)))
    finally:
        rt.close()


def test_two_backtests_one_under_cpu_load_give_identical_results(tmp_path) -> None:
    calm = f"sqlite:///{tmp_path / 'calm.db'}"
    loaded = f"sqlite:///{tmp_path / 'loaded.db'}"
    _backtest(calm)
    with get_engine(calm).connect() as c:
        late = c.execute(text("SELECT model_id, meta_jsonb FROM predictions WHERE meta_jsonb LIKE '%late%'")).all()
    assert [m for m, _ in late] == ["slow"]  # past the live deadline, and scored all the same
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        _backtest(loaded)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    first, second = _dump(calm), _dump(loaded)
    assert first["predictions"] and first == second
    slow = [json.loads(r) for r in first["predictions"] if json.loads(r)["model_id"] == "slow"]
    assert slow and all(p["status"] == "PENDING" or p["status"] == "SCORED" for p in slow)  # never a TIMEOUT now
