"""The ``coordinator`` command, run as a user would, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_MODELS, PROJECT_DIR

COORDINATOR = [sys.executable, "-m", "coordinator_cli.main"]


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "MODELS_DIR": str(EXAMPLE_MODELS),
        "COLUMNS": "200",
        **env,
    }
    return subprocess.run(
        COORDINATOR + args, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600
    )


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "at revision 0007" in result.stdout
    again = run(["db", "upgrade"], tmp_path)
    assert again.returncode == 0 and "at revision 0007" in again.stdout


def test_models_deregister_deregisters_at_once_and_names_an_unknown_id(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from coordinator_core.db.engine import get_engine
    from coordinator_core.db.migrate import upgrade
    from coordinator_core.db.tables import Model
    from coordinator_core.db.uow import SqlUnitOfWork
    from coordinator_core.gateway.base import ModelInfo
    from tests._svc_helpers import rows

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    with SqlUnitOfWork(get_engine(url)) as work:
        infos = [ModelInfo("alive", "alive", "p1", "P1"), ModelInfo("resting", "resting", "p2", "P2", state="STOPPED")]
        work.models.sync(infos, datetime(2026, 1, 1, tzinfo=UTC))
        work.commit()
    result = run(["models", "deregister", "resting"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resting: STOPPED → DEREGISTERED" in result.stdout
    states = {m["id"]: m["state"] for m in rows(get_engine(url), Model)}
    assert states == {"alive": "RUNNING", "resting": "DEREGISTERED"}
    again = run(["models", "deregister", "resting"], tmp_path)
    assert again.returncode == 0 and "already DEREGISTERED" in again.stdout
    running = run(["models", "deregister", "alive"], tmp_path)
    assert running.returncode == 0 and "registers it again" in running.stdout
    unknown = run(["models", "deregister", "nobody"], tmp_path)
    assert unknown.returncode == 2 and "no model 'nobody'" in unknown.stdout, unknown.stdout + unknown.stderr
    assert {m["id"]: m["state"] for m in rows(get_engine(url), Model)} == {
        "alive": "DEREGISTERED",
        "resting": "DEREGISTERED",
    }


def test_bad_setting_fails_at_start_naming_the_variable(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], tmp_path, FEED_GRANULARITY="7x")
    assert result.returncode == 2
    assert "FEED_GRANULARITY" in result.stdout and "7x" in result.stdout


def test_bad_time_is_a_usage_error(tmp_path: Path) -> None:
    result = run(["backtest", "--start", "yesterday"], tmp_path)
    assert result.returncode == 2
    assert "--start" in result.stderr + result.stdout


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
def test_backtest_command_end_to_end(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    result = run(
        ["backtest", "--start", "2019-10-05T00:00:00Z", "--end", "2019-10-08T06:00:00Z"],
        tmp_path,
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Leaderboard as of 2019-10-08T06:00:00+00:00" in out
    # the metric columns, as a second table over the ranking window (domain.metrics)
    assert "Leaderboard metrics as of 2019-10-08T06:00:00+00:00, metrics over score_recent (24 h)" in out
    for column in ("coverage", "mean_ci_low", "mean_ci_high", "hit_rate", "sharpe", "max_drawdown"):
        assert column in out
    for model in ("momentum", "mean_reversion", "noisy", "flaky", "sloppy", "slow"):
        assert model in out
    assert "Emission checkpoint CKP_20191007_000000" in out
    assert "shares sum to 1,000,000,000" in out
    for column in ("score_recent (24 h)", "reward (frac64)", "reward %", "participant_id"):
        assert column in out
    assert "up to date" not in out
    report = tmp_path / "reports" / "backtest-20191005T000000-20191008T060000.html"  # the default: per window
    assert f"Report: {report} (rendered in " in out.replace("\n", "")
    assert report.is_file() and report.read_text().count('<img alt="') == 3
    again = run(
        ["backtest", "--start", "2019-10-05T00:00:00Z", "--end", "2019-10-08T06:00:00Z", "--report", "mine.html"],
        tmp_path,
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
    )
    assert again.returncode == 0 and "up to date" in again.stdout, again.stdout[-3000:]
    assert f"Report: {tmp_path / 'mine.html'}" in again.stdout.replace("\n", "")
    assert (PROJECT_DIR / "README.md").exists()


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
def test_demo_game_tournament_backtests_the_shipped_tournament_contract(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    result = run(
        ["demo", "--game", "tournament", "--days", "10"],
        tmp_path,
        MODELS_DIR=str(PROJECT_DIR / "examples" / "tournament"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'tournament.db'}",
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    # 11 daily eras (2026-01-05 .. 01-15), three models each; eras resolve three days later
    assert "'rounds': 11, 'predictions': 33" in out
    assert "Leaderboard as of 2026-01-15T00:00:00+00:00" in out
    for model in ("linear", "first_feature", "noise"):
        assert model in out
    assert "Emission checkpoint CKP_" in out and "shares sum to 1,000,000,000" in out
