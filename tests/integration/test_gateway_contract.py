"""The ``ModelGateway`` contract, run against both backends with the same assertions.

``local`` loads the test models in-process; ``model_runner`` reaches the same model folders through
real ``crunch-model-runner`` node processes on 127.0.0.1 (one per model, started once per test
session and shared) announced by the local orchestrator double over its websocket protocol.
Nodes keep their model instance between tests (Setup is idempotent), so every test ticks the data
it relies on before predicting.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator_core.contract import CallArgument, ModelCalls, ModelMethod
from coordinator_core.errors import ConfigurationError
from coordinator_core.gateway.base import CallStatus, ModelGateway

TIMEOUT = 0.6  # per-call deadline of both backends in these tests
SLOW_SECONDS = 1.2  # the slow model's predict
ECHO_SECONDS = 0.1  # the echo model's predict: proves exec_time is in milliseconds
CRUNCH_ID = "contract-crunch"
BASE = "tracker.TrackerBase"

HEADER = "import time\n\nfrom tracker import TrackerBase\n\n\n"
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "good": (
        """
        class Good(TrackerBase):
            def predict(self, subject, horizon_seconds, step_seconds):
                closes = self.closes(subject)
                return {"value": closes[-1] / closes[0] - 1 if len(closes) > 1 else 0.0}
        """,
        {
            "name": "Good one",
            "player_id": "player-g",
            "player_name": "Gina",
            "wallet": "WaLLetG00d",
            "hotkey": "hk-good",
        },
    ),
    "echo": (
        f"""
        class Echo(TrackerBase):
            def tick(self, data):
                super().tick(data)
                self.tick_type = "dict" if isinstance(data, dict) else type(data).__name__  # a JSON object

            def predict(self, subject, horizon_seconds=None, step_seconds=None):
                time.sleep({ECHO_SECONDS})
                return {{"value": 0.0, "tick_type": getattr(self, "tick_type", None),
                        "args": [[type(a).__name__, a] for a in (subject, horizon_seconds, step_seconds)]}}
        """,
        {"name": "echo", "player_id": "player-e", "player_name": "Ed"},
    ),
    "slow": (
        f"""
        class Slow(TrackerBase):
            def predict(self, subject, horizon_seconds, step_seconds):
                time.sleep({SLOW_SECONDS})
                return {{"value": 0.0}}
        """,
        {"name": "slow", "player_id": "player-s", "player_name": "Sam"},
    ),
    "boom": (
        """
        class Boom(TrackerBase):
            def predict(self, subject, horizon_seconds, step_seconds):
                raise RuntimeError("kaboom 42")
        """,
        {"name": "boom", "player_id": "player-b", "player_name": "Bo"},
    ),
    "badvalue": (
        """
        class BadValue(TrackerBase):
            def predict(self, subject, horizon_seconds, step_seconds):
                return {"value": "up"}
        """,
        {"name": "badvalue", "player_id": "player-v", "player_name": "Val"},
    ),
    "nosub": (
        """
        class NotAModel:
            def predict(self, subject, horizon_seconds, step_seconds):
                return {"value": 0.0}
        """,
        {"name": "nosub", "player_id": "player-n", "player_name": "Nell"},
    ),
}
# nodes that the model_runner tests announce and withdraw themselves (not loaded by the local backend)
EXTRA_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "joiner": (
        """
        class Joiner(TrackerBase):
            def predict(self, subject, horizon_seconds, step_seconds):
                return {"value": 0.5}
        """,
        {"name": "joiner", "player_id": "player-j", "player_name": "Jo"},
    ),
}
LOADABLE = set(MODELS) - {"nosub"}


def write_models(root: Path, models: dict[str, tuple[str, dict[str, Any]]]) -> Path:
    for name, (body, meta) in models.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "main.py").write_text(HEADER + textwrap.dedent(body).strip() + "\n")
        (folder / "model.json").write_text(json.dumps(meta))
    return root


def candles(*closes: float) -> dict[str, Any]:
    """A tick input in the default contract's shape."""
    return {
        "symbol": "BTC",
        "subject": "BTC",
        "asof_ts": 1_700_000_000,
        "granularity": "1h",
        "candles": [
            {"ts": 1_700_000_000 - 3600 * (len(closes) - i), "open": c, "high": c, "low": c, "close": c, "volume": 1.0}
            for i, c in enumerate(closes)
        ],
    }


