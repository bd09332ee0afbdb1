"""The services as short handlers over a unit of work, on the in-memory fake (no database):
predict → score → derived tables → checkpoint, the rollback of an uncommitted unit of work, work
owed across a killed run, and the checkpoint state machine's domain errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from coordinator_core.config import load_settings
from coordinator_core.contract import CrunchContract
from coordinator_core.domain.statuses import CheckpointStatus, PredictionStatus
from coordinator_core.errors import Conflict, NotFound
from coordinator_core.feeds.base import FeedScope, SourceRecord
from coordinator_core.gateway.base import CallResult, CallStatus, ModelInfo
from coordinator_core.services import checkpoint, configs, predict, score
from tests.unit.fakes import FakeScores, State, fake_uow, utc

HOUR = timedelta(hours=1)
T = utc(2019, 9, 2, 12)  # a Monday, noon
SCOPE = FeedScope("replay", "BTC", "candle", "1h")
MODELS = ("good", "boom", "junk")


def settings(**overrides: Any) -> Any:
    base = {
        "database_url": "sqlite:///:memory:",
        "crunch_contract": None,
        "feed_source": "replay",
        "checkpoint_interval_seconds": 86_400,
        "missing_prediction_policy": "worst_in_round",
    }
    return load_settings(**{**base, **overrides})


class FakeGateway:
    """good answers +0.1 %, boom raises, junk answers garbage."""

    load_errors: dict[str, str] = {}
    tick_cursors: dict[str, Any] = {}

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(m, m, f"player-{m}", m.title()) for m in MODELS]

    def tick(self, data: dict[str, Any], model_ids: Any = None) -> dict[str, CallResult]:
        return {m: CallResult(CallStatus.SUCCESS) for m in MODELS if model_ids is None or m in model_ids}

    def predict(
        self, subject: str, horizon_seconds: int, step_seconds: int, steps: Any = None
    ) -> dict[str, CallResult]:
        return {
            "good": CallResult(CallStatus.SUCCESS, {"value": 0.001}),
            "boom": CallResult(CallStatus.FAILED, detail="RuntimeError: boom"),
            "junk": CallResult(CallStatus.SUCCESS, {"value": "high"}),
        }

    def close(self) -> None:
        pass


def closes(hours: int) -> dict[Any, float]:
    """Hourly candles (open time → close), rising 0.5 % an hour, from T - 10 h."""
    return {T + (k - 10) * HOUR: 100.0 * 1.005**k for k in range(hours)}


def feed(state: State, candles: dict[Any, float]) -> None:
    _, uow = fake_uow(state)
    with uow() as work:
        work.feeds.upsert_records(SCOPE, [SourceRecord(ts, {"close": price}) for ts, price in candles.items()], T)
        work.commit()


def competition() -> tuple[State, Any, Any, CrunchContract]:
    state, uow = fake_uow()
    feed(state, closes(40))
    cfg, contract = settings(), CrunchContract()
    configs.seed_configs(uow, contract, cfg, T)
    result = predict.predict_round(uow, FakeGateway(), contract, cfg, T)
    assert len(result.inputs) == 2 and result.statuses == {"PENDING": 2, "FAILED": 4}
    return state, uow, cfg, contract


def test_a_round_is_predicted_scored_and_ranked_through_the_unit_of_work() -> None:
    state, uow, cfg, contract = competition()
    result = score.score_predictions(uow, contract, cfg, T + HOUR)
    assert result.resolved == 1 and result.waiting == 0  # the 4 h round is not due yet
    one_hour = [p for p in state.predictions.values() if p["scope_key"] == "BTC-3600"]
    statuses = {p["model_id"]: p["status"] for p in one_hour}
    assert statuses == {"good": "SCORED", "boom": "FAILED", "junk": "FAILED"}
    # entry = the close observed at T (candle opened T - 1 h), exit = observed at T + 1 h
    entry, exit_ = closes(40)[T - HOUR], closes(40)[T]
    realised = (exit_ - entry) / entry
    good = state.scores[next(p["id"] for p in one_hour if p["model_id"] == "good")]
    assert good.value == pytest.approx(-abs(0.001 - realised) * 10_000)
    penalties = [state.scores[p["id"]] for p in one_hour if p["model_id"] != "good"]
    assert all(r.value == good.value and not r.success and r.prediction_status == "FAILED" for r in penalties)
    assert state.dirty == {}  # the work owed was done in the same run
    board = state.leaderboards[T + HOUR]
    assert [e["model_id"] for e in board["entries"]] == ["good", "boom", "junk"]  # ties: more scored first, then id
    assert state.models["good"]["overall"]["rank"] == 1
    assert state.locks.count(score.SCORE_LOCK) >= 2


def test_a_unit_of_work_left_without_commit_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    state, uow, cfg, contract = competition()
    before = {k: dict(v) for k, v in state.predictions.items()}

    def broken(self: FakeScores, rows: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(FakeScores, "add", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        score.score_predictions(uow, contract, cfg, T + HOUR)
    assert state.predictions == before and not state.scores and not state.leaderboards
    assert all(i["status"] == "RECEIVED" for i in state.inputs.values())


def test_work_owed_by_a_killed_run_is_done_by_the_next_one(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_state, clean_uow, cfg, contract = competition()
    score.score_predictions(clean_uow, contract, cfg, T + HOUR)

    state, uow, _, _ = competition()
    real = score.refresh_derived

    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt("killed after the last batch")

    monkeypatch.setattr(score, "refresh_derived", killed)
    with pytest.raises(KeyboardInterrupt):
        score.score_predictions(uow, contract, cfg, T + HOUR)
    assert state.scores and not state.snapshots and {k for k, _ in state.dirty} == {"snapshot", "leaderboard"}
    monkeypatch.setattr(score, "refresh_derived", real)
    score.score_predictions(uow, contract, cfg, T + HOUR)  # nothing due any more: only the owed work
    assert state.snapshots == clean_state.snapshots
    assert state.leaderboards == clean_state.leaderboards and state.dirty == {}


def test_work_owed_later_is_left_for_a_refresh_at_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scoring run at T + 1 h killed before its refresh, then a run re-started at T (earlier):
    the refresh at T does none of the work owed at T + 1 h (no snapshot stamped T, no leaderboard
    as of T built from scores of its future); the run at T + 1 h does it as a clean run does."""
    clean_state, clean_uow, cfg, contract = competition()
    score.score_predictions(clean_uow, contract, cfg, T + HOUR)

    state, uow, _, _ = competition()
    real = score.refresh_derived

    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt("killed after the last batch")

    monkeypatch.setattr(score, "refresh_derived", killed)
    with pytest.raises(KeyboardInterrupt):
        score.score_predictions(uow, contract, cfg, T + HOUR)
    monkeypatch.setattr(score, "refresh_derived", real)
    owed = dict(state.dirty)
    assert set(owed.values()) == {T + HOUR} and ("leaderboard", T + HOUR) in owed
    assert score.score_predictions(uow, contract, cfg, T).leaderboard_id is None  # re-started earlier
    assert state.dirty == owed and not state.snapshots and not state.leaderboards
    assert checkpoint.build_checkpoints(uow, contract, cfg, T) == [] and state.dirty == owed
    score.score_predictions(uow, contract, cfg, T + HOUR)
    assert state.dirty == {} and state.snapshots == clean_state.snapshots
    assert state.leaderboards == clean_state.leaderboards and list(state.leaderboards) == [T + HOUR]
    assert {m: row["overall"] for m, row in state.models.items()} == {
        m: row["overall"] for m, row in clean_state.models.items()
    }


