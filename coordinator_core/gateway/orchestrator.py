"""A local model orchestrator for development and tests: real model nodes, no Docker.

The production orchestrator (crunchdao/model-orchestrator, not on PyPI) builds a container per
model and tells coordinators over a websocket which models run where. This module reproduces
exactly what the coordinator sees of it:

* ``ModelNode`` — one ``crunch-model-runner`` server (``python -m model_runner.server``) per model
  folder, as a separate process on 127.0.0.1 (never inside the coordinator: the node registers the
  same protobuf descriptors as the client and serialises calls with a class-level lock);
* ``LocalOrchestrator`` — a websocket server on ``ws://HOST:PORT/<crunch_id>`` speaking the
  orchestrator's JSON protocol: ``init`` (every RUNNING model) on connect, ``update`` broadcasts,
  and ``report_failure`` from the coordinator (recorded; by default the model is then STOPPED,
  as the real orchestrator does);
* ``LocalCluster`` — both together over a models directory (``<dir>/<model_id>/main.py`` plus an
  optional ``model.json`` with ``name``, ``player_id``, ``player_name``, ``wallet``, ``hotkey`` and
  ``python``), used by ``coordinator models serve-local``, the tests and the benchmark.

The node needs ``crunch-model-runner`` 0.4.2 with ``click`` and ``pyarrow`` in the interpreter it
runs with (``--no-deps``: it pins ``protobuf<6`` but runs on the client's protobuf), and the
participants' base class importable (``pythonpath``).

Each folder's node may run under an interpreter of its own: ``"python"`` in its ``model.json``
(e.g. ``".venv-condor/bin/python"`` for the Condor Game, whose package needs Python >= 3.12). A
relative path is resolved against the project directory: the nearest ancestor of the folder that
holds a ``pyproject.toml`` (else the working directory), or ``project_dir`` when given. The path is
not resolved through symlinks (a venv's ``bin/python`` is a symlink; following it would leave the
venv). Folders without the key use the cluster's ``python`` (default: this interpreter). The node
and the coordinator only share the wire protocol, so their Python and protobuf versions may differ
(the Condor env runs the node on protobuf 5.29, the coordinator's client on protobuf 7).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coordinator_core.errors import ConfigurationError

log = logging.getLogger(__name__)

NODE_MODULE = "model_runner.server"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def deployment_id(model_id: str, now: datetime | None = None) -> str:
    """The orchestrator's format: ``{model_id}_{YYYYmmdd_HHMMSS_mmm}``, new for every (re)deploy."""
    now = now or datetime.now(UTC)
    return f"{model_id}_{now:%Y%m%d_%H%M%S}_{now.microsecond // 1000:03d}"


def read_identity(folder: Path) -> dict[str, Any]:
    """The orchestrator's ``infos`` for a model folder, from its optional ``model.json``."""
    meta: dict[str, Any] = {}
    if (folder / "model.json").exists():
        meta = json.loads((folder / "model.json").read_text())
    infos = {
        "model_name": str(meta.get("name", folder.name)),
        "cruncher_id": str(meta.get("player_id", folder.name)),
        "cruncher_name": str(meta.get("player_name", meta.get("player_id", folder.name))),
    }
    if meta.get("wallet"):
        infos["cruncher_wallet_pubkey"] = str(meta["wallet"])
    if meta.get("hotkey"):
        infos["cruncher_hotkey"] = str(meta["hotkey"])
    return infos


def find_project_dir(start: Path) -> Path:
    """The nearest ancestor of ``start`` (itself included) holding a ``pyproject.toml``, else the working directory."""
    start = Path(start).absolute()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return Path.cwd()


def node_python(folder: Path, default: str = sys.executable, project_dir: Path | None = None) -> str:
    """The interpreter of ``folder``'s node: ``model.json``'s ``"python"`` (relative paths against the
    project directory), else ``default``. ``ConfigurationError`` naming the file if it is not an executable."""
    meta_path = Path(folder) / "model.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    value = meta.get("python") if isinstance(meta, dict) else None
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f'{meta_path}: "python" must be the path of an interpreter, got {value!r:.80}')
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (Path(project_dir) if project_dir else find_project_dir(Path(folder))).absolute() / path
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ConfigurationError(
            f'{meta_path}: "python" {value!r} is {path}, which is not an executable interpreter'
            " (for .venv-condor/bin/python run make env)"
        )
    return str(path)


