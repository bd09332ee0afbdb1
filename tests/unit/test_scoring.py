"""Scoring rules, ground truth and the contract's output/score validation."""

from __future__ import annotations

import math

import pytest

from coordinator_core.contract import CrunchContract
from coordinator_core.errors import ValidationError
from coordinator_core.scoring.ground_truth import price_return
from coordinator_core.scoring.rules import absolute_error_bps, directional_pnl_bps

# -- scoring rules ----------------------------------------------------------------------------------


def test_absolute_error_bps_hand_computed() -> None:
    result = absolute_error_bps({"value": 0.01}, {"return": -0.005})
    assert result["value"] == pytest.approx(-150.0, abs=1e-9)
    assert result["success"] is True
    assert result["failed_reason"] is None


def test_absolute_error_bps_perfect_forecast_scores_zero() -> None:
    assert absolute_error_bps({"value": 0.0123}, {"return": 0.0123})["value"] == 0.0


def test_absolute_error_bps_is_symmetric_in_the_error() -> None:
    over = absolute_error_bps({"value": 0.003}, {"return": 0.001})["value"]
    under = absolute_error_bps({"value": -0.001}, {"return": 0.001})["value"]
    assert over == pytest.approx(-20.0)
    assert under == pytest.approx(-20.0)


def test_directional_pnl_bps_wrong_direction_loses_the_move() -> None:
    result = directional_pnl_bps({"value": 0.01}, {"return": -0.005})
    assert result["value"] == pytest.approx(-50.0, abs=1e-9)
    assert result["success"] is True


def test_directional_pnl_bps_right_direction_earns_the_move() -> None:
    # the size of the forecast does not matter, only its sign
    assert directional_pnl_bps({"value": -1e-9}, {"return": -0.005})["value"] == pytest.approx(50.0)
    assert directional_pnl_bps({"value": 3.0}, {"return": 0.0025})["value"] == pytest.approx(25.0)


def test_directional_pnl_bps_zero_forecast_takes_no_position() -> None:
    assert directional_pnl_bps({"value": 0.0}, {"return": -0.005})["value"] == 0.0
    assert directional_pnl_bps({"value": 0}, {"return": 0.02})["value"] == 0.0


def test_rules_accept_int_values() -> None:
    assert absolute_error_bps({"value": 0}, {"return": 0})["value"] == 0.0
    assert directional_pnl_bps({"value": 1}, {"return": 0.001})["value"] == pytest.approx(10.0)


RULES = [absolute_error_bps, directional_pnl_bps]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
@pytest.mark.parametrize(
    ("prediction", "ground_truth", "key"),
    [
        ({}, {"return": 0.01}, "value"),
        ({"val": 0.01}, {"return": 0.01}, "value"),
        ({"value": 0.01}, {}, "return"),
        ({"value": float("nan")}, {"return": 0.01}, "value"),
        ({"value": float("inf")}, {"return": 0.01}, "value"),
        ({"value": 0.01}, {"return": float("-inf")}, "return"),
        ({"value": True}, {"return": 0.01}, "value"),
        ({"value": 0.01}, {"return": False}, "return"),
        ({"value": "0.01"}, {"return": 0.01}, "value"),
        ({"value": None}, {"return": 0.01}, "value"),
    ],
    ids=[
        "missing-value",
        "wrong-key",
        "missing-return",
        "nan",
        "inf",
        "inf-return",
        "bool",
        "bool-return",
        "string",
        "none",
    ],
)
def test_rules_reject_bad_numbers_naming_the_key(rule, prediction, ground_truth, key) -> None:
    with pytest.raises(ValueError, match=repr(key)):
        rule(prediction, ground_truth)


# -- ground truth -----------------------------------------------------------------------------------


def test_price_return_hand_computed_up() -> None:
    truth = price_return({"price": 8000.0, "ts": "t0"}, {"price": 8040.0, "ts": "t1"})
    assert truth is not None
    assert truth["entry_price"] == 8000.0
    assert truth["resolved_price"] == 8040.0
    assert truth["return"] == pytest.approx(0.005)
    assert truth["direction_up"] is True
    assert truth["entry_ts"] == "t0"
    assert truth["resolved_ts"] == "t1"


def test_price_return_hand_computed_down_and_flat() -> None:
    down = price_return({"price": 200}, {"price": 150})
    assert down is not None
    assert down["return"] == pytest.approx(-0.25)
    assert down["direction_up"] is False
    flat = price_return({"price": 100.0}, {"price": 100.0})
    assert flat is not None
    assert flat["return"] == 0.0
    assert flat["direction_up"] is False


