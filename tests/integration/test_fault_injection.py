"""Crash consistency: kill the process at a chosen SQL statement or commit, re-run, compare.

Each case runs a scenario of ``fault_driver`` (the four flows' services hour by hour, or the
backtest's steps) in a subprocess that ends itself with ``os._exit(137)`` at point ``N`` (the Nth
statement or commit of the run: no rollback, no ``finally``, no connection close), then runs the
same scenario again, from its first step, to completion in a fresh process, and compares the
database with the one a clean run leaves: every table, every row sorted by its natural key, every
column but the few listed in ``EXCLUDED``. Zero differences are allowed.

The kill points are named by where they fall (``KILL_POINTS``): inside and between every
transaction of scoring (each batch, the derived refresh, the gap between a batch's commit and the
refresh), before and after the model calls of a round, inside the checkpoint build, inside an
ingest page and between pages, inside a backtest step. They are found in the trace of the clean
run by what each point is (service, part, transaction, statement), so a change of the services'
statements moves a point with them, or fails the test when a named place no longer exists.

``FAULT_INJECTION_EVERY=K`` adds a case at every Kth point of both scenarios (``1``: all of
them, about 40 minutes).

One Postgres database per scenario (``tests.pg``), emptied between cases; the clean dump is made
once per scenario and checked twice: a second clean run gives the same dump (the scenario is
deterministic) and a third run over the finished database changes nothing.
"""

from __future__ import annotations

import json
import math
import os
import select as io_select
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from coordinator_core.db.engine import get_engine
from coordinator_core.db.migrate import upgrade
from coordinator_core.db.tables import (
    Checkpoint,
    DerivedDirty,
    FeedIngestionState,
    FeedRecord,
    Input,
    Leaderboard,
    Model,
    Prediction,
    ScheduledPredictionConfigRow,
    Score,
    Snapshot,
)
from tests import pg
from tests.conftest import EXAMPLE_MODELS, PROJECT_DIR

pytestmark = pytest.mark.postgres

KILLED = 137
DETERMINISTIC_MODELS = (
    "flaky",
    "mean_reversion",
    "momentum",
    "noisy",
    "sloppy",
)  # not "slow": its timeouts depend on load
RUN_TIMEOUT = 180

# Every table, sorted by its natural key (never a surrogate id).
NATURAL_KEYS: dict[Any, tuple[str, ...]] = {
    FeedRecord: ("source", "subject", "kind", "granularity", "ts_event"),
    FeedIngestionState: ("source", "subject", "kind", "granularity"),
    ScheduledPredictionConfigRow: ("scope_key",),
    Model: ("id",),
    Input: ("prediction_config_id", "round_at"),
    Prediction: ("input_id", "model_id"),
    Score: ("prediction_id",),
    Snapshot: ("model_id", "period_start"),
    Checkpoint: ("period_end",),
    Leaderboard: ("created_at",),
    DerivedDirty: ("kind", "period_start"),
}
# Columns that legitimately differ between two correct runs.
EXCLUDED = {
    # a serial: a killed transaction's INSERT has drawn values that are never reused (sequences
    # are not transactional), so the re-run's rows get higher ids; nothing refers to them
    "feed_records": {"id"},
    # the measured duration of each model call, in milliseconds: wall-clock time
    "predictions": {"exec_time_ms"},
}


# -- the scenario in a subprocess ----------------------------------------------------------------------
class Driver:
    """``fault_driver --serve``: one warm process forking a child per run (imports paid once)."""

    def __init__(self, log: Path) -> None:
        self.log_path = log
        self.log = log.open("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.fault_driver", "--serve"],
            cwd=PROJECT_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )

    def run(self, args: list[str]) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        start = self.log_path.stat().st_size
        self.process.stdin.write(json.dumps(args) + "\n")
        self.process.stdin.flush()
        ready, _, _ = io_select.select([self.process.stdout], [], [], RUN_TIMEOUT)
        if not ready:
            raise AssertionError(f"driver {args} did not finish in {RUN_TIMEOUT} s")
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"the driver server died:\n{self.log_path.read_text()[-3000:]}")
        code = int(json.loads(line)["rc"])
        if code not in (0, KILLED):
            with self.log_path.open() as log:
                log.seek(start)
                raise AssertionError(f"driver {args} exited {code}:\n{log.read()[-3000:]}")
        return code

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.log.close()