def test_work_owed_keeps_its_earliest_time() -> None:
    state = State()
    scores = FakeScores(state)
    scores.mark_dirty("snapshot", [T], T + HOUR)
    scores.mark_dirty("snapshot", [T], T + 2 * HOUR)  # owed again later: still due from T + 1 h
    assert scores.dirty("snapshot", T) == [] and scores.dirty("snapshot", T + HOUR) == [T]
    scores.mark_dirty("snapshot", [T], T)  # owed again earlier: due from then
    assert scores.dirty("snapshot", T) == [T]


def test_checkpoint_built_confirmed_and_advanced_with_domain_errors() -> None:
    state, uow, cfg, contract = competition()
    score.score_predictions(uow, contract, cfg, T + HOUR)
    assert checkpoint.build_checkpoints(uow, contract, cfg, T + HOUR) == []  # the day is not over
    # the 4 h round (resolvable inside the day) is not scored: the checkpoint waits for it ...
    assert checkpoint.build_checkpoints(uow, contract, cfg, utc(2019, 9, 3)) == []
    # ... for CHECKPOINT_WAIT_SECONDS (1 h), then it is built without it and says so
    written = checkpoint.build_checkpoints(uow, contract, cfg, utc(2019, 9, 3, 1))
    assert written == ["CKP_20190903_000000"]
    assert state.checkpoints[written[0]]["meta_jsonb"]["unsettled_rounds"] == 1
    emission = state.checkpoints[written[0]]["entries_jsonb"][0]
    assert sum(r["reward_pct"] for r in emission["cruncher_rewards"]) == 1_000_000_000
    assert [r["model_id"] for r in emission["model_rewards"]] == ["good"]  # only models with a scored prediction
    assert checkpoint.build_checkpoints(uow, contract, cfg, utc(2019, 9, 3)) == []  # idempotent

    with pytest.raises(NotFound):
        checkpoint.confirm_checkpoint(uow, "CKP_nope", "0xabc", T)
    with pytest.raises(Conflict, match="needs a recorded tx_hash"):
        checkpoint.advance_checkpoint(uow, written[0], CheckpointStatus.SUBMITTED.value)
    row = checkpoint.confirm_checkpoint(uow, written[0], "0xabc", T)
    assert row.status == "SUBMITTED" and row.tx_hash == "0xabc"
    assert checkpoint.confirm_checkpoint(uow, written[0], "0xabc", T).tx_hash == "0xabc"  # same hash: unchanged
    with pytest.raises(Conflict, match="another tx_hash"):
        checkpoint.confirm_checkpoint(uow, written[0], "0xdef", T)
    with pytest.raises(Conflict, match="Allowed: \\['CLAIMABLE'\\]"):
        checkpoint.advance_checkpoint(uow, written[0], CheckpointStatus.PAID.value)
    assert checkpoint.advance_checkpoint(uow, written[0], "CLAIMABLE").status == "CLAIMABLE"
    assert checkpoint.advance_checkpoint(uow, written[0], "CLAIMABLE").status == "CLAIMABLE"  # already so


