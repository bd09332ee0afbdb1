"""``coordinator init NAME``: a workspace in which ``make test`` and ``make demo`` work at once,
run as a designer would (subprocesses, the workspace's own Makefile and ``.local.env``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_cli import COORDINATOR

FILES = {
    ".local.env",
    ".gitignore",
    "Makefile",
    "README.md",
    "contract.py",
    "scoring.py",
    "configs.json",
    "data/btc_usd_1h.csv",
    "tests/test_contract.py",
    *(f"models/{m}/{f}" for m in ("momentum", "mean_reversion", "last_move") for f in ("main.py", "model.json")),
}


def clean_env(**extra: str) -> dict[str, str]:
    """The user's environment without the suite's settings (the workspace's .local.env decides)."""
    from coordinator_core.config import Settings

    names = {name.upper() for name in Settings.model_fields}
    return {**{k: v for k, v in os.environ.items() if k not in names}, "COLUMNS": "200", **extra}


def init(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COORDINATOR, "init", *args], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120
    )


def make(workspace: Path, target: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", target], cwd=workspace, env=clean_env(**env), capture_output=True, text=True, timeout=timeout
    )


def test_init_writes_the_workspace_and_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    result = init(tmp_path, "my-comp", "--path", "out")
    assert result.returncode == 0, result.stdout + result.stderr
    workspace = tmp_path / "out" / "my-comp"
    written = {str(p.relative_to(workspace)) for p in workspace.rglob("*") if p.is_file()}
    assert written == FILES
    env = (workspace / ".local.env").read_text()
    assert "CRUNCH_CONTRACT=contract:contract" in env and "DATABASE_URL=sqlite:///./my-comp.db" in env
    assert "{{" not in (workspace / "Makefile").read_text()
    again = init(tmp_path, "my-comp", "--path", "out")
    assert again.returncode == 2
    assert f"{workspace} exists and is not empty" in " ".join(again.stdout.split())
    assert init(tmp_path, "../evil").returncode == 2


def test_make_test_passes_in_a_fresh_workspace(tmp_path: Path) -> None:
    assert init(tmp_path, "fresh").returncode == 0
    result = make(tmp_path / "fresh", "test")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "6 passed" in result.stdout


def test_a_broken_scoring_function_fails_make_test(tmp_path: Path) -> None:
    assert init(tmp_path, "stub").returncode == 0
    scoring = tmp_path / "stub" / "scoring.py"
    scoring.write_text(scoring.read_text() + '\n\ndef score(prediction, ground_truth):\n    return {"value": 0.0}\n')
    result = make(tmp_path / "stub", "test")
    assert result.returncode != 0
    assert "ALLOW_CONSTANT_SCORING=true" in result.stdout


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
def test_make_demo_backtests_and_writes_the_report(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    assert init(tmp_path, "demo").returncode == 0
    workspace = tmp_path / "demo"
    result = make(workspace, "demo", DAYS="3", PREFECT_API_URL=str(PREFECT_API_URL.value()))
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "Leaderboard as of 2019-10-17T10:00:00+00:00" in out
    for model in ("momentum", "mean_reversion", "last_move"):
        assert model in out
    reports = list((workspace / "reports").glob("backtest-*.html"))
    assert len(reports) == 1 and f"Report: {reports[0]}" in out.replace("\n", "")
    assert (workspace / "demo.db").is_file()  # the workspace's own database