# -- real model nodes, once per test process ---------------------------------------------------
class NodePool:
    """Every test model as a node process, started once and shared by both test modules."""

    def __init__(self) -> None:
        if importlib.util.find_spec("model_runner") is None:  # never imported here: it runs as node processes
            message = "crunch-model-runner is not installed (uv pip install --no-deps crunch-model-runner==0.4.2)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        from coordinator_core.gateway.orchestrator import ModelNode

        self.root = Path(tempfile.mkdtemp(prefix="gateway-contract-"))
        self.models_dir = write_models(self.root / "models", MODELS)
        self.extra_dir = write_models(self.root / "extra", EXTRA_MODELS)
        folders = [*sorted(self.models_dir.iterdir()), *sorted(self.extra_dir.iterdir())]
        self.nodes = {f.name: ModelNode(f.name, f, log_dir=self.root / "logs") for f in folders}
        started = time.perf_counter()
        for node in self.nodes.values():
            node.start()
        try:
            threads = [threading.Thread(target=node.wait_ready, args=(90,)) for node in self.nodes.values()]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for node in self.nodes.values():
                node.wait_ready(5)  # raises with the node's log if it did not come up
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        atexit.register(self.stop)

    def state(self, model_id: str, state: str = "RUNNING", deployment: str | None = None) -> dict[str, Any]:
        return self.nodes[model_id].state(state, deployment or f"{model_id}_20260101_000000_000")

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)


_POOL: list[NodePool] = []


def node_pool() -> NodePool:
    if not _POOL:
        _POOL.append(NodePool())
    return _POOL[0]


def orchestrator_for(pool: NodePool, model_ids: list[str], **options: Any) -> Any:
    from coordinator_core.gateway.orchestrator import LocalOrchestrator

    orchestrator = LocalOrchestrator(crunch_id=CRUNCH_ID, **options).start()
    for model_id in model_ids:
        orchestrator.announce(pool.state(model_id))
    return orchestrator


def runner_gateway(orchestrator: Any, **options: Any) -> Any:
    from coordinator_core.gateway.model_runner import ModelRunnerGateway

    settings: dict[str, Any] = {"timeout_seconds": TIMEOUT, "reconnect_seconds": 0.2, "connect_timeout_seconds": 20.0}
    settings.update(options)
    return ModelRunnerGateway(
        host=orchestrator.host,
        port=orchestrator.port,
        crunch_id=orchestrator.crunch_id,
        base_classname=BASE,
        **settings,
    )


@pytest.fixture(scope="module")
def contract_orchestrator() -> Iterator[Any]:
    """The contract models announced RUNNING; reports are recorded but stop nothing (like nosub's)."""
    orchestrator = orchestrator_for(node_pool(), sorted(MODELS), stop_reported=False)
    yield orchestrator
    orchestrator.close()


@pytest.fixture(scope="module")
def local_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_models(tmp_path_factory.mktemp("local-models"), MODELS)


@pytest.fixture(params=["local", "model_runner"])
def make_gateway(request: pytest.FixtureRequest, local_models_dir: Path) -> Iterator[Callable[..., ModelGateway]]:
    """Factory of the backend under test: ``make_gateway(calls=None)``."""
    made: list[Any] = []

    def factory(calls: ModelCalls | None = None) -> ModelGateway:
        if request.param == "local":
            from coordinator_core.gateway.local import LocalGateway

            gateway: Any = LocalGateway(local_models_dir, BASE, TIMEOUT, calls=calls)
        else:
            gateway = runner_gateway(request.getfixturevalue("contract_orchestrator"), calls=calls)
        made.append(gateway)
        return gateway

    yield factory
    for gateway in made:
        gateway.close()