def check_node_python(python: str) -> None:
    """``ConfigurationError`` unless ``python`` runs and can import the node package (``model_runner``)."""
    if python == sys.executable:
        import importlib.util

        if importlib.util.find_spec("model_runner") is None:
            raise ConfigurationError(
                "crunch-model-runner is not installed in this environment: "
                "uv pip install --no-deps crunch-model-runner==0.4.2 (see the README)"
            )
        return
    probe = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('model_runner') else 3)"
    try:
        done = subprocess.run([python, "-c", probe], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigurationError(f"model node interpreter {python} does not run: {exc}") from exc
    if done.returncode == 3:
        raise ConfigurationError(
            f"model node interpreter {python} has no crunch-model-runner: "
            f"uv pip install --python {python} crunch-model-runner==0.4.2"
        )
    if done.returncode != 0:
        raise ConfigurationError(
            f"model node interpreter {python} failed ({done.returncode}): {done.stderr.decode(errors='replace')[-300:]}"
        )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the node gets SIGTERM when the process that started it dies (no orphans after a crash)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class ModelNode:
    """One model node process serving ``code_dir`` on ``host:port`` (insecure gRPC)."""

    def __init__(
        self,
        model_id: str,
        code_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        python: str = sys.executable,
        pythonpath: Iterable[str] = (),
        log_dir: Path | None = None,
        log_level: str = "warning",
        infos: dict[str, Any] | None = None,
    ) -> None:
        self.model_id = model_id
        self.code_dir = Path(code_dir).resolve()
        self.host = host
        self.port = port or free_port(host)
        self.python = python
        self.pythonpath = [str(Path(p).resolve()) for p in pythonpath]
        self.log_path = Path(log_dir or tempfile.mkdtemp(prefix="model-nodes-")) / f"{model_id}.log"
        self.log_level = log_level
        self.infos = infos if infos is not None else read_identity(self.code_dir)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> ModelNode:
        """Spawn the node (call from a long-lived thread: the node dies with the thread that spawned it)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([*self.pythonpath, *filter(None, [env.get("PYTHONPATH")])])
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [
                    self.python,
                    "-m",
                    NODE_MODULE,
                    "--code-directory",
                    str(self.code_dir),
                    "--address",
                    self.address,
                    "--log-level",
                    self.log_level,
                ],
                cwd=self.code_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the parent only; it stops the nodes in order
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> ModelNode:
        """Block until the node's gRPC health service answers SERVING."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if not self.alive:
                    raise RuntimeError(
                        f"model node {self.model_id} exited with {self.process and self.process.poll()}:"
                        f"\n{self.log_tail()}"
                    )
                try:
                    response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
                    if response.status == health_pb2.HealthCheckResponse.SERVING:
                        return self
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"model node {self.model_id} not SERVING on {self.address} after {timeout:g} s:"
                        f"\n{self.log_tail()}"
                    )
                time.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def state(self, state: str, deployment: str) -> dict[str, Any]:
        return {
            "deployment_id": deployment,
            "model_id": self.model_id,
            "infos": dict(self.infos),
            "state": state,
            "ip": self.host,
            "port": self.port,
        }


@dataclass
class _Announced:
    state: dict[str, Any]
    on_stop: Callable[[], None] | None = None


