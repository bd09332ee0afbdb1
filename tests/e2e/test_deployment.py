"""The real deployment path, end to end: a Prefect server on the Postgres at 127.0.0.1:5432 (its
own database), a process work pool, ``prefect deploy --all`` from this clone without
``COORDINATOR_HOME``, a worker started in another directory, and a run of every scheduled
deployment through ``run_deployment``; each run must complete and leave its rows in the
coordinator's database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from coordinator_core.db.engine import get_engine
from coordinator_core.db.migrate import upgrade
from tests import pg
from tests.conftest import PROJECT_DIR

pytestmark = [pytest.mark.postgres, pytest.mark.prefect]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def prefect_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    prefect_db = pg.create_database("prefect", driver="postgresql+asyncpg")
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    database = home / "coordinator.db"
    upgrade(f"sqlite:///{database}")
    # no COORDINATOR_HOME anywhere: a bare `prefect deploy --all` from the clone must make runs
    # execute in the clone, even on a worker started in another directory
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "COORDINATOR_HOME"}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_db,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
            "DATABASE_URL": f"sqlite:///{database}",
            "MODELS_DIR": str(PROJECT_DIR / "examples" / "models"),
        }
    )
    # The scheduler service is off: its wall-clock runs (as_of = now, in 2026) would otherwise race
    # the test's runs on 2019 data and rightly give up rounds whose exit price never comes.
    server_env = {**env, "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=server_env,
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the Prefect server did not answer /api/health within 120 s"
            assert server.poll() is None, "the Prefect server exited"
            time.sleep(0.5)
        run([str(BIN / "prefect"), "work-pool", "create", "coordinator", "--type", "process"], env, home)
        run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], env, PROJECT_DIR)
        worker = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", "coordinator", "--limit", "4"],
            env=env,
            cwd=home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield {**env, "TEST_COORDINATOR_DB": str(database)}
    finally:
        for process in (worker, server):
            if process is not None:
                process.send_signal(2)  # SIGINT stops a worker promptly (SIGTERM lingers)
        for process in (worker, server):
            if process is not None:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


RUNNER = """
import json, sys
from prefect.deployments import run_deployment
name, parameters = sys.argv[1], json.loads(sys.argv[2])
flow_run = run_deployment(name, parameters=parameters, timeout=300)
print(json.dumps({"state": flow_run.state.type.value, "message": flow_run.state.message}))
"""


def run_deployment(env: dict[str, str], name: str, **parameters: str) -> dict[str, str]:
    out = run([sys.executable, "-c", RUNNER, name, json.dumps(parameters)], env, Path(env["PREFECT_HOME"]), timeout=400)
    return json.loads(out.strip().splitlines()[-1])


def count(env: dict[str, str], table: str) -> int:
    with get_engine(f"sqlite:///{env['TEST_COORDINATOR_DB']}").connect() as connection:
        return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_every_scheduled_deployment_runs_on_a_worker_and_leaves_its_rows(prefect_stack) -> None:
    env = prefect_stack
    listed = run([str(BIN / "prefect"), "deployment", "ls"], env, Path(env["PREFECT_HOME"]))
    for name in ("ingest-feed", "predict-round", "score-predictions", "build-checkpoint", "backfill-feed", "backtest"):
        assert name in listed
    inspected = run(
        [str(BIN / "prefect"), "deployment", "inspect", "build-checkpoint/build-checkpoint"],
        env,
        Path(env["PREFECT_HOME"]),
    )
    assert "0 0 * * 1" in inspected  # the weekly cron reached the server

    sunday = "2019-10-13T22:00:00+00:00"
    assert run_deployment(env, "ingest-feed/ingest-feed", as_of=sunday)["state"] == "COMPLETED"
    assert count(env, "feed_records") > 100
    assert run_deployment(env, "predict-round/predict-round", as_of=sunday)["state"] == "COMPLETED"
    assert count(env, "predictions") == 12
    assert run_deployment(env, "ingest-feed/ingest-feed", as_of="2019-10-13T23:00:00+00:00")["state"] == "COMPLETED"
    assert (
        run_deployment(env, "score-predictions/score-predictions", as_of="2019-10-13T23:00:00+00:00")["state"]
        == "COMPLETED"
    )
    assert count(env, "scores") >= 6 and count(env, "leaderboards") == 1
    assert (
        run_deployment(env, "build-checkpoint/build-checkpoint", as_of="2019-10-14T00:00:00+00:00")["state"]
        == "COMPLETED"
    )
    assert count(env, "checkpoints") == 1
