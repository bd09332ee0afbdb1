"""The scoring preflight: a rule that scores distinct sample predictions all the same is refused at
start (naming its dotted path and ALLOW_CONSTANT_SCORING), unless explicitly allowed."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator_core.bootstrap import build_runtime
from coordinator_core.config import load_settings
from coordinator_core.contract import CrunchContract
from coordinator_core.errors import ConfigurationError
from coordinator_core.preflight import check_scoring, scoring_samples


def stub_score(prediction: dict[str, Any], ground_truth: dict[str, Any]) -> dict[str, Any]:
    return {"value": 0.0}


def sign_score(prediction: dict[str, Any], ground_truth: dict[str, Any]) -> dict[str, Any]:
    """Directional: only the sign of the prediction matters (distinct samples include both signs)."""
    return {"value": 1.0 if (prediction["value"] > 0) == (ground_truth["return"] > 0) else -1.0}


def always_raises(prediction: dict[str, Any], ground_truth: dict[str, Any]) -> dict[str, Any]:
    raise KeyError("nothing")


def test_a_constant_scoring_function_is_refused_naming_its_path() -> None:
    contract = CrunchContract(scoring_function=stub_score)
    with pytest.raises(ConfigurationError) as caught:
        check_scoring(contract, load_settings())
    message = str(caught.value)
    assert f"{__name__}:stub_score" in message
    assert "ALLOW_CONSTANT_SCORING=true" in message
    assert "15 distinct sample predictions" in message


def test_allow_constant_scoring_lets_it_start() -> None:
    check_scoring(CrunchContract(scoring_function=stub_score), load_settings(allow_constant_scoring=True))


@pytest.mark.parametrize("rule", [sign_score, always_raises])
def test_a_rule_that_tells_the_samples_apart_or_cannot_score_them_starts(rule: Any) -> None:
    check_scoring(CrunchContract(scoring_function=rule), load_settings())


def test_the_samples_are_distinct_predictions_against_several_truths() -> None:
    samples = scoring_samples(CrunchContract())
    assert len(samples) == 3
    outputs = samples[0][0]
    assert len({o["value"] for o in outputs}) == len(outputs) == 5
    assert len({truth["return"] for _, truth, _ in samples}) == 3


def test_build_runtime_refuses_a_stub_set_by_scoring_function(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("SCORING_FUNCTION", f"{__name__}:stub_score")
    url = f"sqlite:///{tmp_path / 'stub.db'}"
    with pytest.raises(ConfigurationError, match=f"scoring function {__name__}:stub_score gives the same score"):
        build_runtime(database_url=url)
    monkeypatch.setenv("ALLOW_CONSTANT_SCORING", "true")
    runtime = build_runtime(database_url=url)
    assert runtime.contract.scoring_function is stub_score


@pytest.mark.parametrize(
    "path",
    [
        "examples.contracts:softmax",
        "examples.contracts:proportional",
        "examples.contracts:rank_decay",
        "coordinator_core.games.crunch_synth:contract_1h",
        "coordinator_core.games.condor:contract_1h",
        "coordinator_core.games.tournament:contract",
    ],
)
def test_the_shipped_contracts_pass(path: str) -> None:
    from coordinator_core.contract import load_contract

    settings = load_settings(crunch_contract=path)
    contract = load_contract(settings)
    assert scoring_samples(contract), f"{path}: no samples, the check would be skipped"
    check_scoring(contract, settings)


def hangs(prediction: dict[str, Any], ground_truth: dict[str, Any]) -> dict[str, Any]:
    import time

    time.sleep(3)
    return {"value": 0.0}


def test_a_rule_that_hangs_on_the_samples_does_not_hang_the_start() -> None:
    import time

    started = time.perf_counter()
    check_scoring(CrunchContract(scoring_function=hangs), load_settings(scoring_timeout_seconds=0.1))
    assert time.perf_counter() - started < 2.5  # 3 sample rounds, each given up after 0.1 s
