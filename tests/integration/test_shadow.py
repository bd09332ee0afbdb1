"""Shadow scoring on SQLite and Postgres: a candidate contract re-scores the stored predictions
against the stored ground truths, both leaderboards and the emission diff come out, and no table
changes (the service and the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import SQLModel
from typer.testing import CliRunner

import coordinator_core.db.tables  # noqa: F401  (the tables' metadata)
from coordinator_cli.main import app as cli
from coordinator_core.contract import CrunchContract
from coordinator_core.domain.emission_strategy import SoftmaxEmission
from coordinator_core.errors import ConfigurationError
from coordinator_core.scoring.rules import directional_pnl_bps
from coordinator_core.services.shadow import load_candidate, shadow_score
from tests._svc_helpers import rows
from tests.integration.test_checkpoint_money import DAY, START, competition

END = START + 2 * DAY


def everything(engine: Any) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table."""
    return {name: rows(engine, table) for name, table in SQLModel.metadata.tables.items()}


def picky(prediction: dict[str, Any], ground_truth: dict[str, Any]) -> dict[str, Any]:
    """A candidate rule that refuses forecasts above +0.1 % (they then fail, with a penalty)."""
    if prediction["value"] > 0.001:
        raise ValueError("too bullish")
    return directional_pnl_bps(prediction, ground_truth)


def test_shadow_scoring_reads_only_and_reports_both_sides(make_runtime: Any, tmp_path: Path) -> None:
    rt = competition(make_runtime, tmp_path)
    before = everything(rt.engine)
    assert before["predictions"] and before["scores"] and before["checkpoints"]

    same = shadow_score(rt.uow, rt.contract, rt.contract, rt.settings, START, END)
    assert same.rounds > 0 and same.compared == same.reproduced == len(before["scores"])
    assert same.current.ranking == same.candidate.ranking
    # over exactly one checkpoint's period the current side is the stored checkpoint
    [first] = [c for c in before["checkpoints"] if c["period_end"] == START + DAY]
    stored = shadow_score(rt.uow, rt.contract, rt.contract, rt.settings, START, START + DAY)
    assert {e["model_id"] for e in stored.current.ranking} <= {e["model_id"] for e in first["meta_jsonb"]["ranking"]}

    softmax = rt.contract.model_copy(update={"emission": SoftmaxEmission(temperature=5.0)})
    diff = shadow_score(rt.uow, rt.contract, softmax, rt.settings, START, END)
    assert [e["model_id"] for e in diff.candidate.ranking] == [e["model_id"] for e in diff.current.ranking]
    assert diff.candidate.strategy == {"kind": "softmax", "temperature": 5.0}
    assert sum(r["change_pct"] for r in diff.diff) == 0 and any(r["change_pct"] for r in diff.diff)
    for side in (diff.current, diff.candidate):
        assert sum(r["reward_pct"] for r in side.emission["cruncher_rewards"]) == 1_000_000_000

    strict = CrunchContract(scoring_function=picky)
    rescored = shadow_score(rt.uow, rt.contract, strict, rt.settings, START, END)
    assert rescored.candidate.statuses["FAILED"] > rescored.current.statuses["FAILED"]
    assert rescored.candidate.ranking != rescored.current.ranking

    assert everything(rt.engine) == before  # no table changed


def test_the_shadow_command_prints_both_leaderboards_and_the_diff(
    make_runtime: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.context import reset_runtime

    rt = competition(make_runtime, tmp_path)
    before = everything(rt.engine)
    monkeypatch.setenv("DATABASE_URL", str(rt.engine.url.render_as_string(hide_password=False)))
    monkeypatch.delenv("CRUNCH_CONTRACT", raising=False)
    reset_runtime()
    try:
        result = CliRunner().invoke(
            cli,
            [
                "shadow",
                "--contract",
                "examples.contracts:softmax",
                "--start",
                START.isoformat(),
                "--end",
                END.isoformat(),
            ],
        )
        assert result.exit_code == 0, result.output
        for text in (
            "Shadow scoring of",
            "Current: {'kind': 'tiers'}",
            "Candidate examples.contracts:softmax",
            "Emission diff",
        ):
            assert text in result.output
        assert "nothing was written" in result.output
        empty = CliRunner().invoke(
            cli, ["shadow", "--contract", "examples.contracts:softmax", "--start", "2001-01-01", "--end", "2001-01-02"]
        )
        assert empty.exit_code == 0 and "nothing to compare" in empty.output
    finally:
        reset_runtime()
    assert everything(rt.engine) == before
    with pytest.raises(ConfigurationError, match="--contract"):
        load_candidate("coordinator_core.scoring.rules:BPS")
    assert load_candidate("examples.contracts:rank_decay").emission.kind == "rank_decay"
