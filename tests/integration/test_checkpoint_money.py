"""Money safety of checkpoints on SQLite and Postgres: the stored Merkle root against the stored
rows (any changed score or snapshot breaks it, an untouched proof verifies), and the gate before
money moves (a checkpoint that pays nobody is GATED; a changed score is caught at confirm)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from coordinator_core.db.tables import Checkpoint, Score, Snapshot
from coordinator_core.domain.emission_strategy import ProportionalEmission
from coordinator_core.errors import Conflict
from coordinator_core.merkle import ProofError, verify_proof
from coordinator_core.services import backtest
from coordinator_core.services.checkpoint import checkpoint_proof, confirm_checkpoint, verify_checkpoint
from tests._svc_helpers import rows, utc
from tests.conftest import EXAMPLE_MODELS

START = utc(2019, 9, 2)  # a Monday
DAY = timedelta(days=1)
MODELS = ("momentum", "mean_reversion", "noisy")


def competition(make_runtime: Any, tmp_path: Path, days: int = 2, emission: Any = None, **settings: Any) -> Any:
    """The example models over ``days`` days (a step every 3 virtual hours), daily checkpoints,
    under the default contract or with another emission strategy."""
    models = tmp_path / "models"
    for name in MODELS:
        shutil.copytree(EXAMPLE_MODELS / name, models / name)
    rt = make_runtime(models_dir=str(models), checkpoint_interval_seconds=86_400, **settings)
    if emission is not None:
        rt.contract = rt.contract.model_copy(update={"emission": emission})
    backtest.prepare(rt, START)
    backtest.run_steps(rt, list(backtest.virtual_times(START, START + days * DAY, 3 * 3600)))
    return rt


def set_value(rt: Any, table: Any, key: str, column: str, value: float) -> None:
    t = table.__table__
    with rt.engine.begin() as connection:
        connection.execute(update(t).where(t.c.id == key).values({column: value}))


def test_any_changed_score_or_snapshot_breaks_the_stored_root(make_runtime: Any, tmp_path: Path) -> None:
    rt = competition(make_runtime, tmp_path)
    first = sorted(rows(rt.engine, Checkpoint), key=lambda c: c["period_end"])[0]
    stored, recomputed = verify_checkpoint(rt.uow, first["id"])
    assert stored == recomputed == first["merkle_root"] and len(stored) == 64
    receipts = {m: checkpoint_proof(rt.uow, first["id"], m) for m in MODELS}
    for model, proof in receipts.items():  # untouched proofs verify against the stored root
        assert proof["model_id"] == model and verify_proof(proof, expected_root=stored) == stored
        assert {leaf["kind"] for leaf in proof["leaves"]} == {"score", "snapshot"}

    inside = [s for s in rows(rt.engine, Score) if first["period_start"] <= s["scored_at"] < first["period_end"]]
    assert len(inside) >= 3 * 8
    for score in inside:  # every stored score, one value at a time
        set_value(rt, Score, score["id"], "value", score["value"] + 1e-9)
        try:
            assert verify_checkpoint(rt.uow, first["id"])[1] != stored, score["id"]
            with pytest.raises(ProofError, match="not the checkpoint's"):
                verify_proof(checkpoint_proof(rt.uow, first["id"], score["model_id"]))
        finally:
            set_value(rt, Score, score["id"], "value", score["value"])
    snapshot = next(
        s for s in rows(rt.engine, Snapshot) if first["period_start"] < s["period_end"] <= first["period_end"]
    )
    set_value(rt, Snapshot, snapshot["id"], "value_sum", snapshot["value_sum"] - 1.0)
    try:
        assert verify_checkpoint(rt.uow, first["id"])[1] != stored
    finally:
        set_value(rt, Snapshot, snapshot["id"], "value_sum", snapshot["value_sum"])
    assert verify_checkpoint(rt.uow, first["id"]) == (stored, stored)  # restored: the same root again
    for proof in receipts.values():  # a proof taken before any change still verifies
        assert verify_proof(proof) == stored

    # a changed score is caught again before money moves: the confirm fails and gates the checkpoint
    score = inside[0]
    set_value(rt, Score, score["id"], "value", score["value"] * 2 - 1)
    with pytest.raises(Conflict, match="merkle root mismatch"):
        confirm_checkpoint(rt.uow, first["id"], "0xabc", START + 3 * DAY)
    after = next(c for c in rows(rt.engine, Checkpoint) if c["id"] == first["id"])
    assert after["status"] == "GATED" and after["tx_hash"] is None
    assert after["gate_jsonb"]["stage"] == "confirm" and not after["gate_jsonb"]["passed"]


def test_a_checkpoint_that_would_pay_nobody_is_gated(make_runtime: Any, tmp_path: Path) -> None:
    # a floor nobody passes (the default rule's scores are negative bps errors)
    rt = competition(make_runtime, tmp_path, days=1, emission=ProportionalEmission(floor=0.0))
    [gated] = rows(rt.engine, Checkpoint)
    assert gated["status"] == "GATED"
    assert any("no payee" in b for b in gated["gate_jsonb"]["blocked"])
    assert sum(r["reward_pct"] for r in gated["entries_jsonb"][0]["cruncher_rewards"]) == 0
    assert len(gated["merkle_root"]) == 64  # the evidence is kept all the same
    with pytest.raises(Conflict, match="GATED and cannot be confirmed"):
        confirm_checkpoint(rt.uow, gated["id"], "0xabc", START + 3 * DAY)
    assert rows(rt.engine, Checkpoint) == [gated]  # unchanged
