"""prefect.yaml names real flows; the local runner builds a deployment per flow (no server)."""

from __future__ import annotations

import importlib

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