def test_give_up_fails_the_pending_predictions_of_an_unresolvable_round() -> None:
    state, uow = fake_uow()
    feed(state, {ts: p for ts, p in closes(40).items() if ts < T})  # nothing after the round
    cfg, contract = settings(resolve_give_up_seconds=3600), CrunchContract()
    configs.seed_configs(uow, contract, cfg, T)
    predict.predict_round(uow, FakeGateway(), contract, cfg, T)
    assert score.score_predictions(uow, contract, cfg, T + HOUR).waiting == 1
    result = score.score_predictions(uow, contract, cfg, T + 2 * HOUR)
    assert result.gave_up == 1 and result.statuses["FAILED"] == 1
    good = next(p for p in state.predictions.values() if p["model_id"] == "good" and p["scope_key"] == "BTC-3600")
    assert good["status"] == PredictionStatus.FAILED.value and "ground truth unavailable" in good["failed_reason"]
    assert T + 2 * HOUR in state.leaderboards  # the give-up changed the leaderboard's inputs


def test_explain_links_the_reward_to_each_prediction_and_its_feed_records() -> None:
    from coordinator_core.services.explain import explain_reward

    state, uow, cfg, contract = competition()
    score.score_predictions(uow, contract, cfg, T + HOUR)  # the 1 h round, in one snapshot
    score.score_predictions(uow, contract, cfg, T + 4 * HOUR)  # the 4 h round, in another
    [checkpoint_id] = checkpoint.build_checkpoints(uow, contract, cfg, utc(2019, 9, 3))
    page = explain_reward(uow, contract, checkpoint_id, "good", limit=1)
    doc = page.document
    assert doc["model"] == {"model_id": "good", "model_name": "good", "player_id": "player-good", "player_name": "Good"}
    assert doc["reward"]["reward_pct"] == 1_000_000_000 and doc["reward"]["reproduced"] is True
    assert doc["reward"]["strategy"] == {"kind": "tiers"} and doc["reward"]["weight"] == "100"
    assert doc["rank"]["rank"] == 1 and doc["rank"]["of"] == 1 and doc["rank"]["recomputed_matches"] is True
    assert doc["aggregate"]["prediction_count"] == 2 and doc["aggregate"]["matches_ranking"] is True
    assert doc["scoring_rule"]["unchanged"] is True
    assert doc["scoring_rule"]["now"]["path"] == "coordinator_core.scoring.rules:absolute_error_bps"
    [snapshot] = doc["snapshots"]
    assert snapshot["sums_match"] and page.next_after is not None
    [item] = snapshot["predictions"]
    assert item["output"] == {"value": 0.001} and item["status"] == "SCORED"
    truth, records = item["ground_truth"], item["feed_records"]
    assert records["match_ground_truth"] is True
    assert (records["entry"]["values"]["close"], records["exit"]["values"]["close"]) == (
        truth["entry_price"],
        truth["resolved_price"],
    )
    assert item["score"]["value"] == pytest.approx(-abs(0.001 - truth["return"]) * 10_000)
    rest = explain_reward(uow, contract, checkpoint_id, "good", after=page.next_after, limit=10)
    assert rest.next_after is None
    seen = [s["id"] for s in doc["snapshots"] + rest.document["snapshots"]]
    assert len(seen) == len(set(seen)) == doc["aggregate"]["snapshot_count"]
    # a model that was never paid is explained too: no scored prediction, so not ranked
    boom = explain_reward(uow, contract, checkpoint_id, "boom").document
    assert boom["reward"]["reward_pct"] == 0 and boom["rank"]["rank"] is None
    assert "no scored prediction" in boom["reward"]["note"]
    with pytest.raises(NotFound):
        explain_reward(uow, contract, checkpoint_id, "nobody")
    with pytest.raises(NotFound):
        explain_reward(uow, contract, "CKP_nope", "good")


