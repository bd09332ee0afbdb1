"""Money routes on the backtest's checkpoint (SQLite and Postgres): Merkle proofs (verified offline,
also by the CLI), the gate before money moves through the API (409 with the reasons), and the
CLI format refusing what must not be submitted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlmodel import Session
from typer.testing import CliRunner

from coordinator_cli.main import app as cli
from coordinator_core.db.tables import Checkpoint, Score
from coordinator_core.merkle import ProofError, verify_proof
from tests.integration import test_api_support as support
from tests.integration.test_api_support import CHECKPOINT_ID, Dataset, make_client

api_db = support.api_db  # the shared fixture

ADMIN = {"X-API-Key": "admin-key"}
URL = f"/reports/checkpoints/{CHECKPOINT_ID}"
CK = Checkpoint.__table__  # type: ignore[attr-defined]
SC = Score.__table__  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def admin(api_db: Dataset) -> Iterator[TestClient]:
    with make_client(api_db, api_admin_keys="admin-key") as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def restored(api_db: Dataset) -> Iterator[None]:
    """The data is shared: every test ends with the checkpoint and the scores as they were."""
    with Session(api_db.engine) as session:
        keep = session.connection().execute(select(CK).where(CK.c.id == CHECKPOINT_ID)).mappings().one()
        values = dict(session.connection().execute(select(SC.c.id, SC.c.value)).all())
    yield
    with Session(api_db.engine) as session:
        connection = session.connection()
        connection.execute(update(CK).where(CK.c.id == CHECKPOINT_ID).values(dict(keep)))
        now = dict(connection.execute(select(SC.c.id, SC.c.value)).all())
        for key, value in values.items():
            if now[key] != value:
                connection.execute(update(SC).where(SC.c.id == key).values(value=value))
        session.commit()


def ranked_models(test_client: TestClient) -> list[str]:
    return [e["model_id"] for e in test_client.get(URL).json()["meta"]["ranking"]]


def test_every_models_proof_verifies_against_the_stored_root(admin: TestClient, tmp_path: Path) -> None:
    checkpoint = admin.get(URL).json()
    root = checkpoint["merkle_root"]
    assert len(root) == 64 and checkpoint["meta"]["merkle"]["leaf_count"] > 0
    models = ranked_models(admin)
    assert len(models) >= 4
    leaves = 0
    for model in models:
        response = admin.get(f"{URL}/proof", params={"model": model})
        assert response.status_code == 200, response.text
        proof = response.json()
        assert proof["root"] == proof["stored_root"] == root and proof["model_id"] == model
        assert verify_proof(proof, expected_root=root) == root
        leaves += len(proof["leaves"])
    assert leaves == checkpoint["meta"]["merkle"]["leaf_count"]  # every leaf belongs to one model

    # the CLI checks a proof file offline
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(admin.get(f"{URL}/proof", params={"model": models[0]}).json()))
    ok = CliRunner().invoke(cli, ["verify-proof", str(path), "--root", root])
    assert ok.exit_code == 0 and "ok" in ok.output and CHECKPOINT_ID in ok.output, ok.output
    document = json.loads(path.read_text())
    document["leaves"][0]["prediction_count" if "prediction_count" in document["leaves"][0] else "value"] = "1"
    path.write_text(json.dumps(document))
    bad = CliRunner().invoke(cli, ["verify-proof", str(path)])
    assert bad.exit_code == 1 and "FAILED" in bad.output, bad.output
    missing = CliRunner().invoke(cli, ["verify-proof", str(tmp_path / "nope.json")])
    assert missing.exit_code == 1

    assert admin.get(f"{URL}/proof", params={"model": "nobody"}).status_code == 404
    assert admin.get("/reports/checkpoints/CKP_nope/proof", params={"model": models[0]}).status_code == 404
    assert admin.get(f"{URL}/proof").status_code == 422  # the model is required


def test_a_changed_score_is_refused_at_confirm_with_the_reasons(admin: TestClient, api_db: Dataset) -> None:
    model = ranked_models(admin)[0]
    before = admin.get(f"{URL}/proof", params={"model": model}).json()
    score_id = next(leaf["id"] for leaf in before["leaves"] if leaf["kind"] == "score")
    with Session(api_db.engine) as session:
        session.connection().execute(update(SC).where(SC.c.id == score_id).values(value=SC.c.value + 0.25))
        session.commit()
    after = admin.get(f"{URL}/proof", params={"model": model}).json()
    with pytest.raises(ProofError):
        verify_proof(after)
    assert verify_proof(before) == before["root"]  # the proof taken before the change still holds

    response = admin.post(f"{URL}/confirm", json={"tx_hash": "0xabc"}, headers=ADMIN)
    assert response.status_code == 409, response.text
    assert "failed the gate" in response.json()["detail"] and "merkle root mismatch" in response.json()["detail"]
    stored = admin.get(URL).json()
    assert stored["status"] == "GATED" and stored["tx_hash"] is None
    assert any("merkle root mismatch" in b for b in stored["gate"]["blocked"])
    again = admin.post(f"{URL}/confirm", json={"tx_hash": "0xabc"}, headers=ADMIN)
    assert again.status_code == 409 and "GATED and cannot be confirmed" in again.json()["detail"]
    cli_format = admin.get(f"{URL}/emission/cli-format")
    assert cli_format.status_code == 409 and "GATED and must not be submitted" in cli_format.json()["detail"]
    assert admin.get("/reports/checkpoints", params={"status": "GATED"}).json()[0]["id"] == CHECKPOINT_ID


def test_an_untouched_checkpoint_passes_the_gate_and_confirms(admin: TestClient) -> None:
    assert admin.get(f"{URL}/emission/cli-format").status_code == 200
    response = admin.post(f"{URL}/confirm", json={"tx_hash": "0xabc"}, headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "SUBMITTED" and body["gate"]["passed"] and body["gate"]["stage"] == "confirm"
    assert body["gate"]["earlier"][0]["stage"] == "build"


def test_cli_format_refuses_an_empty_emission(admin: TestClient, api_db: Dataset) -> None:
    emission: dict[str, Any] = admin.get(f"{URL}/emission").json()
    empty = {**emission, "cruncher_rewards": [], "model_rewards": []}
    with Session(api_db.engine) as session:
        session.connection().execute(update(CK).where(CK.c.id == CHECKPOINT_ID).values(entries_jsonb=[empty]))
        session.commit()
    response = admin.get(f"{URL}/emission/cli-format")
    assert response.status_code == 409
    assert "empty emission (no participant is paid)" in response.json()["detail"]


# -- payout explain ---------------------------------------------------------------------------------
def test_explain_walks_from_each_reward_down_to_the_feed_records(admin: TestClient) -> None:
    checkpoint = admin.get(URL).json()
    emission = checkpoint["entries"][0]
    paid = {r["model_id"]: r["reward_pct"] for r in emission["model_rewards"]}
    total = 0
    for model in ranked_models(admin):
        pages = support.walk(admin, f"{URL}/explain", {"model": model, "limit": 10})
        head = pages[0]
        assert all(
            {k: v for k, v in p.items() if k != "snapshots"} == {k: v for k, v in head.items() if k != "snapshots"}
            for p in pages
        )
        reward, rank, aggregate = head["reward"], head["rank"], head["aggregate"]
        assert reward["reward_pct"] == paid[model] and reward["reproduced"] is True
        assert abs(reward["rounding_residue"]) < 1 and reward["strategy"] == checkpoint["meta"]["emission_strategy"]
        assert rank["recomputed_matches"] and aggregate["matches_ranking"]
        assert rank["rank"] == next(e["rank"] for e in checkpoint["meta"]["ranking"] if e["model_id"] == model)
        snapshots = [s for p in pages for s in p["snapshots"]]
        assert len(snapshots) == aggregate["snapshot_count"] and len({s["id"] for s in snapshots}) == len(snapshots)
        assert all(s["sums_match"] for s in snapshots)
        items = [i for s in snapshots for i in s["predictions"]]
        assert len(items) == aggregate["prediction_count"]
        for item in items:
            if item["ground_truth"] is not None:  # a round that gave up has none
                assert item["feed_records"]["match_ground_truth"] is True
                assert item["feed_records"]["entry"]["id"] != item["feed_records"]["exit"]["id"]
        assert head["scoring_rule"]["unchanged"] is True and len(head["scoring_rule"]["now"]["sha256"]) == 64
        total += reward["reward_pct"]
    assert total == 1_000_000_000

    first = admin.get(f"{URL}/explain", params={"model": "momentum", "limit": 1})
    other = admin.get(f"{URL}/explain", params={"model": "noisy", "cursor": first.headers["X-Next-Cursor"]})
    assert other.status_code == 422 and other.json()["detail"][0]["loc"] == ["query", "cursor"]
    assert admin.get(f"{URL}/explain", params={"model": "nobody"}).status_code == 404
    assert admin.get("/reports/checkpoints/CKP_nope/explain", params={"model": "momentum"}).status_code == 404


def test_explain_and_proof_from_the_command_line(
    api_db: Dataset, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tasks.context import reset_runtime

    monkeypatch.setenv("DATABASE_URL", api_db.url)
    monkeypatch.setenv("MODELS_DIR", api_db.models_dir)
    monkeypatch.delenv("CRUNCH_CONTRACT", raising=False)
    reset_runtime()
    try:
        runner = CliRunner()
        shown = runner.invoke(cli, ["explain", CHECKPOINT_ID, "momentum", "--limit", "2"])
        assert shown.exit_code == 0, shown.output
        for text in (
            "1. Reward",
            "reward (frac64)",
            "2. Rank",
            "3. Aggregate",
            "4. Snapshots",
            "more snapshots: add --after",
        ):
            assert text in shown.output
        as_json = runner.invoke(cli, ["explain", CHECKPOINT_ID, "momentum", "--json", "--limit", "168"])
        document = json.loads(as_json.output)
        assert document["next_after"] is None and document["reward"]["reproduced"] is True
        path = tmp_path / "p.json"
        written = runner.invoke(cli, ["proof", CHECKPOINT_ID, "momentum", "--out", str(path)])
        assert written.exit_code == 0, written.output
        assert runner.invoke(cli, ["verify-proof", str(path)]).exit_code == 0
    finally:
        reset_runtime()