@dataclass
class LocalOrchestrator:
    """The orchestrator's websocket leg on ``ws://host:port/<crunch_id>``, in a thread of its own.

    ``announce``/``set_state`` broadcast ``update`` frames; a new connection first gets ``init``
    with every RUNNING model. ``reports`` holds each ``report_failure`` item received; with
    ``stop_reported`` the reported model is set STOPPED (as the real orchestrator does).
    """

    crunch_id: str = "starter-challenge"
    host: str = "127.0.0.1"
    port: int = 0
    stop_reported: bool = True
    reports: list[dict[str, Any]] = field(default_factory=list)
    frames_sent: int = 0
    _models: dict[str, _Announced] = field(default_factory=dict)
    _clients: set[Any] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle (thread-safe, blocking) ----------------------------------------------------
    def start(self) -> LocalOrchestrator:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="local-orchestrator", daemon=True)
            self._thread.start()
        self._run(self._serve())
        return self

    def stop_server(self) -> None:
        """Close the websocket server and every connection (models and reports are kept)."""
        if self._loop is not None and self._server is not None:
            self._run(self._close_server())

    def restart(self) -> None:
        self.stop_server()
        self.start()

    def close(self) -> None:
        if self._loop is None:
            return
        self.stop_server()
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop.close()
        self._loop = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/{self.crunch_id}"

    @property
    def connections(self) -> int:
        return len(self._clients)

    # -- model states ------------------------------------------------------------------------
    def announce(self, state: dict[str, Any], on_stop: Callable[[], None] | None = None) -> None:
        """Add or replace a model state (``ModelNode.state(...)``) and broadcast it as ``update``."""
        with self._lock:
            self._models[state["model_id"]] = _Announced(dict(state), on_stop)
        self._broadcast([state])

    def set_state(self, model_id: str, state: str) -> dict[str, Any]:
        with self._lock:
            announced = self._models[model_id]
            announced.state = {**announced.state, "state": state}
            snapshot = dict(announced.state)
        self._broadcast([snapshot])
        return snapshot

    def forget(self, model_id: str) -> None:
        """Drop a model without telling anyone (it is absent from the next ``init``)."""
        with self._lock:
            self._models.pop(model_id, None)

    def states(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(a.state) for a in self._models.values()]

    # -- internals ---------------------------------------------------------------------------
    def _run(self, coro: Any, timeout: float = 10.0) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _broadcast(self, data: list[dict[str, Any]]) -> None:
        if self._loop is not None and self._server is not None:
            self._run(self._send_all({"event": "update", "data": data}))

    async def _send_all(self, frame: dict[str, Any]) -> None:
        message = json.dumps(frame)
        for client in list(self._clients):
            with contextlib.suppress(Exception):
                await client.send(message)
                self.frames_sent += 1

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        if self._server is None:
            self._server = await serve(self._handler, self.host, self.port)
            self.port = int(self._server.sockets[0].getsockname()[1])

    async def _close_server(self) -> None:
        server, self._server = self._server, None
        server.close()
        await server.wait_closed()
        self._clients.clear()

    async def _handler(self, connection: Any) -> None:
        path = connection.request.path.strip("/")
        if path != self.crunch_id:
            await connection.send(json.dumps({"error": f"crunch_id is required and must be {self.crunch_id!r}"}))
            await connection.close()
            return
        self._clients.add(connection)
        try:
            with self._lock:
                running = [dict(a.state) for a in self._models.values() if a.state["state"] == "RUNNING"]
            await connection.send(json.dumps({"event": "init", "data": running}))
            self.frames_sent += 1
            async for message in connection:
                await self._on_message(message)
        except Exception as exc:  # a client going away is normal
            log.debug("orchestrator connection ended: %s", exc)
        finally:
            self._clients.discard(connection)

    async def _on_message(self, message: str | bytes) -> None:
        try:
            frame = json.loads(message)
        except ValueError:
            log.warning("orchestrator: not JSON: %r", message[:200])
            return
        if frame.get("event") != "report_failure":
            log.warning("orchestrator: unknown event %r", frame.get("event"))
            return
        for item in frame.get("data") or []:
            self.reports.append(item)
            log.warning(
                "orchestrator: model %s reported %s (%s)",
                item.get("model_id"),
                item.get("failure_code"),
                item.get("failure_reason"),
            )
            if not self.stop_reported:
                continue
            with self._lock:
                announced = self._models.get(item.get("model_id"))
                if (
                    announced is None
                    or announced.state.get("ip") != item.get("ip")
                    or announced.state["state"] != "RUNNING"
                ):
                    continue
                announced.state = {**announced.state, "state": "STOPPED"}
                snapshot, on_stop = dict(announced.state), announced.on_stop
            await self._send_all({"event": "update", "data": [snapshot]})
            if on_stop is not None:
                await asyncio.get_running_loop().run_in_executor(None, on_stop)


