"""prefect.yaml names real flows; the local runner builds a deployment per flow (no server)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_DIR


def test_every_deployment_entrypoint_is_a_flow() -> None:
    config = yaml.safe_load((PROJECT_DIR / "prefect.yaml").read_text())
    names = {d["name"] for d in config["deployments"]}
    assert names == {
        "ingest-feed",
        "predict-round",
        "score-predictions",
        "build-checkpoint",
        "backfill-feed",
        "backtest",
    }
    for deployment in config["deployments"]:
        path, _, attr = deployment["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, attr)
        assert flow.name == deployment["name"]
    scheduled = {d["name"]: d.get("schedules") for d in config["deployments"]}
    assert scheduled["build-checkpoint"][0]["cron"] == "0 0 * * 1"
    assert scheduled["backtest"] is None and scheduled["backfill-feed"] is None
    limits = {d["name"]: d.get("concurrency_limit") for d in config["deployments"]}
    assert limits["score-predictions"] == 1 and limits["build-checkpoint"] == 1


# -- where deployed runs execute (COORDINATOR_HOME) -------------------------------------------------
#
# `prefect deploy` (prefect/cli/deploy/_core.py, _run_single_deploy) runs the `build:` steps with
# run_steps, then stores `apply_values(pull_steps, step_outputs, remove_notset=False)`; a worker
# runs the stored pull steps with run_steps again, whose run_step applies `os.environ` to them
# (prefect/deployments/steps/core.py). These tests take the same path without a server: block and
# variable placeholders would need an API, and prefect.yaml uses none (asserted below).


def _identity_resolvers(monkeypatch):
    from prefect.deployments.steps import core

    async def identity(value, *args, **kwargs):
        return value

    monkeypatch.setattr(core, "resolve_block_document_references", identity)
    monkeypatch.setattr(core, "resolve_variables", identity)


def _stored_pull_steps(monkeypatch) -> list:
    import asyncio

    from prefect.deployments.steps.core import run_steps
    from prefect.utilities.templating import apply_values

    config = yaml.safe_load((PROJECT_DIR / "prefect.yaml").read_text())
    assert "prefect.blocks." not in str(config) and "prefect.variables." not in str(config)
    _identity_resolvers(monkeypatch)
    outputs = asyncio.run(run_steps(config["build"], {}, print_function=lambda *a, **k: None))
    return apply_values(config["pull"], outputs, remove_notset=False)


def test_deploy_without_coordinator_home_runs_in_the_clone(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("COORDINATOR_HOME", raising=False)
    monkeypatch.chdir(PROJECT_DIR)  # where `prefect deploy --all` runs (entrypoints are relative to it)
    assert _stored_pull_steps(monkeypatch) == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_DIR)}}
    ]


def test_deploy_with_coordinator_home_runs_there(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("COORDINATOR_HOME", "/srv/coordinator")
    assert _stored_pull_steps(monkeypatch) == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/srv/coordinator"}}
    ]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COORDINATOR_HOME", "clone")  # relative: to the directory prefect deploy runs in
    [step] = _stored_pull_steps(monkeypatch)
    assert step["prefect.deployments.steps.set_working_directory"]["directory"] == str(tmp_path / "clone")


def test_a_worker_without_coordinator_home_enters_the_clone(monkeypatch, tmp_path) -> None:
    import asyncio

    from prefect.deployments.steps.core import run_steps

    monkeypatch.delenv("COORDINATOR_HOME", raising=False)
    monkeypatch.chdir(PROJECT_DIR)
    stored = _stored_pull_steps(monkeypatch)
    monkeypatch.chdir(tmp_path)  # the worker was started elsewhere, without COORDINATOR_HOME
    asyncio.run(run_steps(stored, {}, print_function=lambda *a, **k: None))
    assert Path.cwd() == PROJECT_DIR


def test_the_old_template_left_runs_without_a_directory(monkeypatch) -> None:
    """Why: `{{ $COORDINATOR_HOME }}` unset at deploy time was stored as is, and became "" on a
    worker without the variable (os.chdir("") fails: the run cannot find its code)."""
    from prefect.utilities.templating import apply_values

    monkeypatch.delenv("COORDINATOR_HOME", raising=False)
    old = [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $COORDINATOR_HOME }}"}}]
    stored = apply_values(old, {}, remove_notset=False)
    assert stored == old
    assert apply_values(stored[0], dict(os.environ)) == {
        "prefect.deployments.steps.set_working_directory": {"directory": ""}
    }


def test_the_build_step_refuses_outside_a_clone(monkeypatch, tmp_path) -> None:
    from deployments import steps

    monkeypatch.delenv("COORDINATOR_HOME", raising=False)
    monkeypatch.setattr(steps, "CLONE", tmp_path)  # e.g. a non-editable install in site-packages
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="set COORDINATOR_HOME to the clone the workers run the flows from"):
        steps.coordinator_home()
