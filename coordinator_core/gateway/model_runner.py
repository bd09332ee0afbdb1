"""The production gateway: participant models on model nodes, through ``model-runner-client``.

``MODEL_GATEWAY=model_runner``. The orchestrator (``ws://MODEL_RUNNER_NODE_HOST:PORT/<CRUNCH_ID>``)
announces which models run where; every call goes over gRPC to each model's own node, concurrently,
with the per-call deadline ``MODEL_RUNNER_TIMEOUT_SECONDS``. Built on
``DynamicSubclassModelConcurrentRunner`` (model-runner-client 0.14.0, websockets 15).

Results
    SUCCESS → ``CallResult`` SUCCESS with the decoded output (validated by the predict service, never
    coerced here); FAILED and TIMEOUT keep the runner's status and detail (plus the node's message,
    e.g. ``FAILED: The model raised an exception: kaboom``, which the client alone drops);
    ``exec_time_ms`` is the client's ``exec_time_us`` / 1000.

Registry
    ``models()`` is what the orchestrator announced (``init`` replaces it, ``update`` amends it;
    a STOPPED of an older deployment is ignored, as the client does): model id, name, cruncher id
    and name, deployment id, wallet, hotkey, state. It does not depend on which models this process
    managed to connect to, so a coordinator restart or an orchestrator restart changes nothing in
    the ``models`` table; a RUNNING model that cannot be called is ABSENT with the reason from
    ``load_errors`` (set-up failure, still connecting, reported to the orchestrator).

Lifecycle (measured on the 2-core dev box, 16 real nodes on 127.0.0.1; ``benchmarks/model_runner_bench.py``)
    * importing the client (pandas, grpc, ...): ≈ 0.9 s, once per process;
    * connecting (websocket + ``init`` + gRPC channels + ``Setup`` of every model): 16 models
      ≈ 0.5 s for their first ``Setup`` ever (trivial constructors), ≈ 40–75 ms afterwards (the
      nodes keep their instance: ``Setup`` is idempotent);
    * a round on a connected gateway (``predict_round``, 1 config, 16 models, SQLite): overhead
      beyond the models' own time p50 ≈ 65–70 ms / p99 ≈ 240–320 ms, of which tick + predict
      p50 ≈ 45 ms / p99 ≈ 60–65 ms (≈ 1 ms of CPU per model and call on 2 cores) and the rest SQLite;
    * an announced node that does not listen: the client retries it for 80 s (5 × 10 s
      ``channel_ready`` + 2+4+8+16 s backoff) before reporting ``CONNECTION_FAILED``; an
      orchestrator that is down: it retries forever every ``MODEL_RUNNER_RECONNECT_SECONDS``.
    Connecting per round would add ≈ 50 ms to a ≈ 65 ms round (plus the import in a fresh
    process), and an unreachable node would stall every round. Hence: one gateway per process
    (``Runtime.gateway`` is cached, so a Prefect flow run that executes several due rounds reuses
    it), connected once and kept current by a background task that follows the orchestrator's
    updates and reconnects after an orchestrator restart. The client and its grpc.aio channels
    live on an event loop thread owned by the gateway; the API is sync. Orchestrator events are
    applied per model as independent tasks (the client applies them inline, so one unreachable
    node would hold up every later join and leave for 80 s; a newer state of the same model
    cancels its pending set-up). A fresh process waits at most
    ``MODEL_RUNNER_CONNECT_TIMEOUT_SECONDS`` for the model list and the set-up of the models it
    names, but not for a node that refuses connections (first call ≈ 90 ms instead of 10 s);
    models not set up by then are ABSENT from that round and join as soon as they are ready.
    With no model list at all the call raises ``OrchestratorUnavailable`` (a transient error: the
    round is retried, and no model is marked STOPPED).

Failure thresholds
    ``MODEL_RUNNER_MAX_CONSECUTIVE_FAILURES`` / ``_TIMEOUTS`` (default 100, as the reference engines;
    0 = never). Beyond them the client reports the model to the orchestrator (if
    ``MODEL_RUNNER_REPORT_FAILURE``), which stops it. The client's cool-down is kept for ``predict``:
    after k timeouts in a row a model skips ceil(k/2) calls (TIMEOUT ``PREEMPTIVE_SKIP``). Ticks are
    never skipped unless ``MODEL_RUNNER_TICK_COOLDOWN``: a skipped tick leaves the model predicting
    on stale data, which can keep it slow (in the demo backtest the ``slow`` example model failed
    106 predictions with tick skipping, 34 without; 24 in-process, which has no cool-down).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from coordinator_core.contract import ModelCalls, ModelMethod
from coordinator_core.errors import ConfigurationError, TransientError
from coordinator_core.gateway.base import CallResult, CallStatus, ModelInfo, checked_steps, late

log = logging.getLogger(__name__)

_FOREVER = 10**9


class OrchestratorUnavailable(TransientError):
    """The model orchestrator did not send its model list in time (retry later)."""


def encode_arguments(method: ModelMethod, values: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """``(list[Argument], list[KwArgument])`` for ``method`` (positions from 1, as the reference engines)."""
    from model_runner_client.grpc.generated.commons_pb2 import (
        Argument,
        KwArgument,
        Variant,
        VariantType,
    )
    from model_runner_client.utils.datatype_transformer import encode_data

    positional, keywords = method.bind(values)

    def variant(kind: str, value: Any) -> Any:
        wire = getattr(VariantType, kind)
        try:
            return Variant(type=wire, value=encode_data(wire, value))
        except (ValueError, TypeError, OverflowError) as exc:
            raise ConfigurationError(f"{method.name}: cannot encode {value!r:.80} as {kind} ({exc})") from exc

    args = [Argument(position=i, data=variant(kind, value)) for i, (kind, value) in enumerate(positional, start=1)]
    kwargs = [KwArgument(keyword=keyword, data=variant(kind, value)) for keyword, kind, value in keywords]
    return args, kwargs


def model_info(state: dict[str, Any]) -> ModelInfo:
    """The registry entry for one orchestrator model state (``init``/``update`` item)."""
    infos = state.get("infos") or {}
    model_id = str(state["model_id"])
    player_id = str(infos.get("cruncher_id") or infos.get("cruncher_wallet_pubkey") or "unknown-player")
    return ModelInfo(
        model_id=model_id,
        name=str(infos.get("model_name") or model_id),
        player_id=player_id,
        player_name=str(infos.get("cruncher_name") or player_id),
        deployment_id=str(state.get("deployment_id") or "unknown-deployment"),
        state=str(state.get("state") or "UNKNOWN"),
        wallet=infos.get("cruncher_wallet_pubkey"),
        hotkey=infos.get("cruncher_hotkey"),
        meta={"infos": dict(infos)},
    )


def _runner_classes() -> tuple[type, type]:
    """The client subclasses, built lazily (the client is imported only by this backend)."""
    from grpc import StatusCode
    from grpc.aio import AioRpcError
    from model_runner_client.errors import InvalidCoordinatorUsageError
    from model_runner_client.grpc.generated.dynamic_subclass_pb2 import CallRequest, SetupRequest
    from model_runner_client.grpc.generated.dynamic_subclass_pb2_grpc import (
        DynamicSubclassServiceStub,
    )
    from model_runner_client.model_concurrent_runners import DynamicSubclassModelConcurrentRunner
    from model_runner_client.model_runners import DynamicSubclassModelRunner
    from model_runner_client.utils.datatype_transformer import decode_data

    class NodeRunner(DynamicSubclassModelRunner):  # type: ignore[misc]
        """The client's runner, plus: the node's status messages are kept, a busy node is waited for
        during Setup, and a cancelled set-up closes its channels."""

        def __init__(
            self, *args: Any, setup_timeout: float, on_setup: Callable[[str], None] | None = None, **kwargs: Any
        ) -> None:
            super().__init__(*args, **kwargs)
            self.setup_timeout = setup_timeout
            self.on_setup = on_setup
            self.setup_message: str | None = None
            self.last_call_message: str | None = None
            self.skip_allowed = True

        def should_skip_for_timeout_reason(self) -> bool:
            return self.skip_allowed and super().should_skip_for_timeout_reason()

        async def init(self) -> Any:
            try:
                return await super().init()
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await self.close()
                raise

        async def setup(self, grpc_channel: Any) -> tuple[bool, Any]:
            self.grpc_stub = DynamicSubclassServiceStub(grpc_channel)
            request = SetupRequest(
                className=self.base_classname,
                instanceArguments=self.instance_args,
                instanceKwArguments=self.instance_kwargs,
            )
            while True:
                try:
                    response = await self.grpc_stub.Setup(request)
                    break
                except AioRpcError as exc:
                    # the node still runs a call of an earlier coordinator process: Setup is refused
                    # with "Server busy"; the client would back off 2 s, 4 s, ... instead
                    if exc.code() != StatusCode.RESOURCE_EXHAUSTED:
                        raise
                    await asyncio.sleep(0.05)
            code = response.status.code
            if code == "SUCCESS":
                if self.on_setup is not None:
                    self.on_setup(self.model_id)  # a (re)started node may hold a fresh instance
                return True, None
            self.setup_message = response.status.message or None
            if code == "INVALID_ARGUMENT":
                raise InvalidCoordinatorUsageError(response.status.message)
            if code == "BAD_IMPLEMENTATION":
                return False, self.ErrorType.BAD_IMPLEMENTATION
            return False, self.ErrorType.FAILED

        async def call(self, method_name: str, arguments: Any = ([], []), timeout: float | None = None) -> Any:
            self.last_call_message = None
            args, kwargs = arguments(self) if callable(arguments) else arguments
            if self.grpc_stub is None:
                raise InvalidCoordinatorUsageError("gRPC stub is not initialized, please call setup() first.")
            response = await self.grpc_stub.Call(
                CallRequest(methodName=method_name, methodArguments=args, methodKwArguments=kwargs),
                timeout=timeout,
                wait_for_ready=True,
            )
            if response is None:
                return None, self.ErrorType.FAILED
            code = response.status.code
            if code == "SUCCESS":
                try:
                    return decode_data(response.methodResponse.value, response.methodResponse.type), None
                except ValueError as exc:
                    self.last_call_message = f"undecodable answer: {exc}"
                    raise
            self.last_call_message = response.status.message or None
            if code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
                raise InvalidCoordinatorUsageError(response.status.message)
            if code == "BAD_IMPLEMENTATION":
                return None, self.ErrorType.BAD_IMPLEMENTATION
            return None, self.ErrorType.FAILED

    class ConcurrentRunner(DynamicSubclassModelConcurrentRunner):  # type: ignore[misc]
        def __init__(
            self, *args: Any, setup_timeout: float, on_setup: Callable[[str], None] | None = None, **kwargs: Any
        ) -> None:
            self.setup_timeout = setup_timeout
            self.on_setup = on_setup
            super().__init__(*args, **kwargs)

        def create_model_runner(self, **kwargs: Any) -> Any:
            return NodeRunner(
                self.base_classname,
                self.instance_args,
                self.instance_kwargs,
                secure_credentials=self.secure_credentials,
                gateway_credentials=self.gateway_credentials,
                setup_timeout=self.setup_timeout,
                on_setup=self.on_setup,
                **kwargs,
            )

    return NodeRunner, ConcurrentRunner


def _same_target(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("deployment_id", "ip", "port"))


class ModelRunnerGateway:
    """``ModelGateway`` over model-runner-client; see the module docstring for the lifecycle."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        crunch_id: str,
        base_classname: str,
        timeout_seconds: float,
        calls: ModelCalls | None = None,
        max_consecutive_failures: int = 100,
        max_consecutive_timeouts: int = 100,
        report_failure: bool = True,
        connect_timeout_seconds: float = 10.0,
        setup_timeout_seconds: float = 120.0,
        reconnect_seconds: float = 2.0,
        tick_cooldown: bool = False,
        secure_credentials: Any = None,
        gateway_credentials: Any = None,
    ) -> None:
        self.host, self.port, self.crunch_id = host, port, crunch_id
        self.base_classname = base_classname
        self.timeout_seconds = timeout_seconds
        self.calls = calls or ModelCalls()
        self.connect_timeout_seconds = connect_timeout_seconds
        self.reconnect_seconds = reconnect_seconds
        self.tick_cooldown = tick_cooldown
        _check_methods(base_classname, self.calls)

        self._registry: dict[str, ModelInfo] = {}
        self._failures: dict[str, tuple[str | None, str]] = {}
        self._work: dict[str, tuple[asyncio.Task[Any], dict[str, Any]]] = {}
        self._task_models: weakref.WeakKeyDictionary[asyncio.Task[Any], str] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._call_lock = threading.Lock()
        self._init_received = threading.Event()
        self._init_tasks: list[asyncio.Task[Any]] = []
        self._ready = False
        self._closed = False
        self.events: int = 0
        # price ticks sent, per model; dropped when a model's node is set up (again): resent in full
        self.tick_cursors: dict[str, Any] = {}
        self.virtual_timeout_seconds: float | None = None

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name=f"model-runner-{crunch_id}", daemon=True)
        self._thread.start()
        _, concurrent_runner = _runner_classes()
        options = {
            "timeout": timeout_seconds,
            "crunch_id": crunch_id,
            "host": host,
            "port": port,
            "base_classname": base_classname,
            "max_consecutive_failures": max_consecutive_failures,
            "max_consecutive_timeouts": max_consecutive_timeouts,
            "report_failure": report_failure,
            "secure_credentials": secure_credentials,
            "gateway_credentials": gateway_credentials,
            "setup_timeout": setup_timeout_seconds,
            "on_setup": lambda model_id: self.tick_cursors.pop(model_id, None),
        }
        self._submit(self._start(concurrent_runner, options)).result(10)
        _close_at_exit(self)

    @classmethod
    def from_settings(cls, settings: Any, calls: ModelCalls | None = None) -> ModelRunnerGateway:
        secure = gateway = None
        if settings.model_runner_secure_cert_dir and settings.model_runner_gateway_key_path:
            raise ConfigurationError(
                "MODEL_RUNNER_SECURE_CERT_DIR and MODEL_RUNNER_GATEWAY_KEY_PATH exclude each other"
            )
        if settings.model_runner_secure_cert_dir:
            from model_runner_client.security.credentials import SecureCredentials

            try:
                secure = SecureCredentials.from_directory(settings.model_runner_secure_cert_dir)
            except Exception as exc:
                raise ConfigurationError(f"MODEL_RUNNER_SECURE_CERT_DIR: {exc}") from exc
        if settings.model_runner_gateway_key_path:
            from model_runner_client.security.gateway_credentials import GatewayCredentials

            try:
                gateway = GatewayCredentials.from_pem(Path(settings.model_runner_gateway_key_path).read_bytes())
            except Exception as exc:
                raise ConfigurationError(f"MODEL_RUNNER_GATEWAY_KEY_PATH: {exc}") from exc
        return cls(
            host=settings.model_runner_node_host,
            port=settings.model_runner_node_port,
            crunch_id=settings.crunch_id,
            base_classname=settings.model_base_classname,
            timeout_seconds=settings.model_runner_timeout_seconds,
            calls=calls,
            max_consecutive_failures=settings.model_runner_max_consecutive_failures,
            max_consecutive_timeouts=settings.model_runner_max_consecutive_timeouts,
            report_failure=settings.model_runner_report_failure,
            connect_timeout_seconds=settings.model_runner_connect_timeout_seconds,
            setup_timeout_seconds=settings.model_runner_setup_timeout_seconds,
            reconnect_seconds=settings.model_runner_reconnect_seconds,
            tick_cooldown=settings.model_runner_tick_cooldown,
            secure_credentials=secure,
            gateway_credentials=gateway,
        )

    # -- ModelGateway ------------------------------------------------------------------------
    def models(self) -> list[ModelInfo]:
        self.wait_ready()
        with self._lock:
            return sorted(self._registry.values(), key=lambda info: info.model_id)

    def tick(self, data: dict[str, Any], model_ids: Collection[str] | None = None) -> dict[str, CallResult]:
        if self.calls.tick is None:
            return {}
        return self._call_all(self.calls.tick, {"data": data}, cooldown=self.tick_cooldown, model_ids=model_ids)

    def predict(
        self, subject: str, horizon_seconds: int, step_seconds: int, steps: list[int] | None = None
    ) -> dict[str, CallResult]:
        """``steps`` (step seconds) is the ``steps`` value of the contract's predict call: the games'
        ``predict_all(asset, horizon, steps)``; a contract that passes it needs it here."""
        values: dict[str, Any] = {"subject": subject, "horizon_seconds": horizon_seconds, "step_seconds": step_seconds}
        if any(argument.value == "steps" for argument in self.calls.predict.arguments):
            values["steps"] = checked_steps(self.calls.predict, steps)
        return self._call_all(self.calls.predict, values)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._submit(self._shutdown()).result(15)
        except Exception as exc:
            log.warning("model-runner gateway: shutdown: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    # -- introspection -----------------------------------------------------------------------
    @property
    def load_errors(self) -> dict[str, str]:
        """Why each model announced RUNNING cannot be called now (used for ABSENT reasons)."""
        cluster = self._runner.model_cluster
        errors = {}
        with self._lock:
            registry = dict(self._registry)
            failures = dict(self._failures)
        for model_id, info in registry.items():
            if info.state != "RUNNING" or model_id in cluster.models_run:
                continue
            deployment, reason = failures.get(model_id, (None, ""))
            if reason and deployment in (None, info.deployment_id):
                errors[model_id] = reason
            elif model_id in cluster.pending_model_runs:
                errors[model_id] = "still connecting to its model node / running Setup"
            else:
                errors[model_id] = "not connected to its model node"
        return errors

    def callable_models(self) -> list[str]:
        """The models this process can call now (set up on their node)."""
        self.wait_ready()
        return self._submit(self._callable()).result(10)  # read on the loop thread that mutates it

    async def _callable(self) -> list[str]:
        return sorted(self._runner.model_cluster.models_run)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait (once per process) for the model list and the set-up of the models it names.

        Raises ``OrchestratorUnavailable`` if no model list arrived within the timeout.
        """
        if self._ready:
            return
        timeout = self.connect_timeout_seconds if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if not self._init_received.wait(timeout):
            raise OrchestratorUnavailable(
                f"model orchestrator ws://{self.host}:{self.port}/{self.crunch_id} sent no model list within "
                f"{timeout:g} s (MODEL_RUNNER_NODE_HOST / MODEL_RUNNER_NODE_PORT / CRUNCH_ID)"
            )
        tasks = list(self._init_tasks)
        waiting: list[str] = []
        while tasks:
            waiting = self._submit(self._waiting_for(tasks)).result(10)
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if waiting:
            log.warning(
                "model-runner gateway: model(s) %s not set up yet (unreachable node, or a slow Setup); "
                "they join when ready",
                ", ".join(waiting),
            )
        self._ready = True

    async def _waiting_for(self, tasks: list[asyncio.Task[Any]]) -> list[str]:
        """Models whose set-up is worth waiting for: not done, and their node not known to refuse connections
        (the client would spend 80 s on such a node before reporting it; it keeps trying in the background)."""
        import grpc

        pending = self._runner.model_cluster.pending_model_runs
        waiting = []
        for task in tasks:
            if task.done():
                continue
            model_id = self._task_models.get(task, "")
            runner = pending.get(model_id)
            channel = getattr(runner, "grpc_channel", None)
            if channel is not None and channel.get_state(False) in (
                grpc.ChannelConnectivity.TRANSIENT_FAILURE,
                grpc.ChannelConnectivity.SHUTDOWN,
            ):
                runner.unreachable = True
            if not getattr(runner, "unreachable", False):
                waiting.append(model_id)
        return waiting

    # -- event loop thread -------------------------------------------------------------------
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _submit(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _start(self, concurrent_runner: type, options: dict[str, Any]) -> None:
        self._runner = runner = concurrent_runner(**options)
        cluster = runner.model_cluster
        ws = cluster.ws_client
        ws.retry_interval = self.reconnect_seconds
        ws.max_retries = _FOREVER  # never give up (the client would log a traceback every 5 tries)
        ws.event_handler = self._on_event
        ws.disconnect_sync = lambda: None  # the client's atexit hook needs a loop that is gone by then
        report = cluster.process_failure

        async def process_failure(model_runner: Any, failure_code: str, failure_reason: str | None = None) -> None:
            message = getattr(model_runner, "setup_message", None) or failure_reason
            reason = failure_code + (f": {message}" if message else "")
            if cluster.report_failure:
                reason += " (reported to the orchestrator)"
            with self._lock:
                self._failures[model_runner.model_id] = (model_runner.deployment_id, reason)
            log.warning("model %s: %s", model_runner.model_id, reason)
            await report(model_runner, failure_code, failure_reason)

        cluster.process_failure = process_failure
        self._sync_task = asyncio.get_running_loop().create_task(runner.sync())

    async def _on_event(self, event_type: str, data: Any) -> None:
        """Every orchestrator frame: update the registry now, then apply it per model in the background."""
        try:
            self.events += 1
            if event_type not in ("init", "update"):
                log.warning("model-runner gateway: unknown orchestrator event %r", event_type)
                return
            states = [s for s in (data or []) if isinstance(s, dict) and s.get("model_id")]
            self._record(event_type, states)
            tasks = []
            if event_type == "init":
                cluster = self._runner.model_cluster
                listed = {str(s["model_id"]) for s in states}
                known = {**cluster.pending_model_runs, **cluster.models_run}
                for model_id, runner in known.items():
                    if model_id not in listed:
                        tasks.append(
                            self._dispatch(
                                {
                                    "model_id": model_id,
                                    "deployment_id": runner.deployment_id,
                                    "state": "STOPPED",
                                    "ip": runner.ip,
                                    "port": runner.port,
                                    "infos": runner.infos,
                                }
                            )
                        )
            tasks.extend(self._dispatch(state) for state in states)
            if event_type == "init" and not self._init_received.is_set():
                self._init_tasks = tasks
                self._init_received.set()
        except Exception:
            log.exception("model-runner gateway: cannot handle the %s event", event_type)

    def _record(self, event_type: str, states: list[dict[str, Any]]) -> None:
        with self._lock:
            if event_type == "init":
                self._registry = {}
            for state in states:
                info = model_info(state)
                current = self._registry.get(info.model_id)
                if info.state != "RUNNING" and current is not None and current.deployment_id != info.deployment_id:
                    continue  # an older deployment stopping: the current one stands
                self._registry[info.model_id] = info

    def _dispatch(self, state: dict[str, Any]) -> asyncio.Task[Any]:
        """Apply one model state after the previous event of the same model (other models never wait)."""
        model_id = str(state["model_id"])
        previous = self._work.get(model_id)
        previous_task = None
        if previous is not None and not previous[0].done():
            previous_task, previous_state = previous
            if previous_state.get("state") == "RUNNING":
                if state.get("state") == "RUNNING":
                    if _same_target(previous_state, state):
                        return previous_task  # the same deployment again (e.g. init after a reconnect)
                    previous_task.cancel()  # superseded by a new deployment or address: do not wait 80 s
                elif state.get("deployment_id") == previous_state.get("deployment_id"):
                    previous_task.cancel()  # stopped while still being set up
                # a STOPPED of an older deployment waits, then is ignored (as the client does)
        task = self._loop.create_task(self._apply(previous_task, state))
        self._work[model_id] = (task, state)
        self._task_models[task] = model_id
        return task

    async def _apply(self, previous: asyncio.Task[Any] | None, state: dict[str, Any]) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            await self._runner.model_cluster.update_model_runs([state])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "model-runner gateway: cannot apply %s for model %s", state.get("state"), state.get("model_id")
            )

    async def _call(
        self,
        method_name: str,
        arguments: tuple[list[Any], list[Any]],
        cooldown: bool,
        model_ids: Collection[str] | None = None,
    ) -> dict[str, CallResult]:
        runners = [
            runner
            for runner in self._runner.model_cluster.models_run.values()
            if model_ids is None or runner.model_id in model_ids
        ]
        if not runners:
            return {}
        for runner in runners:
            runner.skip_allowed = cooldown
        error = "the model-runner client returned no result"
        deadline = self.virtual_timeout_seconds or self.timeout_seconds
        try:
            results = await asyncio.wait_for(
                self._runner.call(method_name, arguments, timeout=deadline, model_runs=runners),
                deadline + 30,
            )
        except Exception as exc:  # the client's own failure must not cost the round
            log.exception("model-runner gateway: %s call failed", method_name)
            results, error = {}, f"gateway error: {type(exc).__name__}: {exc}"
        answers = {}
        for runner in runners:
            result = results.get(runner)
            answer = _result(result) if result is not None else CallResult(CallStatus.FAILED, detail=error)
            if answer.status is CallStatus.SUCCESS and (flag := late(answer.exec_time_ms, self.timeout_seconds)):
                answer = CallResult(answer.status, answer.output, flag, answer.exec_time_ms)
            answers[runner.model_id] = answer
        return answers

    def _call_all(
        self,
        method: ModelMethod,
        values: dict[str, Any],
        cooldown: bool = True,
        model_ids: Collection[str] | None = None,
    ) -> dict[str, CallResult]:
        self.wait_ready()
        arguments = encode_arguments(method, values)
        with self._call_lock:
            return self._submit(self._call(method.name, arguments, cooldown, model_ids)).result(
                (self.virtual_timeout_seconds or self.timeout_seconds) + 60
            )

    async def _shutdown(self) -> None:
        cluster = self._runner.model_cluster
        cluster.ws_client.listening = False
        tasks = [self._sync_task, *(task for task, _ in self._work.values())]
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=5)
        with contextlib.suppress(Exception):
            await cluster.ws_client.disconnect()
        runners = [*cluster.models_run.values(), *cluster.pending_model_runs.values()]
        await asyncio.gather(*(runner.close() for runner in runners), return_exceptions=True)


def _close_at_exit(gateway: ModelRunnerGateway) -> None:
    """Close the websocket and channels cleanly at interpreter exit if nobody did (weakly held)."""
    reference = weakref.ref(gateway)

    def close() -> None:
        alive = reference()
        if alive is not None:
            alive.close()

    atexit.register(close)


def _result(result: Any) -> CallResult:
    status = CallStatus(result.status.value)
    detail = result.detail
    message = getattr(result.model_runner, "last_call_message", None)
    if status is CallStatus.FAILED and message:
        detail = f"{detail}: {message}" if detail else message
    return CallResult(
        status, result.result if status is CallStatus.SUCCESS else None, detail, result.exec_time_us / 1000.0
    )


def _check_methods(base_classname: str, calls: ModelCalls) -> None:
    """A method the base class lacks would make every node answer BAD_IMPLEMENTATION, which the client
    reports at once (the orchestrator then stops every model): refuse such a contract up front."""
    from coordinator_core.gateway.local import resolve_base

    try:
        base = resolve_base(base_classname)
    except ConfigurationError:
        log.info("MODEL_BASE_CLASSNAME %s is not importable here; call methods not checked", base_classname)
        return
    missing = [name for name in calls.methods() if not callable(getattr(base, name, None))]
    if missing:
        raise ConfigurationError(f"contract calls: {base_classname} has no method {', '.join(missing)}")
