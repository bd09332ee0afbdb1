"""Settings from the environment and the contract loader (extension points)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator_core.config import (
    DEFAULT_REPLAY_PATH,
    Settings,
    granularity_seconds,
    load_settings,
)
from coordinator_core.contract import CrunchContract, load_contract
from coordinator_core.domain.ranking import default_rank
from coordinator_core.errors import ConfigurationError
from coordinator_core.scoring.rules import absolute_error_bps, directional_pnl_bps

TESTS_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting from the outer environment or from a ``.env`` in the working directory."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(TESTS_DIR))  # so that ``contract_fixture`` imports
    return tmp_path


# -- defaults -------------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///./coordinator.db"
    assert settings.model_gateway == "local"
    assert settings.feed_source == "replay"
    assert settings.checkpoint_interval_seconds == 604_800
    assert settings.crunch_id == "starter-challenge"
    assert settings.model_base_classname == "tracker.TrackerBase"
    assert settings.feed_record_ttl_days == 90


def test_default_feed_is_the_shipped_hourly_btc_replay() -> None:
    settings = load_settings()
    assert settings.feed_kind == "candle"
    assert settings.feed_granularity == "1h"
    assert settings.granularity_seconds == 3600
    assert settings.subjects == ["BTC"]
    assert Path(settings.replay_path) == DEFAULT_REPLAY_PATH
    assert DEFAULT_REPLAY_PATH.exists()
    assert settings.scoring_function == "coordinator_core.scoring.rules:absolute_error_bps"
    assert settings.missing_prediction_policy == "worst_in_round"


def test_env_values_are_read_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEED_SUBJECTS", " btc, eth ,")
    monkeypatch.setenv("FEED_GRANULARITY", "1m")
    monkeypatch.setenv("CHECKPOINT_INTERVAL_SECONDS", "7200")
    monkeypatch.setenv("MISSING_PREDICTION_POLICY", "constant:-100")
    settings = load_settings()
    assert settings.subjects == ["BTC", "ETH"]
    assert settings.granularity_seconds == 60
    assert settings.max_staleness_seconds == 2 * 60 + 60
    assert settings.checkpoint_interval_seconds == 7200
    assert settings.missing_prediction_policy == "constant:-100"


def test_local_env_file_in_cwd_is_read_and_wins_over_dot_env(clean_env: Path) -> None:
    (clean_env / ".env").write_text("CRUNCH_ID=from-dot-env\nNETWORK=mainnet\n")
    (clean_env / ".local.env").write_text("CRUNCH_ID=from-local-env\n")
    settings = load_settings()
    assert settings.crunch_id == "from-local-env"
    assert settings.network == "mainnet"


def test_environment_wins_over_env_files(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".local.env").write_text("CRUNCH_ID=from-file\n")
    monkeypatch.setenv("CRUNCH_ID", "from-environment")
    assert load_settings().crunch_id == "from-environment"


# -- bad values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("FEED_GRANULARITY", "7x", "unknown granularity '7x'"),
        ("CHECKPOINT_INTERVAL_SECONDS", "abc", "valid integer"),
        ("FEED_RECORD_TTL_DAYS", "0", "greater than or equal to 1"),
        ("MISSING_PREDICTION_POLICY", "sometimes", "worst_in_round, exclude or constant"),
        ("MISSING_PREDICTION_POLICY", "constant:lots", "constant:<number>"),
        ("FEED_SUBJECTS", " , ", "at least one subject"),
        ("FEED_SOURCE", "bloomberg", "replay"),
        ("CHECKPOINT_ANCHOR", "next tuesday", "ISO-8601"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert f"{variable}: " in message
    assert reason in message
    assert repr(value) in message  # the offending value is shown


def test_checkpoint_interval_must_be_a_multiple_of_the_snapshot_period(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKPOINT_INTERVAL_SECONDS", "5000")
    with pytest.raises(
        ConfigurationError, match="CHECKPOINT_INTERVAL_SECONDS must be a multiple of SNAPSHOT_PERIOD_SECONDS"
    ):
        load_settings()


def test_several_bad_values_are_all_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEED_GRANULARITY", "7x")
    monkeypatch.setenv("FEED_RECORD_TTL_DAYS", "0")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert "FEED_GRANULARITY" in str(info.value)
    assert "FEED_RECORD_TTL_DAYS" in str(info.value)


def test_granularity_seconds_names_the_variable() -> None:
    assert granularity_seconds("15m") == 900
    with pytest.raises(ConfigurationError, match="FEED_GRANULARITY: unknown granularity '2w'"):
        granularity_seconds("2w")


# -- contract loading -------------------------------------------------------------------------------


def test_default_contract() -> None:
    contract = load_contract(load_settings())
    assert isinstance(contract, CrunchContract)
    assert contract.scoring_function is absolute_error_bps
    assert contract.rank is default_rank
    assert contract.aggregation.ranking_direction == "desc"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("no_such_module_for_tests:score", "cannot import module 'no_such_module_for_tests'"),
        ("coordinator_core.scoring.rules:no_such_rule", "has no attribute 'no_such_rule'"),
        ("coordinator_core.scoring.rules:BPS", "is not callable"),
        ("contract_fixture:NOT_CALLABLE", "is not callable"),
        ("contract_fixture:one_argument", "must accept 2 positional arguments"),
        ("contract_fixture:three_arguments", "must accept 2 positional arguments"),
        ("nodots", "is not a dotted path"),
    ],
    ids=["no-module", "no-attribute", "not-callable-float", "not-callable-int", "one-arg", "three-args", "not-dotted"],
)
def test_bad_scoring_function_names_the_variable(monkeypatch: pytest.MonkeyPatch, path: str, reason: str) -> None:
    monkeypatch.setenv("SCORING_FUNCTION", path)
    settings = load_settings()
    with pytest.raises(ConfigurationError, match=f"^SCORING_FUNCTION: .*{reason}"):
        load_contract(settings)


@pytest.mark.parametrize(
    "path",
    ["coordinator_core.scoring.rules:directional_pnl_bps", "coordinator_core.scoring.rules.directional_pnl_bps"],
    ids=["colon", "dotted"],
)
def test_scoring_function_override_is_used(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    monkeypatch.setenv("SCORING_FUNCTION", path)
    contract = load_contract(load_settings())
    assert contract.scoring_function is directional_pnl_bps
    # and it is what score() runs: pnl of a wrong-way call, not the absolute error
    assert contract.score({"value": 0.01}, {"return": -0.005})["value"] == pytest.approx(-50.0)


@pytest.mark.parametrize(
    "path",
    [
        "contract_fixture:make_contract",
        "contract_fixture:CONTRACT",
    ],
    ids=["factory", "instance"],
)
def test_crunch_contract_from_a_module(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    import contract_fixture

    monkeypatch.setenv("CRUNCH_CONTRACT", path)
    contract = load_contract(load_settings())
    assert isinstance(contract, CrunchContract)
    assert contract.aggregation.ranking_direction == "asc"
    # the contract's own rule wins over the default SCORING_FUNCTION
    assert contract.scoring_function is contract_fixture.squared_error_bps2
    assert contract.score({"value": 0.01}, {"return": -0.005})["value"] == pytest.approx(150.0**2)


def test_explicit_scoring_function_overrides_the_contracts_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUNCH_CONTRACT", "contract_fixture:make_contract")
    monkeypatch.setenv("SCORING_FUNCTION", "coordinator_core.scoring.rules:directional_pnl_bps")
    contract = load_contract(load_settings())
    assert contract.scoring_function is directional_pnl_bps
    assert contract.aggregation.ranking_direction == "asc"  # the rest of the contract is kept


def test_crunch_contract_must_give_a_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUNCH_CONTRACT", "contract_fixture:make_not_a_contract")
    with pytest.raises(ConfigurationError, match="^CRUNCH_CONTRACT: .*did not give a CrunchContract"):
        load_contract(load_settings())


def test_crunch_contract_bad_path_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUNCH_CONTRACT", "contract_fixture:no_such_factory")
    with pytest.raises(ConfigurationError, match="^CRUNCH_CONTRACT: .*no attribute 'no_such_factory'"):
        load_contract(load_settings())


def test_other_extension_points_check_their_arity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADERBOARD_RANKER", "contract_fixture:one_argument")
    with pytest.raises(ConfigurationError, match="^LEADERBOARD_RANKER: .*must accept 3 positional arguments"):
        load_contract(load_settings())


def test_provider_keys_from_settings_fill_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUNCH_PUBKEY", "CrunchPk")
    monkeypatch.setenv("COMPUTE_PROVIDER_PUBKEY", "ComputePk")
    monkeypatch.setenv("DATA_PROVIDER_PUBKEY", "DataPk")
    contract = load_contract(load_settings())
    assert (contract.crunch_pubkey, contract.compute_provider, contract.data_provider) == (
        "CrunchPk",
        "ComputePk",
        "DataPk",
    )