class LocalCluster:
    """Model nodes for the folders of a models directory, announced by a ``LocalOrchestrator``."""

    def __init__(
        self,
        models_dir: Path | None = None,
        *,
        crunch_id: str = "starter-challenge",
        host: str = "127.0.0.1",
        port: int = 0,
        pythonpath: Iterable[str] = (),
        log_dir: Path | None = None,
        python: str = sys.executable,
        stop_reported: bool = True,
        stop_reported_nodes: bool = False,
        project_dir: Path | None = None,
    ) -> None:
        self.models_dir = Path(models_dir) if models_dir else None
        self.pythonpath = list(pythonpath)
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="model-nodes-"))
        self.python = python  # for folders whose model.json names no "python"
        self.project_dir = Path(project_dir) if project_dir else None
        self.stop_reported_nodes = stop_reported_nodes
        self.orchestrator = LocalOrchestrator(crunch_id=crunch_id, host=host, port=port, stop_reported=stop_reported)
        self.nodes: dict[str, ModelNode] = {}
        self.deployments: dict[str, str] = {}

    @staticmethod
    def model_folders(models_dir: Path) -> list[Path]:
        return sorted(p for p in Path(models_dir).iterdir() if p.is_dir() and (p / "main.py").exists())

    def start(
        self, folders: Iterable[Path] | None = None, *, announce: bool = True, timeout: float = 120.0
    ) -> LocalCluster:
        """Start the orchestrator, then one node per folder (all spawned, then awaited concurrently)."""
        self.orchestrator.start()
        if folders is None:
            folders = self.model_folders(self.models_dir) if self.models_dir else []
        self.start_nodes(list(folders), announce=announce, timeout=timeout)
        return self

    def start_nodes(self, folders: list[Path], *, announce: bool = True, timeout: float = 120.0) -> list[ModelNode]:
        nodes = [
            ModelNode(
                f.name,
                f,
                host=self.orchestrator.host,
                python=self.python_for(f),
                pythonpath=self.pythonpath,
                log_dir=self.log_dir,
            )
            for f in folders
        ]
        for node in nodes:
            self.nodes[node.model_id] = node.start()
        try:
            with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
                list(pool.map(lambda n: n.wait_ready(timeout), nodes))
        except BaseException:
            for node in nodes:
                node.stop()
            raise
        if announce:
            for node in nodes:
                self.announce(node.model_id)
        return nodes

    def python_for(self, folder: Path) -> str:
        """The interpreter ``folder``'s node runs under (``model.json`` ``"python"``, else ``self.python``)."""
        return node_python(folder, self.python, self.project_dir)

    def announce(self, model_id: str, *, new_deployment: bool = False) -> str:
        node = self.nodes[model_id]
        if new_deployment or model_id not in self.deployments:
            self.deployments[model_id] = deployment_id(model_id)
        on_stop = node.stop if self.stop_reported_nodes else None
        self.orchestrator.announce(node.state("RUNNING", self.deployments[model_id]), on_stop=on_stop)
        return self.deployments[model_id]

    def set_state(self, model_id: str, state: str) -> dict[str, Any]:
        return self.orchestrator.set_state(model_id, state)

    def stop(self) -> None:
        self.orchestrator.close()
        for node in self.nodes.values():
            node.stop()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def serve_local(
    models_dir: Path,
    *,
    port: int = 9091,
    host: str = "127.0.0.1",
    crunch_id: str = "starter-challenge",
    pythonpath: Iterable[str] = (),
    log_dir: Path | None = None,
    stop_reported: bool = True,
    echo: Callable[[str], None] = print,
    python: str | None = None,
    project_dir: Path | None = None,
) -> None:
    """Run a ``LocalCluster`` until SIGINT/SIGTERM, then stop every node it started.

    ``python``: the interpreter of folders whose ``model.json`` names none (default: this one).
    Every interpreter is checked for the node package before any node starts."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    cluster = LocalCluster(
        models_dir,
        crunch_id=crunch_id,
        host=host,
        port=port,
        pythonpath=pythonpath,
        log_dir=log_dir,
        stop_reported=stop_reported,
        stop_reported_nodes=stop_reported,
        python=python or sys.executable,
        project_dir=project_dir,
    )
    try:
        folders = cluster.model_folders(models_dir)
        if not folders:
            raise FileNotFoundError(f"{models_dir}: no model folder (<name>/main.py)")
        for interpreter in sorted({cluster.python_for(f) for f in folders}):
            check_node_python(interpreter)
        echo(f"starting {len(folders)} model node(s) from {models_dir} (logs in {cluster.log_dir}) ...")
        started = time.perf_counter()
        cluster.start(folders)
        for node in cluster.nodes.values():
            echo(
                f"  {node.model_id:<24} {node.address:<22} {node.infos.get('model_name')} "
                f"({node.infos.get('cruncher_name')}) deployment {cluster.deployments[node.model_id]}"
                + ("" if node.python == sys.executable else f" python {node.python}")
            )
        echo(
            f"orchestrator on {cluster.orchestrator.url} ready in {time.perf_counter() - started:.1f} s "
            f"(MODEL_GATEWAY=model_runner MODEL_RUNNER_NODE_HOST={host} MODEL_RUNNER_NODE_PORT="
            f"{cluster.orchestrator.port} CRUNCH_ID={crunch_id}); Ctrl-C stops everything"
        )
        seen = 0
        while not stop.wait(0.5):
            for report in cluster.orchestrator.reports[seen:]:
                echo(
                    f"  report_failure: {report.get('model_id')} {report.get('failure_code')}"
                    + (" -> STOPPED" if stop_reported else "")
                )
            seen = len(cluster.orchestrator.reports)
            for node in cluster.nodes.values():
                if node.process is not None and node.process.returncode is None and not node.alive:
                    echo(f"  node {node.model_id} exited ({node.process.returncode}); see {node.log_path}")
    finally:
        echo("stopping the orchestrator and the model nodes ...")
        cluster.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