def test_shadow_scoring_compares_two_contracts_and_writes_nothing() -> None:
    import copy

    from coordinator_core.scoring.rules import directional_pnl_bps
    from coordinator_core.services.shadow import shadow_score

    state, uow, cfg, contract = competition()
    score.score_predictions(uow, contract, cfg, T + 4 * HOUR)
    before = copy.deepcopy(state)
    same = shadow_score(uow, contract, contract, cfg, T - HOUR, T + HOUR)
    assert (same.rounds, same.predictions) == (2, 6)
    assert same.compared == same.reproduced == 6  # the current contract gives the stored scores back
    assert same.current.ranking == same.candidate.ranking and all(r["change_pct"] == 0 for r in same.diff)
    candidate = CrunchContract(scoring_function=directional_pnl_bps)
    other = shadow_score(uow, contract, candidate, cfg, T - HOUR, T + HOUR)
    assert [e["model_id"] for e in other.candidate.ranking] == ["good"]
    assert other.candidate.ranking[0]["metrics"] != other.current.ranking[0]["metrics"]
    assert sum(r["candidate_pct"] for r in other.diff) == 1_000_000_000
    assert state == before  # nothing written, nothing committed
    assert shadow_score(uow, contract, candidate, cfg, T + HOUR, T + 2 * HOUR).up_to_date
