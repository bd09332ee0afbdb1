"""Absence on the in-memory unit of work: a registered model that is not RUNNING at a round gets an
ABSENT prediction after ``ABSENCE_GRACE_SECONDS`` (charged by the missing-prediction policy), until
it is deregistered (``MODEL_DEREGISTER_AFTER_SECONDS`` without running, or by hand); a model seen
running again is registered again. The same rules on SQLite and Postgres:
``tests/integration/test_absence.py``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from coordinator_core.contract import CrunchContract
from coordinator_core.gateway.base import CallResult, CallStatus, ModelInfo
from coordinator_core.services import configs, predict, score
from tests.unit.fakes import State, fake_uow
from tests.unit.test_services_fake import HOUR, T, closes, feed, settings


class Gateway:
    """``good`` answers +0.1 %, ``bad`` -2 %, ``gone`` +0.5 %; only the models in ``running`` are
    reported (RUNNING) and answer, as the real gateways do."""

    load_errors: dict[str, str] = {}
    tick_cursors: dict[str, Any] = {}
    values = {"good": 0.001, "bad": -0.02, "gone": 0.005}

    def __init__(self) -> None:
        self.running: Sequence[str] = tuple(self.values)
        self.stopped: Sequence[str] = ()  # reported, but STOPPED

    def models(self) -> list[ModelInfo]:
        infos = [ModelInfo(m, m, f"player-{m}", m.title()) for m in self.running]
        return infos + [ModelInfo(m, m, f"player-{m}", m.title(), state="STOPPED") for m in self.stopped]

    def tick(self, data: dict[str, Any], model_ids: Any = None) -> dict[str, CallResult]:
        return {m: CallResult(CallStatus.SUCCESS) for m in self.running}

    def predict(
        self, subject: str, horizon_seconds: int, step_seconds: int, steps: Any = None
    ) -> dict[str, CallResult]:
        return {m: CallResult(CallStatus.SUCCESS, {"value": self.values[m]}) for m in self.running}

    def close(self) -> None:
        pass


def start(**overrides: Any) -> tuple[State, Any, Any, CrunchContract, Gateway]:
    state, uow = fake_uow()
    feed(state, closes(40))
    cfg = settings(**{"absence_grace_seconds": 7200, "model_deregister_after_seconds": 5 * 3600, **overrides})
    contract = CrunchContract()
    configs.seed_configs(uow, contract, cfg, T)
    return state, uow, cfg, contract, Gateway()


def rows_at(state: State, now: datetime, model_id: str) -> list[dict[str, Any]]:
    return [p for p in state.predictions.values() if p["model_id"] == model_id and p["performed_at"] == now]


def test_a_stopped_model_is_absent_after_the_grace_then_deregistered_then_registered_again() -> None:
    state, uow, cfg, contract, gateway = start()
    predict.predict_round(uow, gateway, contract, cfg, T)  # everyone runs
    gateway.running = ("good", "bad")  # "gone" leaves the orchestrator
    predict.predict_round(uow, gateway, contract, cfg, T + HOUR)
    assert state.models["gone"]["state"] == "STOPPED" and state.models["gone"]["running_at"] == T
    assert rows_at(state, T + HOUR, "gone") == []  # 1 h < the 2 h grace
    result = predict.predict_round(uow, gateway, contract, cfg, T + 2 * HOUR)
    absent = rows_at(state, T + 2 * HOUR, "gone")
    rounds = [i for i in state.inputs.values() if i["received_at"] == T + 2 * HOUR]
    assert len(absent) == len(rounds) >= 1 and result.statuses["ABSENT"] == len(rounds)
    assert {p["status"] for p in absent} == {"ABSENT"} and all(p["id"].startswith("ABS_gone_") for p in absent)
    assert all("STOPPED" in p["failed_reason"] and T.isoformat() in p["failed_reason"] for p in absent)
    before = dict(state.predictions)
    predict.predict_round(uow, gateway, contract, cfg, T + 2 * HOUR)  # the same round again
    assert state.predictions == before

    # charged by the policy (worst_in_round: the worst valid score of its round, here bad's)
    score.score_predictions(uow, contract, cfg, T + 3 * HOUR + timedelta(seconds=1))
    [one_hour] = [p for p in absent if p["scope_key"] == "BTC-3600"]
    charged = state.scores[one_hour["id"]]
    bad = state.scores[
        next(
            p["id"]
            for p in state.predictions.values()
            if p["input_id"] == one_hour["input_id"] and p["model_id"] == "bad"
        )
    ]
    assert charged.prediction_status == "ABSENT" and not charged.success and charged.value == bad.value
    board = state.leaderboards[max(state.leaderboards)]
    assert "gone" in [e["model_id"] for e in board["entries"]]

    predict.predict_round(uow, gateway, contract, cfg, T + 4 * HOUR)
    assert rows_at(state, T + 4 * HOUR, "gone") and state.models["gone"]["state"] == "STOPPED"
    predict.predict_round(uow, gateway, contract, cfg, T + 5 * HOUR)  # 5 h without running
    assert state.models["gone"]["state"] == "DEREGISTERED" and rows_at(state, T + 5 * HOUR, "gone") == []
    gateway.stopped = ("gone",)  # reported again, but not running: stays deregistered
    predict.predict_round(uow, gateway, contract, cfg, T + 6 * HOUR)
    assert state.models["gone"]["state"] == "DEREGISTERED" and rows_at(state, T + 6 * HOUR, "gone") == []
    gateway.running, gateway.stopped = ("good", "bad", "gone"), ()
    predict.predict_round(uow, gateway, contract, cfg, T + 7 * HOUR)  # seen running: registered again
    assert state.models["gone"]["state"] == "RUNNING" and state.models["gone"]["running_at"] == T + 7 * HOUR
    assert {p["status"] for p in rows_at(state, T + 7 * HOUR, "gone")} == {"PENDING"}


def test_a_model_reported_stopped_is_absent_and_deregistration_by_hand_stops_it() -> None:
    state, uow, cfg, contract, gateway = start(absence_grace_seconds=0)
    predict.predict_round(uow, gateway, contract, cfg, T)
    gateway.running, gateway.stopped = ("good", "gone"), ("bad",)  # the orchestrator says STOPPED
    predict.predict_round(uow, gateway, contract, cfg, T + HOUR)  # grace 0: absent at once
    assert {p["status"] for p in rows_at(state, T + HOUR, "bad")} == {"ABSENT"}
    assert predict.deregister(uow, "bad", T + HOUR) == "STOPPED"
    assert predict.deregister(uow, "nobody", T + HOUR) is None
    predict.predict_round(uow, gateway, contract, cfg, T + 2 * HOUR)
    assert state.models["bad"]["state"] == "DEREGISTERED" and rows_at(state, T + 2 * HOUR, "bad") == []


def test_within_the_grace_nothing_is_written_and_running_models_are_unchanged() -> None:
    state, uow, cfg, contract, gateway = start(absence_grace_seconds=3 * 3600)
    for k in range(3):
        predict.predict_round(uow, gateway, contract, cfg, T + k * HOUR)
        gateway.running = ("good", "bad")
    assert [p for p in state.predictions.values() if p["status"] == "ABSENT"] == []
    assert {p["model_id"] for p in rows_at(state, T + 2 * HOUR, "good") + rows_at(state, T + 2 * HOUR, "bad")} == {
        "good",
        "bad",
    }


def test_the_grace_must_be_shorter_than_deregistration() -> None:
    with pytest.raises(Exception, match="ABSENCE_GRACE_SECONDS .* must be less than MODEL_DEREGISTER_AFTER_SECONDS"):
        settings(absence_grace_seconds=3600, model_deregister_after_seconds=3600)
    assert settings().absence_grace_seconds == 0 and settings().model_deregister_after_seconds == 604_800


def test_an_ensemble_is_never_absent_nor_deregistered_by_the_absence_rules() -> None:
    """The contract's ensembles are registry rows in state VIRTUAL: the absence rules pass them by
    (one prediction per round, the ensemble's own, never an ABSENT row beside it)."""
    from coordinator_core.contract import EnsembleSpec

    state, uow, cfg, _, gateway = start(absence_grace_seconds=0, model_deregister_after_seconds=3600)
    contract = CrunchContract(ensembles=[EnsembleSpec(name="mean", kind="mean")])
    for k in range(4):
        predict.predict_round(uow, gateway, contract, cfg, T + k * HOUR)
    ensemble = state.models["ensemble:mean"]
    assert ensemble["state"] == "VIRTUAL"
    for k in range(4):
        rows = rows_at(state, T + k * HOUR, "ensemble:mean")
        rounds = [i for i in state.inputs.values() if i["received_at"] == T + k * HOUR]
        assert len(rows) == len(rounds) >= 1 and {p["status"] for p in rows} == {"PENDING"}
