"""``coordinator serve`` as a newcomer runs it: within five minutes the Prefect UI lists every
deployment on its schedule, the report API answers, and scored rounds reach the leaderboard;
Ctrl-C leaves nothing running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from coordinator_core.db.engine import get_engine
from tests.conftest import PROJECT_DIR

pytestmark = pytest.mark.prefect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_schedules_everything_scores_rounds_and_stops_cleanly(tmp_path: Path) -> None:
    ui_port, api_port = free_port(), free_port()
    database = tmp_path / "live.db"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "API_PORT": str(api_port),
            "PREFECT_HOME": str(tmp_path / "home"),
            "MODELS_DIR": str(PROJECT_DIR / "examples" / "models"),
        }
    )
    started = time.monotonic()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "coordinator"), "serve", "--ui-port", str(ui_port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deployments: list[str] = []
        boards = 0
        while time.monotonic() - started < 420 and not (len(deployments) == 6 and boards):
            time.sleep(5)
            assert process.poll() is None, "coordinator serve exited early"
            try:
                answer = httpx.post(f"http://127.0.0.1:{ui_port}/api/deployments/filter", json={}, timeout=5)
                deployments = sorted(d["name"] for d in answer.json())
            except (httpx.HTTPError, ValueError):
                continue
            if database.exists():
                with get_engine(f"sqlite:///{database}").connect() as connection:
                    try:
                        boards = connection.execute(text("SELECT count(*) FROM leaderboards")).scalar_one()
                    except Exception:
                        boards = 0
        assert deployments == [
            "backfill-feed",
            "backtest",
            "build-checkpoint",
            "ingest-feed",
            "predict-round",
            "score-predictions",
        ]
        assert boards >= 1, "no scored round reached the leaderboard within seven minutes"
        assert httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=5).status_code == 200  # the UI
        assert httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=5).json()["status"] == "ok"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    time.sleep(1)
    assert not listening(ui_port) and not listening(api_port), "something kept running after Ctrl-C"
    leftovers = subprocess.run(["pgrep", "-s", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], f"processes left in the session: {leftovers}"
