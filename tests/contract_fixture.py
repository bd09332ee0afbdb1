"""A custom competition for the contract-loading tests (``CRUNCH_CONTRACT=contract_fixture:...``)."""

from __future__ import annotations

from typing import Any

from coordinator_core.contract import Aggregation, CrunchContract


def squared_error_bps2(prediction: dict[str, Any], ground_truth: dict[str, Any]) -> dict[str, Any]:
    """Squared error of the predicted return in bps² (lower is better, hence ``asc``)."""
    error_bps = 10_000.0 * (float(prediction["value"]) - float(ground_truth["return"]))
    return {"value": error_bps * error_bps}


def make_contract() -> CrunchContract:
    return CrunchContract(
        scoring_function=squared_error_bps2,
        aggregation=Aggregation(ranking_direction="asc"),
    )


CONTRACT = make_contract()


def make_not_a_contract() -> dict[str, Any]:
    return {"scoring_function": squared_error_bps2}


NOT_CALLABLE = 42


def one_argument(prediction: dict[str, Any]) -> dict[str, Any]:
    return {"value": 0.0}


def three_arguments(prediction: dict[str, Any], ground_truth: dict[str, Any], extra: Any) -> dict[str, Any]:
    return {"value": 0.0}