@pytest.fixture
def gateway(make_gateway: Callable[..., ModelGateway]) -> ModelGateway:
    return make_gateway()


# -- the contract -----------------------------------------------------------------------------
def test_models_lists_every_registered_model_with_its_identity(gateway: ModelGateway) -> None:
    infos = {info.model_id: info for info in gateway.models()}

    assert set(infos) == set(MODELS)  # nosub is registered even though it cannot be called
    good = infos["good"]
    assert (good.name, good.player_id, good.player_name) == ("Good one", "player-g", "Gina")
    assert (good.wallet, good.hotkey) == ("WaLLetG00d", "hk-good")
    assert good.deployment_id
    assert all(info.state == "RUNNING" for info in infos.values())
    assert set(getattr(gateway, "load_errors", {})) == {"nosub"}


def test_tick_then_predict_gives_each_model_its_own_result(gateway: ModelGateway) -> None:
    ticks = gateway.tick(candles(100.0, 105.0, 110.0))
    assert ticks["good"].status is CallStatus.SUCCESS and ticks["good"].output is None
    assert ticks["echo"].status is CallStatus.SUCCESS
    assert "nosub" not in ticks  # never set up: no answer at all (ABSENT in a round)

    answers = gateway.predict("BTC", 3600, 900)

    assert set(answers) == LOADABLE
    assert answers["good"].status is CallStatus.SUCCESS
    assert answers["good"].output == {"value": pytest.approx(0.1)}
    assert answers["good"].detail is None
    echo = answers["echo"]
    assert echo.status is CallStatus.SUCCESS
    assert echo.output["args"] == [["str", "BTC"], ["int", 3600], ["int", 900]]  # STRING, INT, INT
    assert echo.output["tick_type"] == "dict"  # tick(data) got the JSON object
    assert ECHO_SECONDS * 1000 <= echo.exec_time_ms < TIMEOUT * 1000  # milliseconds, not µs


def test_a_slow_model_times_out_without_holding_up_the_round(gateway: ModelGateway) -> None:
    gateway.tick(candles(100.0, 101.0))
    started = time.perf_counter()
    answers = gateway.predict("BTC", 3600, 900)
    elapsed = time.perf_counter() - started

    assert answers["slow"].status is CallStatus.TIMEOUT
    assert answers["slow"].output is None and answers["slow"].detail
    assert answers["slow"].exec_time_ms <= TIMEOUT * 1000 + 300
    assert elapsed < TIMEOUT + 0.5
    assert answers["good"].status is CallStatus.SUCCESS


def test_a_raising_model_fails_with_the_error_text(gateway: ModelGateway) -> None:
    gateway.tick(candles(100.0, 101.0))
    answers = gateway.predict("BTC", 3600, 900)

    boom = answers["boom"]
    assert boom.status is CallStatus.FAILED
    assert boom.output is None
    assert "kaboom 42" in boom.detail
    assert 0 <= boom.exec_time_ms < TIMEOUT * 1000


def test_a_bad_output_is_returned_as_is_for_the_service_to_judge(gateway: ModelGateway) -> None:
    answers = gateway.predict("BTC", 3600, 900)

    assert answers["badvalue"].status is CallStatus.SUCCESS
    assert answers["badvalue"].output == {"value": "up"}  # never coerced by the gateway


def test_call_methods_and_argument_types_come_from_the_contract(make_gateway: Callable[..., ModelGateway]) -> None:
    calls = ModelCalls(
        tick=None,
        predict=ModelMethod(
            name="predict",
            arguments=(
                CallArgument(value="subject", type="STRING"),
                CallArgument(value="horizon_seconds", type="DOUBLE", keyword="horizon_seconds"),
            ),
        ),
    )
    gateway = make_gateway(calls)

    assert gateway.tick(candles(1.0, 2.0)) == {}  # tick=None: models are never ticked
    echo = gateway.predict("ETH", 7200, 60)["echo"]

    assert echo.status is CallStatus.SUCCESS
    assert echo.output["args"] == [["str", "ETH"], ["float", 7200.0], ["NoneType", None]]