@pytest.mark.parametrize(
    ("entry", "exit_"),
    [
        ({}, {"price": 100.0}),
        ({"price": 100.0}, {}),
        ({"price": None}, {"price": 100.0}),
        ({"price": 100.0}, {"price": None}),
        ({"price": 0.0}, {"price": 100.0}),
        ({"price": -5.0}, {"price": 100.0}),
    ],
    ids=["no-entry", "no-exit", "entry-none", "exit-none", "entry-zero", "entry-negative"],
)
def test_price_return_none_when_unusable(entry, exit_) -> None:
    assert price_return(entry, exit_) is None


def test_price_return_feeds_the_rules() -> None:
    truth = price_return({"price": 100.0}, {"price": 99.5})
    assert truth is not None
    assert absolute_error_bps({"value": 0.01}, truth)["value"] == pytest.approx(-150.0)
    assert directional_pnl_bps({"value": 0.01}, truth)["value"] == pytest.approx(-50.0)


# -- CrunchContract.check_output -----------------------------------------------------------------------


@pytest.fixture
def contract() -> CrunchContract:
    return CrunchContract()


def test_check_output_accepts_a_float(contract: CrunchContract) -> None:
    assert contract.check_output({"value": 0.01}) == {"value": 0.01}


def test_check_output_accepts_an_int_as_float(contract: CrunchContract) -> None:
    output = contract.check_output({"value": 1})
    assert output == {"value": 1.0}
    assert type(output["value"]) is float


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0.01", "expected an object"),
        (None, "expected an object"),
        ([0.01], "expected an object"),
        (0.01, "expected an object"),
        ({"value": "abc"}, "value: Input should be a valid number"),
        ({"value": "0.01"}, "value: Input should be a valid number"),
        ({"value": float("nan")}, "value: .*finite"),
        ({"value": float("inf")}, "value: .*finite"),
        ({"value": True}, "value: Input should be a valid number"),
        ({"value": None}, "value: "),
        ({}, "value: Field required"),
        ({"value": 0.01, "confidence": 0.9}, "confidence: Extra inputs are not permitted"),
    ],
    ids=[
        "str",
        "none",
        "list",
        "bare-float",
        "str-value",
        "numeric-str-value",
        "nan",
        "inf",
        "bool",
        "null-value",
        "empty",
        "extra-key",
    ],
)
def test_check_output_rejects_with_reason(contract: CrunchContract, raw, reason: str) -> None:
    with pytest.raises(ValidationError, match=f"^invalid output: .*{reason}"):
        contract.check_output(raw)


def test_check_output_uses_the_validate_hook_and_reports_its_error() -> None:
    def only_positive(raw):
        if raw["value"] <= 0:
            raise ValueError("value must be positive")
        return {"value": raw["value"]}

    contract = CrunchContract(validate_output=only_positive)
    assert contract.check_output({"value": 2}) == {"value": 2}
    with pytest.raises(ValidationError, match="invalid output: value must be positive"):
        contract.check_output({"value": -1})


# -- CrunchContract.score ------------------------------------------------------------------------------


def test_score_with_the_default_rule(contract: CrunchContract) -> None:
    score = contract.score({"value": 0.01}, {"return": -0.005})
    assert score["value"] == pytest.approx(-150.0)
    assert score["success"] is True
    assert score["failed_reason"] is None


def test_score_keeps_extra_keys_of_the_rule() -> None:
    contract = CrunchContract(scoring_function=lambda p, g: {"value": 1.5, "hit": True, "error": 0.2})
    assert contract.score({"value": 0.0}, {"return": 0.0}) == {
        "value": 1.5,
        "success": True,
        "failed_reason": None,
        "hit": True,
        "error": 0.2,
    }


def test_score_reports_a_raising_rule() -> None:
    def broken(prediction, ground_truth):
        raise ZeroDivisionError("division by zero in my rule")

    contract = CrunchContract(scoring_function=broken)
    with pytest.raises(ValidationError, match="scoring function raised ZeroDivisionError: division by zero in my rule"):
        contract.score({"value": 0.01}, {"return": 0.0})


def test_score_reports_the_default_rules_value_error(contract: CrunchContract) -> None:
    with pytest.raises(ValidationError, match="raised ValueError: .*'return'"):
        contract.score({"value": 0.01}, {"entry_price": 1.0})


@pytest.mark.parametrize(
    "returned",
    [{"value": None}, {"value": float("nan")}, {"value": math.inf}, {}, None, 3.0],
    ids=["none-value", "nan", "inf", "empty", "none", "bare-float"],
)
def test_score_rejects_an_invalid_result(returned) -> None:
    contract = CrunchContract(scoring_function=lambda p, g: returned)
    with pytest.raises(ValidationError, match="scoring function returned an invalid score"):
        contract.score({"value": 0.01}, {"return": 0.0})
