"""The model-runner backend against real model nodes: what only a remote backend has.

Models joining and leaving mid-run, orchestrator and coordinator restarts, failure reports and
thresholds, an unreachable node, an orchestrator that is down, and the argument encoding. The
nodes are the session's shared ones (``tests/test_gateway_contract.py``); each test runs its own
orchestrator double and gateway.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from coordinator_core.contract import CallArgument, ModelCalls, ModelMethod
from coordinator_core.errors import ConfigurationError, TransientError
from coordinator_core.gateway.base import CallStatus
from tests.integration.test_gateway_contract import CRUNCH_ID, TIMEOUT, candles, node_pool, orchestrator_for

STABLE = ["badvalue", "boom", "good"]  # fast models whose nodes are never busy


def eventually(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture
def pool() -> Any:
    return node_pool()


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    """Things with ``close()`` to close after the test, last first."""
    items: list[Any] = []
    yield items
    for item in reversed(items):
        item.close()


@pytest.fixture
def connect(cleanup: list[Any]) -> Callable[..., Any]:
    from tests.integration.test_gateway_contract import runner_gateway

    def factory(orchestrator: Any, *, ready: bool = True, **options: Any) -> Any:
        gateway = runner_gateway(orchestrator, **options)
        cleanup.append(gateway)
        if ready:
            gateway.wait_ready()
        return gateway

    return factory


@pytest.fixture
def orchestrate(pool: Any, cleanup: list[Any]) -> Callable[..., Any]:
    def factory(model_ids: list[str], **options: Any) -> Any:
        orchestrator = orchestrator_for(pool, model_ids, **options)
        cleanup.append(orchestrator)
        return orchestrator

    return factory


def ids(gateway: Any, state: str = "RUNNING") -> set[str]:
    return {info.model_id for info in gateway.models() if info.state == state}


def test_a_model_joining_mid_run_is_called_from_the_next_round(pool, orchestrate, connect) -> None:
    orchestrator = orchestrate(STABLE)
    gateway = connect(orchestrator)
    assert set(gateway.predict("BTC", 3600, 900)) == set(STABLE)

    started = time.perf_counter()
    orchestrator.announce(pool.state("joiner"))

    assert eventually(lambda: "joiner" in gateway.callable_models())
    joined = time.perf_counter() - started
    assert "joiner" in ids(gateway)
    answers = gateway.predict("BTC", 3600, 900)
    assert answers["joiner"].status is CallStatus.SUCCESS and answers["joiner"].output == {"value": 0.5}
    assert joined < 2.0


def test_a_model_leaving_mid_run_is_stopped_and_no_longer_called(pool, orchestrate, connect) -> None:
    orchestrator = orchestrate(STABLE)
    gateway = connect(orchestrator)

    orchestrator.set_state("boom", "STOPPED")

    assert eventually(lambda: "boom" not in gateway.callable_models())
    infos = {info.model_id: info for info in gateway.models()}
    assert infos["boom"].state == "STOPPED"
    assert set(gateway.predict("BTC", 3600, 900)) == {"badvalue", "good"}
    assert "boom" not in gateway.load_errors  # STOPPED models owe no answer


def test_a_stop_of_an_older_deployment_is_ignored(pool, orchestrate, connect) -> None:
    orchestrator = orchestrate(["good"])
    gateway = connect(orchestrator)
    old = pool.state("good")
    orchestrator.announce(pool.state("good", deployment="good_20260202_000000_000"))
    assert eventually(lambda: gateway.models()[0].deployment_id == "good_20260202_000000_000")

    orchestrator._broadcast([{**old, "state": "STOPPED"}])  # a late STOPPED for the replaced deployment
    time.sleep(0.3)

    assert gateway.models()[0].state == "RUNNING"
    assert eventually(lambda: gateway.callable_models() == ["good"])
    assert gateway.predict("BTC", 3600, 900)["good"].status is CallStatus.SUCCESS


def test_an_orchestrator_restart_changes_nothing(pool, orchestrate, connect) -> None:
    orchestrator = orchestrate(STABLE)
    gateway = connect(orchestrator, reconnect_seconds=0.1)
    before = gateway.models()
    events = gateway.events

    orchestrator.stop_server()
    # while it is down: the registry and the gRPC channels to the nodes stay as they were
    assert gateway.models() == before
    gateway.tick(candles(1.0, 2.0))
    assert gateway.predict("BTC", 3600, 900)["good"].status is CallStatus.SUCCESS
    orchestrator.start()

    assert eventually(lambda: gateway.events > events)  # a fresh init after the reconnect
    assert gateway.models() == before
    assert gateway.callable_models() == sorted(STABLE)
    assert gateway.predict("BTC", 3600, 900)["good"].status is CallStatus.SUCCESS


def test_after_an_orchestrator_restart_the_registry_follows_its_new_list(pool, orchestrate, connect) -> None:
    orchestrator = orchestrate(STABLE)
    gateway = connect(orchestrator, reconnect_seconds=0.1)

    orchestrator.stop_server()
    orchestrator.forget("boom")  # lost while down
    orchestrator.announce(pool.state("joiner"))  # started while down (nobody to tell)
    orchestrator.start()

    assert eventually(lambda: ids(gateway) == {"badvalue", "good", "joiner"})
    assert eventually(lambda: gateway.callable_models() == ["badvalue", "good", "joiner"])


def test_a_coordinator_restart_changes_nothing_in_the_models_table(pool, orchestrate, connect, sqlite_url) -> None:
    from datetime import UTC, datetime

    from coordinator_core.db.engine import get_engine
    from coordinator_core.db.tables import Model
    from coordinator_core.db.uow import SqlUnitOfWork
    from tests._svc_helpers import rows

    engine = get_engine(sqlite_url)
    orchestrator = orchestrate(STABLE)
    first = connect(orchestrator)
    with SqlUnitOfWork(engine) as work:
        work.models.sync(first.models(), datetime(2026, 1, 1, tzinfo=UTC))
        work.commit()
    before = {
        m["id"]: {k: m[k] for k in ("name", "deployment_identifier", "player_id", "state")} for m in rows(engine, Model)
    }
    first.close()

    second = connect(orchestrator)  # a new process would do exactly this
    with SqlUnitOfWork(engine) as work:
        work.models.sync(second.models(), datetime(2026, 1, 1, 1, tzinfo=UTC))
        running = work.models.running_ids()
        work.commit()

    after = {
        m["id"]: {k: m[k] for k in ("name", "deployment_identifier", "player_id", "state")} for m in rows(engine, Model)
    }
    assert after == before and running == sorted(STABLE)


def test_repeated_failures_are_reported_and_the_orchestrator_stops_the_model(orchestrate, connect) -> None:
    orchestrator = orchestrate(STABLE, stop_reported=True)
    gateway = connect(orchestrator, max_consecutive_failures=1)

    for _ in range(2):
        assert gateway.predict("BTC", 3600, 900)["boom"].status is CallStatus.FAILED

    assert eventually(lambda: orchestrator.reports)
    assert orchestrator.reports[0]["model_id"] == "boom"
    assert orchestrator.reports[0]["failure_code"] == "MULTIPLE_FAILED"
    assert eventually(lambda: {i.model_id: i.state for i in gateway.models()}["boom"] == "STOPPED")
    assert "boom" not in gateway.predict("BTC", 3600, 900)


def test_default_thresholds_keep_a_slow_model_in_the_competition(orchestrate, connect) -> None:
    orchestrator = orchestrate(["good", "slow"], stop_reported=True)
    gateway = connect(orchestrator, timeout_seconds=0.2)

    statuses = [gateway.predict("BTC", 3600, 900)["slow"].status for _ in range(6)]

    assert set(statuses) == {CallStatus.TIMEOUT}
    assert orchestrator.reports == []
    assert "slow" in gateway.callable_models()


def test_the_library_default_threshold_would_drop_a_model_after_one_slow_call(orchestrate, connect) -> None:
    orchestrator = orchestrate(["good", "slow"], stop_reported=True)
    gateway = connect(orchestrator, timeout_seconds=0.2, max_consecutive_timeouts=3)

    for _ in range(6):
        gateway.predict("BTC", 3600, 900)

    assert eventually(lambda: [r["failure_code"] for r in orchestrator.reports] == ["MULTIPLE_TIMEOUT"])


def test_a_model_whose_setup_fails_is_reported_and_absent_with_the_reason(orchestrate, connect) -> None:
    orchestrator = orchestrate(["good", "nosub"], stop_reported=False)
    gateway = connect(orchestrator)

    assert gateway.callable_models() == ["good"]
    assert "nosub" in ids(gateway)  # the orchestrator still says RUNNING: ABSENT, with a reason
    reason = gateway.load_errors["nosub"]
    assert reason.startswith("BAD_IMPLEMENTATION") and "No Inherited class" in reason
    assert [(r["model_id"], r["failure_code"]) for r in orchestrator.reports] == [("nosub", "BAD_IMPLEMENTATION")]


def test_an_unreachable_node_neither_delays_the_first_round_nor_holds_up_others(pool, orchestrate, connect) -> None:
    from coordinator_core.gateway.orchestrator import free_port

    orchestrator = orchestrate(["good"])
    ghost = {**pool.state("good"), "model_id": "ghost", "deployment_id": "ghost_1", "port": free_port()}
    orchestrator.announce(ghost)

    started = time.perf_counter()
    gateway = connect(orchestrator, ready=False, connect_timeout_seconds=10.0)
    answers = gateway.predict("BTC", 3600, 900)
    first_round = time.perf_counter() - started

    assert first_round < 3.0  # not the connect timeout: a refused connection is not waited for
    assert set(answers) == {"good"}
    assert "connecting" in gateway.load_errors["ghost"]
    # other models' events are not held up behind the 80 s the client spends on the ghost
    orchestrator.announce(pool.state("joiner"))
    assert eventually(lambda: "joiner" in gateway.callable_models(), timeout=3)
    # and a STOPPED for the ghost cancels its set-up at once
    orchestrator.set_state("ghost", "STOPPED")
    assert eventually(lambda: "ghost" not in gateway._runner.model_cluster.pending_model_runs, timeout=3)
    assert "ghost" not in gateway.load_errors
    assert orchestrator.reports == []


def test_an_orchestrator_that_is_down_fails_the_round_as_transient_then_recovers(pool, cleanup, connect) -> None:
    from coordinator_core.gateway.orchestrator import LocalOrchestrator, free_port

    orchestrator = LocalOrchestrator(crunch_id=CRUNCH_ID, port=free_port())  # not started yet
    cleanup.append(orchestrator)
    gateway = connect(orchestrator, ready=False, connect_timeout_seconds=0.5, reconnect_seconds=0.1)

    with pytest.raises(TransientError, match="sent no model list"):
        gateway.models()

    orchestrator.start()
    orchestrator.announce(pool.state("good"))
    assert eventually(lambda: gateway._init_received.is_set())
    assert ids(gateway) == {"good"}
    assert gateway.predict("BTC", 3600, 900)["good"].status is CallStatus.SUCCESS


def test_the_runtime_builds_the_model_runner_gateway_from_settings(orchestrate, sqlite_url) -> None:
    from coordinator_core.bootstrap import build_runtime
    from coordinator_core.gateway.model_runner import ModelRunnerGateway

    orchestrator = orchestrate(STABLE)
    rt = build_runtime(
        database_url=sqlite_url,
        model_gateway="model_runner",
        crunch_id=CRUNCH_ID,
        model_runner_node_host=orchestrator.host,
        model_runner_node_port=orchestrator.port,
        model_runner_timeout_seconds=TIMEOUT,
    )
    try:
        assert isinstance(rt.gateway, ModelRunnerGateway)
        assert rt.gateway is rt.gateway  # one gateway per process: connected once
        assert ids(rt.gateway) == set(STABLE)
        assert rt.gateway.timeout_seconds == TIMEOUT
    finally:
        rt.close()


def test_secure_modes_exclude_each_other(tmp_path) -> None:
    from coordinator_core.config import load_settings
    from coordinator_core.gateway.model_runner import ModelRunnerGateway

    settings = load_settings(
        model_gateway="model_runner",
        model_runner_secure_cert_dir=str(tmp_path),
        model_runner_gateway_key_path=str(tmp_path / "key.pem"),
    )
    with pytest.raises(ConfigurationError, match="exclude each other"):
        ModelRunnerGateway.from_settings(settings)
    with pytest.raises(ConfigurationError, match="MODEL_RUNNER_GATEWAY_KEY_PATH"):
        ModelRunnerGateway.from_settings(load_settings(model_runner_gateway_key_path=str(tmp_path / "none.pem")))


def test_arguments_are_encoded_with_the_declared_types_and_positions() -> None:
    from model_runner_client.grpc.generated.commons_pb2 import VariantType
    from model_runner_client.utils.datatype_transformer import decode_data

    from coordinator_core.gateway.model_runner import encode_arguments

    method = ModelMethod(
        name="predict",
        arguments=(
            CallArgument(value="subject", type="STRING"),
            CallArgument(value="horizon_seconds", type="INT"),
            CallArgument(value="step_seconds", type="DOUBLE", keyword="step"),
        ),
    )
    args, kwargs = encode_arguments(method, {"subject": "BTC", "horizon_seconds": 3600, "step_seconds": 900})

    assert [a.position for a in args] == [1, 2]
    assert [(a.data.type, decode_data(a.data.value, a.data.type)) for a in args] == [
        (VariantType.STRING, "BTC"),
        (VariantType.INT, 3600),
    ]
    assert [(k.keyword, k.data.type, decode_data(k.data.value, k.data.type)) for k in kwargs] == [
        ("step", VariantType.DOUBLE, 900.0)
    ]
    (data,), _ = encode_arguments(ModelCalls().tick, {"data": {"candles": [1, 2]}})
    assert data.data.type == VariantType.JSON and decode_data(data.data.value, VariantType.JSON) == {"candles": [1, 2]}
    with pytest.raises(ConfigurationError, match="not an integer"):
        encode_arguments(method, {"subject": "BTC", "horizon_seconds": 1.5, "step_seconds": 1})


def test_contract_calls_refuse_unknown_values() -> None:
    with pytest.raises(ValueError, match="unknown value"):
        ModelCalls(predict=ModelMethod(name="predict", arguments=(CallArgument(value="price"),)))


def test_serve_local_runs_the_models_for_the_real_gateway_and_ctrl_c_stops_everything(tmp_path, cleanup) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys

    from coordinator_core.gateway.orchestrator import free_port
    from tests.integration.test_gateway_contract import MODELS, runner_gateway, write_models

    models = write_models(tmp_path / "models", {k: MODELS[k] for k in ("good", "boom")})
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coordinator_cli.main",
            "models",
            "serve-local",
            "--models-dir",
            str(models),
            "--port",
            str(port),
            "--crunch-id",
            "cli-crunch",
            "--log-dir",
            str(tmp_path / "logs"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line or len(lines) > 50:
                break
        output = "".join(lines)
        assert f"ws://127.0.0.1:{port}/cli-crunch" in output, output
        node_ports = [
            int(line.split()[1].rsplit(":", 1)[1])
            for line in lines
            if line.startswith("  boom") or line.startswith("  good")
        ]
        assert len(node_ports) == 2, output

        class Orchestrator:
            host, crunch_id = "127.0.0.1", "cli-crunch"

        Orchestrator.port = port
        gateway = runner_gateway(Orchestrator)
        try:
            assert {i.model_id: i.name for i in gateway.models()} == {"good": "Good one", "boom": "boom"}
            gateway.tick(candles(10.0, 11.0))
            answers = gateway.predict("BTC", 3600, 900)
            assert answers["good"].output == {"value": pytest.approx(0.1)}
            assert answers["boom"].status is CallStatus.FAILED
        finally:
            gateway.close()

        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output + rest
        assert "stopping" in rest
        for node_port in [port, *node_ports]:  # nothing it started is left listening
            with socket.socket() as sock:
                assert sock.connect_ex(("127.0.0.1", node_port)) != 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("tick_cooldown", [False, True])
def test_after_a_timeout_ticks_are_skipped_only_when_configured(orchestrate, connect, tick_cooldown) -> None:
    orchestrator = orchestrate(["good", "slow"])
    gateway = connect(orchestrator, timeout_seconds=0.2, tick_cooldown=tick_cooldown)

    assert gateway.predict("BTC", 3600, 900)["slow"].status is CallStatus.TIMEOUT
    tick = gateway.tick(candles(1.0, 2.0))["slow"]

    skipped = (tick.detail or "").startswith("PREEMPTIVE_SKIP")
    assert skipped is tick_cooldown  # without: a real call (answered, or "Server busy" while still sleeping)
