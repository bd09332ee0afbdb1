"""Ensembles, contribution and clone clusters in the running system, on SQLite and Postgres: a
backtest of the six example models plus an exact copy and a lagged copy of ``momentum`` (two other
participants) under a contract with a mean ensemble.

* the ensemble is one more prediction of every round (the mean of the validated answers), scored,
  shown on the leaderboard as a virtual row with no rank, and never paid;
* every row shows a contribution; the checkpoints cluster the two copies with their original
  (evidence stored and served by the API), the honest models stay apart, and a cluster's members
  share one slot;
* a re-run of the same steps writes no row.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from coordinator_core.contract import ClusterRule, EnsembleSpec
from coordinator_core.emission import FRAC64_TOTAL
from coordinator_core.services import backtest
from tests._svc_helpers import utc
from tests.conftest import EXAMPLE_MODELS, PROJECT_DIR
from tests.integration.test_api_support import Dataset, make_client

START = utc(2019, 10, 1)
DAYS = 5
HONEST = ("momentum", "mean_reversion", "noisy", "flaky", "sloppy", "slow")
CLONES = PROJECT_DIR / "examples" / "clones"  # copycat: momentum exactly; laggard: momentum two rounds late


def models_dir(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    for name in HONEST:
        shutil.copytree(EXAMPLE_MODELS / name, models / name)
    for name in ("copycat", "laggard"):
        shutil.copytree(CLONES / name, models / name)
    return models


def loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def utc_of(value: Any) -> datetime:
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def counts(rt: Any) -> dict[str, int]:
    with rt.engine.connect() as c:
        return {
            t: int(c.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one())
            for t in ("inputs", "predictions", "scores", "snapshots", "checkpoints")
        }


def test_ensemble_contribution_and_clone_clusters_in_a_backtest(db_url: str, make_runtime: Any, tmp_path: Path) -> None:
    rt = make_runtime(models_dir=str(models_dir(tmp_path)), checkpoint_interval_seconds=2 * 86_400)
    rt.contract = rt.contract.model_copy(
        update={
            "ensembles": [EnsembleSpec(name="mean", kind="mean")],
            "clusters": ClusterRule(threshold=0.99, max_lag=3, min_overlap=36),
        }
    )
    backtest.prepare(rt, START)
    times = list(backtest.virtual_times(START, START + timedelta(days=DAYS), 3600))
    backtest.run_steps(rt, times)

    with rt.engine.connect() as c:
        rounds = c.execute(text("SELECT id FROM inputs")).scalars().all()
        ensemble = c.execute(
            text("SELECT input_id, status, inference_output_jsonb FROM predictions WHERE model_id = 'ensemble:mean'")
        ).all()
        members = c.execute(
            text(
                "SELECT input_id, inference_output_jsonb FROM predictions "
                "WHERE model_id <> 'ensemble:mean' AND status IN ('SCORED', 'PENDING')"
            )
        ).all()
        board = loads(c.execute(text("SELECT entries_jsonb FROM leaderboards ORDER BY created_at DESC")).first()[0])
        checkpoints = c.execute(text("SELECT id, entries_jsonb, meta_jsonb FROM checkpoints ORDER BY id")).all()
        momentum = dict(c.execute(text("SELECT input_id, status FROM predictions WHERE model_id = 'momentum'")).all())
        configs = c.execute(text("SELECT scope_key FROM scheduled_prediction_configs")).mappings().all()
        registry = c.execute(text("SELECT state, player_id FROM models WHERE id = 'ensemble:mean'")).one()
    # one ensemble prediction per round: the mean of the round's validated answers
    assert len(rounds) > 200 and sorted(i for i, _, _ in ensemble) == sorted(rounds)
    # scored like a model: resolved rounds SCORED, the last ones still waiting, as momentum's
    assert {i: s for i, s, _ in ensemble} == momentum and "SCORED" in momentum.values()
    answers: dict[str, list[float]] = {}
    for input_id, output in members:
        answers.setdefault(input_id, []).append(loads(output)["value"])
    for input_id, _, output in ensemble[:50]:
        values = answers[input_id]
        assert loads(output)["value"] == pytest.approx(sum(values) / len(values), rel=1e-12)
    assert registry.state == "VIRTUAL"

    # the leaderboard: paid models ranked 1..8 among themselves, then the virtual row
    paid = [e for e in board if not e.get("virtual")]
    (virtual,) = [e for e in board if e.get("virtual")]
    assert sorted(e["rank"] for e in paid) == list(range(1, 9))
    assert virtual["model_id"] == "ensemble:mean" and "rank" not in virtual and virtual["player_id"] is None
    assert virtual["metrics"]["score_recent"] is not None and virtual["contribution"] is None
    assert all("contribution" in e for e in paid)
    assert sum(1 for e in paid if e["contribution"] is not None) >= 6

    # checkpoints: the ensemble is never paid; the copies are clustered with momentum only
    assert len(checkpoints) >= 2
    clustered_once = False
    for _, entries, meta in checkpoints:
        emission, meta = loads(entries)[0], loads(meta)
        paid_models = {r["model_id"] for r in emission["model_rewards"]}
        assert "ensemble:mean" not in paid_models
        assert all(r["cruncher_id"] for r in emission["cruncher_rewards"])
        assert sum(r["reward_pct"] for r in emission["cruncher_rewards"]) == FRAC64_TOTAL
        assert all(e["model_id"] != "ensemble:mean" for e in meta["ranking"])
        for cluster in meta["clusters"]["clusters"]:
            assert set(cluster["members"]) <= {"momentum", "copycat", "laggard"}, cluster
        if meta["clusters"]["clusters"]:
            (cluster,) = meta["clusters"]["clusters"]
            clustered_once = True
            assert set(cluster["members"]) == {"momentum", "copycat", "laggard"}
            assert "laggard" in meta["clusters"]["followers"] and "laggard" not in cluster["leaders"]
            lags = {frozenset((p["a"], p["b"])): p["lag"] for p in cluster["pairs"]}
            assert lags[frozenset(("copycat", "momentum"))] == 0
            assert all(p["correlation"] >= 0.99 and p["overlap"] >= 36 for p in cluster["pairs"])
            assert {p["config"] for p in cluster["pairs"]} <= {e["scope_key"] for e in configs}
            shares = {r["model_id"]: r["reward_pct"] for r in emission["model_rewards"]}
            inside = [shares[m] for m in cluster["members"]]
            assert max(inside) - min(inside) <= 1  # one slot, split equally
            slots = {e["model_id"]: e.get("slot") for e in meta["ranking"]}
            assert {slots[m] for m in cluster["members"]} == {cluster["representative"]}
            assert cluster["representative"] in ("momentum", "copycat")
    assert clustered_once

    # from the scoring run after a checkpoint found it on, the follower is out of the baseline
    with rt.engine.connect() as c:
        ends = c.execute(text("SELECT period_end, meta_jsonb FROM checkpoints")).all()
        rows = c.execute(text("SELECT input_id, model_id, prediction_status, value, scored_at FROM scores")).all()
    end = min(utc_of(e) for e, meta in ends if loads(meta)["clusters"]["followers"])
    by_input: dict[str, list[Any]] = {}
    for row in rows:
        by_input.setdefault(row.input_id, []).append(row)
    checked = lagging_worst = 0
    for group in by_input.values():
        if utc_of(group[0].scored_at) <= end + timedelta(hours=1):
            continue  # scored before that checkpoint was built
        valid = {r.model_id: r.value for r in group if r.prediction_status == "SCORED"}
        baseline = min(v for m, v in valid.items() if m not in ("ensemble:mean", "laggard"))
        for r in group:
            if r.prediction_status != "SCORED":
                assert r.value == pytest.approx(baseline), (r.input_id, r.model_id)
                checked += 1
                lagging_worst += valid["laggard"] < baseline
    assert checked > 0 and lagging_worst > 0  # and the follower would have lowered some charges

    # a re-run of the same steps writes nothing
    before = counts(rt)
    backtest.run_steps(rt, times)
    assert counts(rt) == before

    # the API serves the clusters with their evidence, and the virtual row
    checkpoint_id = checkpoints[-1][0]
    with make_client(Dataset("db", db_url, str(tmp_path / "models"))) as client:
        served = client.get(f"/reports/checkpoints/{checkpoint_id}/clusters")
        assert served.status_code == 200, served.text
        body = served.json()
        assert body["checkpoint_id"] == checkpoint_id and body["threshold"] == 0.99
        assert body["clusters"] and set(body["clusters"][0]["members"]) == {"momentum", "copycat", "laggard"}
        assert client.get("/reports/checkpoints/CKP_nope/clusters").status_code == 404
        explained = client.get(f"/reports/checkpoints/{checkpoint_id}/explain", params={"model": "laggard"})
        assert explained.status_code == 200, explained.text
        reward = explained.json()["reward"]
        assert reward["reproduced"] is True and abs(reward["rounding_residue"]) < 1  # the slot's share, split
        assert set(reward["slot"]["members"]) == {"momentum", "copycat", "laggard"}
        rows = client.get("/reports/leaderboard").json()
        assert rows[-1]["model_id"] == "ensemble:mean" and rows[-1]["virtual"] is True and rows[-1]["rank"] is None
        assert rows[-1]["cruncher_id"] is None and rows[-1]["cruncher_name"] == "virtual ensemble"
        assert [r["rank"] for r in rows[:-1]] == list(range(1, 9))
        first, second = client.get("/reports/leaderboard", params={"limit": 5}), None
        assert first.status_code == 200 and len(first.json()) == 5
        second = client.get("/reports/leaderboard", params={"limit": 5, "cursor": first.headers["X-Next-Cursor"]})
        assert [r["model_id"] for r in first.json() + second.json()] == [r["model_id"] for r in rows]