def driver_args(
    scenario: str, url: str, models: Path, kill_at: int | None = None, trace: Path | None = None, from_step: int = 0
) -> list[str]:
    args = ["--scenario", scenario, "--database-url", url, "--models-dir", str(models), "--from-step", str(from_step)]
    if kill_at is not None:
        args += ["--kill-at", str(kill_at)]
    if trace is not None:
        args += ["--trace", str(trace)]
    return args


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def dump(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows as plain values, sorted by natural key, without the excluded columns."""
    out: dict[str, list[dict[str, Any]]] = {}
    with get_engine(url).connect() as connection:
        for model, key in NATURAL_KEYS.items():
            table = model.__table__
            skip = EXCLUDED.get(table.name, set())
            columns = [c for c in table.columns if c.name not in skip]
            rows = connection.execute(select(*columns).order_by(*[table.c[k] for k in key])).mappings().all()
            out[table.name] = [{k: _plain(v) for k, v in row.items()} for row in rows]
    return out


@dataclass(frozen=True)
class Difference:
    table: str
    key: tuple[Any, ...]
    column: str  # "(row)" when the whole row is extra or missing
    got: Any
    clean: Any

    def __str__(self) -> str:
        if self.column == "(row)":
            return f"{self.table} {self.key}: " + ("missing row" if self.got is None else f"extra row {self.got}")
        return f"{self.table} {self.key}: {self.column} = {self.got!r}, clean run: {self.clean!r}"


def differences(expected: dict[str, list[dict[str, Any]]], got: dict[str, list[dict[str, Any]]]) -> list[Difference]:
    """Every difference, table by table and row by natural key."""
    found: list[Difference] = []
    for model, key in NATURAL_KEYS.items():
        name = model.__table__.name
        want = {tuple(r[k] for k in key): r for r in expected[name]}
        have = {tuple(r[k] for k in key): r for r in got[name]}
        for row_key in sorted(set(want) | set(have), key=repr):
            a, b = want.get(row_key), have.get(row_key)
            if a is None or b is None:
                found.append(Difference(name, row_key, "(row)", b, a))
                continue
            found += [Difference(name, row_key, c, b[c], a[c]) for c in a if a[c] != b[c]]
    return found


def empty(url: str) -> None:
    names = ", ".join(model.__table__.name for model in NATURAL_KEYS)
    with get_engine(url).begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


# -- kill points -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KillPoint:
    """The first point of the clean trace matching ``where`` (``sql``: the statement starts so); or,
    with ``models``, the last point before (``"before"``) or the first after (``"after"``) the model
    calls of step ``where["step"]``. The process dies *at* the point: that statement (or commit) is
    never sent, everything before it was."""

    name: str
    scenario: str
    where: dict[str, Any] = field(default_factory=dict)
    models: str | None = None

    def find(self, trace: dict[str, Any]) -> int:
        if self.models is not None:
            calls = [c for c in trace["model_calls"] if c["step"] == self.where["step"]]
            assert calls, f"{self.name}: no model call at step {self.where['step']}"
            return int(calls[0]["before"]) - 1 if self.models == "before" else int(calls[-1]["before"])
        for point in trace["points"]:
            if all(point[k].startswith(v) if k == "sql" else point[k] == v for k, v in self.where.items()):
                return int(point["i"])
        raise AssertionError(f"kill point {self.name}: nothing in the {self.scenario} trace matches {self.where}")

    def step(self, trace: dict[str, Any]) -> int:
        return int(trace["points"][self.find(trace)]["step"])


def at(name: str, scenario: str, models: str | None = None, **where: Any) -> KillPoint:
    return KillPoint(name, scenario, where, models)


# Live scenario: steps 0..6 are 2019-10-06T20:00Z .. 2019-10-07T02:00Z. Step 0's ingest reads three
# pages; step 1 scores one round; step 4 (Monday 00:00) scores two rounds in two batches
# (SCORE_BATCH_SIZE=1), refreshes the derived tables and writes the week's checkpoint.
# Backtest scenario: steps 0..5 are 2019-10-13T21:00Z .. 2019-10-14T02:00Z, in chunks of three hours.
LIVE, BACKTEST = "live", "backtest"
KILL_POINTS = [
    # ingest (each page is one transaction: records + watermark)
    at("ingest: at the first statement of the run", LIVE, step=0, service="ingest", tx=1, n=0),
    at("ingest page 1: records inserted, before the watermark", LIVE, step=0, service="ingest", tx=2, n=1),
    at("ingest page 1: watermark inserted, before its commit", LIVE, step=0, service="ingest", tx=2, kind="commit"),
    at("ingest: page 1 committed, before page 2", LIVE, step=0, service="ingest", tx=3, n=0),
    at("ingest page 2: watermark advanced, before its commit", LIVE, step=0, service="ingest", tx=3, kind="commit"),
    at("ingest: page 2 committed, before page 3", LIVE, step=0, service="ingest", tx=4, n=0),
    at("ingest: hourly poll, record inserted, before the watermark", LIVE, step=3, service="ingest", tx=2, n=1),
    at("prune: before its commit", LIVE, step=1, service="prune", kind="commit"),
    at("seed configs: upserted, before the deactivation", LIVE, step=1, service="seed", n=1),
    # predict (reads, then the model calls outside any transaction, then one write transaction)
    at("predict: before the check for existing rounds", LIVE, step=2, service="predict", sql="SELECT inputs.id"),
    at("predict: reads done, before the model calls", LIVE, models="before", step=2),
    at("predict: models called, before any write", LIVE, models="after", step=2),
    # the sync's UPDATE reads the models away after it (one statement); inputs and predictions go together
    at("predict: models read, before the sync's update", LIVE, step=2, service="predict", sql="WITH changed AS"),
    at("predict: models synced, before the rounds", LIVE, step=2, service="predict", sql="WITH batch_0 AS"),
    at("predict: everything written, before the commit", LIVE, step=2, service="predict", kind="commit"),
    # score: one batch (step 1)
    at("score: before the first batch's lock", LIVE, step=1, service="score", part="batch", tx=1, n=0),
    at("score: before the ground truth read", LIVE, step=1, service="score", part="batch", sql="WITH q AS ("),
    at("score: inputs resolved, before reading predictions", LIVE, step=1, service="score", sql="SELECT predictions"),
    at("score: statuses set, before the scores", LIVE, step=1, service="score", sql="INSERT INTO scores"),
    at("score: scores inserted, before the work owed", LIVE, step=1, service="score", sql="INSERT INTO derived"),
    at("score: batch complete, before its commit", LIVE, step=1, service="score", part="batch", kind="commit"),
    # score: two batches and the refresh (step 4)
    at("score: batch 1 of 2 committed, before batch 2", LIVE, step=4, service="score", tx=2, n=0),
    at(
        "score: batch 2 scored, before its work owed",
        LIVE,
        step=4,
        service="score",
        tx=2,
        sql="INSERT INTO d",
    ),
    at("score: batch 2, before its commit", LIVE, step=4, service="score", tx=2, kind="commit"),
    at("score: batches committed, before the refresh", LIVE, step=4, service="score", part="refresh", n=0),
    at("score refresh: before the snapshot rebuild", LIVE, step=4, part="refresh", sql="INSERT INTO snap"),
    at("score refresh: snapshots rebuilt, before clearing", LIVE, step=4, part="refresh", sql="DELETE"),
    at(
        "score refresh: before the leaderboard",
        LIVE,
        step=4,
        part="refresh",
        sql="INSERT INTO leaderboards",
    ),
    at(
        "score refresh: leaderboard written, before the scores",
        LIVE,
        step=4,
        sql="UPDATE models SET overall",
    ),
    at("score refresh: before clearing the leaderboard work", LIVE, step=4, service="score", n=13),
    at("score refresh: before its commit", LIVE, step=4, service="score", part="refresh", kind="commit"),
    # checkpoint (step 4 crosses Monday 00:00)
    at("checkpoint: before its own refresh of work owed", LIVE, step=4, service="checkpoint", part="refresh", n=0),
    at("checkpoint: before the period's ranking", LIVE, step=4, service="checkpoint", sql="SELECT snapshots.model_id"),
    at("checkpoint: ranked, before the row", LIVE, step=4, service="checkpoint", sql="INSERT INTO checkpoints"),
    at("checkpoint: row inserted, before its commit", LIVE, step=4, service="checkpoint", part="build", kind="commit"),
    at("checkpoint committed, before the next step", LIVE, step=5, service="ingest", n=0),
    # backtest
    at("backtest: seeding the configs, before its commit", BACKTEST, step=-1, service="seed", kind="commit"),
    at(
        "backtest step 0: before the first watermark", BACKTEST, step=0, service="ingest", sql="INSERT INTO feed_ingest"
    ),
    at("backtest step 1: before the predictions", BACKTEST, step=1, service="predict", sql="WITH batch_0 AS"),
    at("backtest step 1: predicted, before scoring", BACKTEST, step=1, service="score", n=0),
    at("backtest step 2: before the scores", BACKTEST, step=2, service="score", sql="INSERT INTO scores"),
    at("backtest step 2: batch committed, before the refresh", BACKTEST, step=2, part="refresh", n=0),
    at("backtest step 2: before the leaderboard", BACKTEST, step=2, sql="INSERT INTO leaderboards"),
    at("backtest: first statement of the second chunk", BACKTEST, step=3, service="ingest", n=0),
    at(
        "backtest step 3: checkpoint, before its commit",
        BACKTEST,
        step=3,
        service="checkpoint",
        part="build",
        kind="commit",
    ),
    at("backtest step 5: last refresh, before its commit", BACKTEST, step=5, part="refresh", kind="commit"),
]


# -- fixtures ----------------------------------------------------------------------------------------
@dataclass
class Scenario:
    name: str
    url: str
    models: Path
    driver: Driver
    trace: dict[str, Any] = field(default_factory=dict)
    clean: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def run(self, kill_at: int | None = None, trace: Path | None = None, from_step: int = 0) -> int:
        """The scenario on this database: 137 when killed, 0 when run to its end."""
        return self.driver.run(driver_args(self.name, self.url, self.models, kill_at, trace, from_step))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fault-models")
    for name in DETERMINISTIC_MODELS:
        shutil.copytree(EXAMPLE_MODELS / name, root / name)
    return root


_SCENARIOS: dict[str, Scenario] = {}


@pytest.fixture(scope="module")
def scenario(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Scenario]]:
    """``scenario(name)``: its own database, the clean run's trace and dump (made once)."""
    pg.require()
    driver = Driver(tmp_path_factory.mktemp("fault-driver") / "stderr.log")

    def get(name: str) -> Scenario:
        if name not in _SCENARIOS:
            url = pg.create_database(f"faults_{name}")
            upgrade(url)
            item = Scenario(name, url, models_dir, driver)
            trace_path = tmp_path_factory.mktemp(f"trace-{name}") / "trace.json"
            assert item.run(trace=trace_path) == 0
            item.trace, item.clean = json.loads(trace_path.read_text()), dump(url)
            _SCENARIOS[name] = item
        return _SCENARIOS[name]

    yield get
    driver.close()
    for item in _SCENARIOS.values():
        pg.drop_database(item.url)
    _SCENARIOS.clear()


# -- tests -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [LIVE, BACKTEST])
def test_clean_runs_are_identical_and_a_rerun_changes_nothing(scenario: Callable[[str], Scenario], name: str) -> None:
    item = scenario(name)
    clean = item.clean
    assert len(clean["checkpoints"]) == 1 and len(clean["scores"]) >= 35 and clean["derived_dirty"] == []
    assert {r["status"] for r in clean["predictions"]} >= {"SCORED", "FAILED"}
    assert item.run() == 0  # over the finished database
    assert differences(clean, dump(item.url)) == []
    empty(item.url)
    assert item.run() == 0  # a second clean run
    assert differences(clean, dump(item.url)) == []


def test_kill_points_are_distinct_and_cover_every_service(scenario: Callable[[str], Scenario]) -> None:
    where = {(p.scenario, p.find(scenario(p.scenario).trace)) for p in KILL_POINTS}
    assert len(where) == len(KILL_POINTS) >= 30
    labels = {(name, scenario(name).trace["points"][i]["service"]) for name, i in where}
    assert {s for name, s in labels if name == LIVE} == {"ingest", "prune", "seed", "predict", "score", "checkpoint"}
    assert {s for name, s in labels if name == BACKTEST} == {"seed", "ingest", "predict", "score", "checkpoint"}
    kinds = {scenario(name).trace["points"][i]["kind"] for name, i in where}
    assert kinds == {"stmt", "commit"}


def _points() -> list[Any]:
    cases = [pytest.param(p, id=f"{p.scenario}: {p.name}") for p in KILL_POINTS]
    every = int(os.environ.get("FAULT_INJECTION_EVERY", "0") or 0)
    if every:  # upper bounds of the scenarios' points; points past a scenario's end are skipped
        for name, count in ((LIVE, 420), (BACKTEST, 280)):
            cases += [pytest.param(at(f"#{n}", name, i=n), id=f"{name}: #{n}") for n in range(0, count, every)]
    return cases


def _kill(item: Scenario, point: KillPoint) -> int:
    try:
        index = point.find(item.trace)
    except AssertionError:
        if "i" in point.where:
            pytest.skip(f"the {point.scenario} scenario has fewer points than {point.where['i']}")
        raise
    empty(item.url)
    assert item.run(kill_at=index) == KILLED
    if "i" not in point.where:  # a named point interrupts something; a swept one may fall in a read-only tail
        assert differences(item.clean, dump(item.url)), "the kill left the clean state: it interrupted nothing"
    return index


def _report(item: Scenario, index: int, found: list[Difference]) -> str:
    return f"killed at point {index} {item.trace['points'][index]}; after the re-run:\n" + "\n".join(
        str(d) for d in found[:40]
    )


@pytest.mark.parametrize("point", _points())
def test_killed_then_rerun_from_the_start_equals_a_clean_run(
    scenario: Callable[[str], Scenario], point: KillPoint
) -> None:
    """The scenario re-run from its first step (a backtest run again) after the kill."""
    item = scenario(point.scenario)
    index = _kill(item, point)
    assert item.run() == 0
    found = differences(item.clean, dump(item.url))
    assert found == [], _report(item, index, found)


@pytest.mark.parametrize("point", [p for p in _points() if p.values[0].where.get("step", 1) > 0])
def test_killed_then_retried_equals_a_clean_run(scenario: Callable[[str], Scenario], point: KillPoint) -> None:
    """The killed step run again (a retry of the killed flow run, same ``as_of``), then the rest."""
    item = scenario(point.scenario)
    index = _kill(item, point)
    first = int(item.trace["points"][index]["step"])
    assert item.run(from_step=first) == 0
    found = differences(item.clean, dump(item.url))
    assert found == [], _report(item, index, found)
