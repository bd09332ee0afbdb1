"""Failure kinds (the scoring function's apart from the models'), the run's counter, and the rule
that fails a run whose scoring function is broken (``coordinator_core.domain.failures``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from coordinator_core.contract import CrunchContract
from coordinator_core.domain import failures as rules
from coordinator_core.domain.policy import MissingPolicy
from coordinator_core.domain.scoring import PendingPrediction, score_rounds
from coordinator_core.errors import PermanentError, ScoringFunctionFailing
from coordinator_core.services import configs, predict, score
from tests.unit.fakes import fake_uow
from tests.unit.test_services_fake import HOUR, FakeGateway, T, closes, feed, settings


@pytest.mark.parametrize(
    ("status", "runner", "reason", "kind"),
    [
        ("SCORED", "SUCCESS", None, None),
        ("PENDING", "SUCCESS", None, None),
        ("ABSENT", None, "no answer: model failed to load", rules.ABSENT),
        ("FAILED", "FAILED", "FAILED: RuntimeError: boom", rules.MODEL_ERROR),
        ("FAILED", "TIMEOUT", "TIMEOUT: no answer within 1.0 s", rules.MODEL_TIMEOUT),
        ("FAILED", "SUCCESS", "value: Input should be a valid number", rules.INVALID_OUTPUT),
        ("FAILED", "SUCCESS", "scoring function raised ZeroDivisionError: division by zero", rules.SCORING_FUNCTION),
        ("FAILED", "SUCCESS", "scoring function returned an invalid score {}: Field required", rules.SCORING_FUNCTION),
        (
            "FAILED",
            "SUCCESS",
            "ground truth unavailable: no replay:BTC price (gave up after 1 day)",
            rules.GROUND_TRUTH,
        ),
        ("FAILED", "FAILED", "ground truth unavailable: …", rules.GROUND_TRUTH),  # a give-up wins over the call
        ("FAILED", None, "TIMEOUT: deadline", rules.MODEL_TIMEOUT),  # no runner status (a row scored in a batch)
        ("FAILED", None, "FAILED: ValueError", rules.MODEL_ERROR),
    ],
)
def test_classify(status: str, runner: str | None, reason: str | None, kind: str | None) -> None:
    assert rules.classify(status, runner, reason) == kind


def test_group_reason_collapses_numbers_and_bounds_the_text() -> None:
    a = rules.group_reason("scoring function raised ValueError: prediction 0.5 is above 0.1 at 2019-10-07")
    b = rules.group_reason("scoring function raised ValueError: prediction -1.25e-3 is above 0.1 at 2019-10-08")
    assert a == b == "scoring function raised ValueError: prediction N is above N at N-N-N"
    assert rules.group_reason(None) == "no reason given"
    assert len(rules.group_reason("x" * 5_000)) == rules.REASON_CHARS + 1


def _raise_above(prediction: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    if prediction["value"] > 0.1:
        raise ValueError(f"prediction {prediction['value']} is above 0.1")
    return {"value": -abs(prediction["value"] - truth["return"])}


def test_batch_failures_tell_the_scoring_function_from_the_models() -> None:
    contract = CrunchContract(scoring_function=_raise_above)
    predictions = [
        PendingPrediction("p1", "lo", "i1", "PENDING", {"value": 0.01}),
        PendingPrediction("p2", "hi", "i1", "PENDING", {"value": 0.5}),
        PendingPrediction("p3", "hi2", "i1", "PENDING", {"value": 0.7}),
        PendingPrediction("p4", "boom", "i1", "FAILED", {}, "FAILED: RuntimeError: boom"),
        PendingPrediction("p5", "slow", "i1", "FAILED", {}, "TIMEOUT: no answer within 1.0 s"),
        PendingPrediction("p6", "junk", "i1", "FAILED", {}, "value: Input should be a valid number"),
        PendingPrediction("p7", "gone", "i1", "ABSENT", {}, "no answer: model was registered as RUNNING"),
    ]
    batch = score_rounds(
        [({"return": 0.02}, predictions, {})], contract.score_batch, MissingPolicy.parse("worst_in_round"), "max", T
    )
    found = rules.batch_failures(predictions, batch.changes)
    assert rules.kinds(found) == {
        rules.SCORING_FUNCTION: 2,
        rules.MODEL_ERROR: 1,
        rules.MODEL_TIMEOUT: 1,
        rules.INVALID_OUTPUT: 1,
        rules.ABSENT: 1,
    }
    assert found[(rules.SCORING_FUNCTION, "scoring function raised ValueError: prediction N is above N")] == 2
    assert batch.statuses == {"SCORED": 1, "FAILED": 5, "ABSENT": 1}
    text = rules.summary(batch.statuses, found)
    assert text.startswith("statuses ABSENT 1, FAILED 5, SCORED 1 | failures absent 1, invalid_output 1")
    assert "top reasons: 2× scoring_function: scoring function raised ValueError" in text


@pytest.mark.parametrize(
    ("scored", "failed", "limit", "min_count", "fails"),
    [
        (0, 9, 0.5, 10, False),  # every scoring failed, but fewer than the minimum count
        (0, 10, 0.5, 10, True),
        (10, 10, 0.5, 10, False),  # exactly the limit is allowed
        (9, 10, 0.5, 10, True),
        (90, 10, 0.1, 1, False),
        (89, 10, 0.1, 1, True),
        (0, 0, 0.0, 1, False),  # nothing scored at all
    ],
)
def test_the_scoring_function_rule(scored: int, failed: int, limit: float, min_count: int, fails: bool) -> None:
    found: rules.Failures = Counter({(rules.SCORING_FUNCTION, "scoring function raised KeyError: 'x'"): failed})
    found[(rules.MODEL_ERROR, "FAILED: RuntimeError")] += 1_000  # the models' failures never count
    if not fails:
        rules.check_scoring_function(scored, found, limit, min_count)
        return
    with pytest.raises(ScoringFunctionFailing) as raised:
        rules.check_scoring_function(scored, found, limit, min_count, "scoring at T")
    assert isinstance(raised.value, PermanentError)  # never retried
    message = str(raised.value)
    assert f"failed on {failed} of the {scored + failed} predictions" in message
    assert "scoring function raised KeyError: 'x'" in message and "FAILED: RuntimeError" not in message
    assert message.startswith("scoring at T:") and "SCORING_FAILURE_LIMIT" in message


def test_model_failures_alone_never_fail_a_run() -> None:
    found: rules.Failures = Counter({(rules.MODEL_ERROR, "boom"): 100, (rules.ABSENT, "gone"): 100})
    rules.check_scoring_function(0, found, 0.0, 1)


def test_the_score_run_counts_failures_by_kind() -> None:
    """Through the score service on the in-memory unit of work: good answers and is scored, boom
    fails its call, junk answers garbage; then a scoring function that always raises."""
    state, uow = fake_uow()
    feed(state, closes(40))
    cfg = settings()
    configs.seed_configs(uow, CrunchContract(), cfg, T)
    predict.predict_round(uow, FakeGateway(), CrunchContract(), cfg, T)

    result = score.score_predictions(uow, CrunchContract(), cfg, T + HOUR)  # the 1 h round
    assert rules.kinds(result.failures) == {rules.MODEL_ERROR: 1, rules.INVALID_OUTPUT: 1}
    assert result.statuses == {"SCORED": 1, "FAILED": 2}

    def broken(prediction: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
        return {"value": truth["no such key"]}

    result = score.score_predictions(uow, CrunchContract(scoring_function=broken), cfg, T + 4 * HOUR)
    assert rules.kinds(result.failures) == {rules.SCORING_FUNCTION: 1, rules.MODEL_ERROR: 1, rules.INVALID_OUTPUT: 1}
    assert result.failures[(rules.SCORING_FUNCTION, "scoring function raised KeyError: 'no such key'")] == 1
    assert result.statuses["FAILED"] == 3 and result.statuses["SCORED"] == 0
    with pytest.raises(ScoringFunctionFailing):
        rules.check_scoring_function(result.statuses.get("SCORED", 0), result.failures, 0.5, 1)


def test_give_ups_are_counted_as_ground_truth_failures() -> None:
    state, uow = fake_uow()
    feed(state, {ts: p for ts, p in closes(40).items() if ts < T})
    cfg = settings(resolve_give_up_seconds=3600)
    configs.seed_configs(uow, CrunchContract(), cfg, T)
    predict.predict_round(uow, FakeGateway(), CrunchContract(), cfg, T)
    result = score.score_predictions(uow, CrunchContract(), cfg, T + 2 * HOUR)
    assert result.failures == {(rules.GROUND_TRUTH, rules.GROUND_TRUTH_REASON): 1}  # good's PENDING prediction


# -- the alerts' pure rules (coordinator_core.diagnostics) ----------------------------------------------
def _checkpoint(meta: dict[str, Any], rewards: list[int]) -> Any:
    from coordinator_core.ports import CheckpointRow

    emission = {"cruncher_rewards": [{"cruncher_index": i, "reward_pct": r} for i, r in enumerate(rewards)]}
    return CheckpointRow("CKP_1", T, T + HOUR, "PENDING", [emission], meta, T, None, None)


def test_a_checkpoint_is_gated_by_a_gate_list_or_a_total_other_than_1e9() -> None:
    from coordinator_core.diagnostics import checkpoint_gate

    assert checkpoint_gate(_checkpoint({"model_count": 2}, [600_000_000, 400_000_000])) is None
    assert checkpoint_gate(_checkpoint({"gate": []}, [1_000_000_000])) is None
    gated = checkpoint_gate(_checkpoint({"gate": ["min_models"], "model_count": 1}, [1_000_000_000]))
    assert gated is not None and gated.gates == ["min_models"] and gated.total == 1_000_000_000
    short = checkpoint_gate(_checkpoint({"model_count": 2}, [600_000_000, 300_000_000]))
    assert short is not None and short.gates == [] and short.total == 900_000_000 and short.model_count == 2
    empty = checkpoint_gate(_checkpoint({}, []))
    assert empty is not None and empty.total == 0


def test_a_feed_is_stale_past_the_bound_counted_from_the_close_of_its_newest_candle() -> None:
    from coordinator_core.diagnostics import stale_feed
    from coordinator_core.feeds.base import FeedScope

    candle = FeedScope("replay", "BTC", "candle", "1h")
    bound = 2 * 3600 + 60
    assert stale_feed(candle, T - HOUR, T, bound) is None  # the candle opened at T - 1 h closed at T
    assert stale_feed(candle, T - 3 * HOUR, T, bound) is None  # closed 2 h ago: within 2 h 1 min
    late = stale_feed(candle, T - 4 * HOUR, T, bound)
    assert late is not None and late.age_seconds == 3 * 3600 and late.scope == "replay:BTC:candle:1h"
    never = stale_feed(candle, None, T, bound)
    assert never is not None and never.watermark is None and never.age_seconds is None
    tick = FeedScope("binance", "BTC", "tick", "1s")
    assert stale_feed(tick, T - HOUR, T, 3599) is not None and stale_feed(tick, T - HOUR, T, 3600) is None