def test_a_custom_method_name_is_called_on_every_model(make_gateway: Callable[..., ModelGateway]) -> None:
    calls = ModelCalls(
        tick=ModelMethod(name="tick", arguments=(CallArgument(value="data", type="JSON", keyword="data"),)),
        predict=ModelMethod(name="closes", arguments=(CallArgument(value="subject", type="STRING"),)),
    )
    gateway = make_gateway(calls)

    gateway.tick(candles(100.0, 120.0))
    answers = gateway.predict("BTC", 3600, 900)

    assert answers["good"].status is CallStatus.SUCCESS
    assert answers["good"].output == [100.0, 120.0]
    assert answers["slow"].output == [100.0, 120.0] or answers["slow"].status is CallStatus.TIMEOUT


def test_a_method_the_base_class_lacks_is_refused_before_any_call(make_gateway: Callable[..., ModelGateway]) -> None:
    calls = ModelCalls(predict=ModelMethod(name="forecast", arguments=()))
    with pytest.raises(ConfigurationError, match="forecast"):
        make_gateway(calls)


def test_a_round_persists_every_outcome_through_the_predict_service(gateway: ModelGateway, sqlite_url: str) -> None:
    from coordinator_core.bootstrap import build_runtime
    from coordinator_core.db.tables import Model, Prediction
    from coordinator_core.services.configs import seed_configs
    from coordinator_core.services.ingest import ingest
    from coordinator_core.services.predict import predict_round
    from tests._svc_helpers import HOUR, rows, utc

    now = utc(2019, 9, 1, 12)
    rt = build_runtime(database_url=sqlite_url)
    seed_configs(rt.uow, rt.contract, rt.settings, now)
    ingest(rt.uow, rt.sources, rt.settings, now - 48 * HOUR)
    ingest(rt.uow, rt.sources, rt.settings, now)

    result = predict_round(rt.uow, gateway, rt.contract, rt.settings, now)

    predictions = {(p["prediction_config_id"], p["model_id"]): p for p in rows(rt.engine, Prediction)}
    configs = {config for config, _ in predictions}
    assert len(configs) == 2 and len(predictions) == 2 * len(MODELS)
    for config in configs:
        p = {model_id: predictions[(config, model_id)] for model_id in MODELS}
        assert p["good"]["status"] == "PENDING" and p["good"]["runner_status"] == "SUCCESS"
        assert p["badvalue"]["status"] == "FAILED"
        assert "invalid output" in p["badvalue"]["failed_reason"] and "value" in p["badvalue"]["failed_reason"]
        assert p["badvalue"]["inference_output_jsonb"] == {"raw_output": {"value": "up"}}
        assert p["boom"]["status"] == "FAILED" and "kaboom 42" in p["boom"]["failed_reason"]
        assert p["slow"]["status"] == "FAILED" and p["slow"]["failed_reason"].startswith("TIMEOUT")
        assert p["nosub"]["status"] == "ABSENT" and p["nosub"]["failed_reason"].startswith("no answer")
        assert p["nosub"]["exec_time_ms"] == 0
    assert result.statuses["PENDING"] == 2 and result.statuses["ABSENT"] == 2
    registered = {m["id"]: m for m in rows(rt.engine, Model)}
    assert set(registered) == set(MODELS)
    assert all(m["state"] == "RUNNING" for m in registered.values())
    assert (
        registered["good"]["name"],
        registered["good"]["player_name"],
        registered["good"]["wallet"],
        registered["good"]["hotkey"],
    ) == ("Good one", "Gina", "WaLLetG00d", "hk-good")
    rt.close()


def test_the_node_is_not_imported_by_the_coordinator() -> None:
    """Nodes run as processes of their own; the gateway must never load the node package."""
    assert "model_runner.server" not in sys.modules
