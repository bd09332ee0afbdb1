"""The games' trackers as real model nodes, each in its own interpreter, called through the gateway.

Crunch-Synth's example trackers run as ``crunch-model-runner`` nodes under ``.venv``'s Python 3.11;
the Condor Game's under ``.venv-condor``'s Python 3.12 (``"python"`` in their ``model.json``),
started by ``coordinator models serve-local``. ``ModelRunnerGateway`` ticks them with the games'
ticks and calls ``predict_all(asset, horizon, steps)`` as the contract's ``ModelCalls`` say
(STRING, INT, JSON list); the answers must equal the in-process answers of the same trackers on the
same plan.

What comes back over the wire (asserted below):
* the answer is the node's ``json.dumps`` of the tracker's dict: the int step keys arrive as
  **strings** (``{"300": [...], "3600": [...]}``), everything else keeps its JSON type — ints stay
  ints (``"weight": 1``), numpy float64 values arrive as plain floats, and every float is **exact**
  (``json.dumps`` writes the shortest repr that round-trips): wire == ``json.loads(json.dumps(answer))``
  of the in-process answer, compared with ``==``; ``validate_multi_resolution`` normalises both to
  the same int-keyed value;
* the tick's ``(ts, price)`` tuples arrive as 2-item lists, which the games' ``PriceStore`` takes as is;
* hostile answers never reach a validator as objects: a 5,000-deep answer (the model raised its own
  recursion limit to encode it) fails to decode in the coordinator — FAILED "maximum recursion depth
  exceeded while decoding a JSON array"; an answer over gRPC's 64 MiB limit is refused by the node —
  TIMEOUT "RESOURCE_EXHAUSTED: … Sent message larger than max".
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator_core.contract import CallArgument, ModelCalls, ModelMethod
from coordinator_core.errors import ConfigurationError
from coordinator_core.gateway.base import CallStatus
from coordinator_core.outputs import CRUNCH_SYNTH_MAX_COMPONENTS, validate_multi_resolution
from tests.integration.game_runner import run_plan, tracker_class, working_directory
from tests.integration.games_support import GAMES_DIR, PROJECT_DIR, condor_python, plan, requests, run_condor

pytestmark = pytest.mark.filterwarnings("ignore:sorted_dict.iloc is deprecated:DeprecationWarning")

CRUNCH_SYNTH = "crunch_synth.tracker.TrackerBase"
CONDOR = "condorgame.tracker.TrackerBase"
PREDICT_ALL = ModelCalls(
    tick=ModelMethod(name="tick", arguments=(CallArgument(value="data", type="JSON"),)),
    predict=ModelMethod(
        name="predict_all",
        arguments=(
            CallArgument(value="subject", type="STRING"),
            CallArgument(value="horizon_seconds", type="INT"),
            CallArgument(value="steps", type="JSON"),
        ),
    ),
)
HOSTILE = {
    "deep": """
        import sys

        from crunch_synth.tracker import TrackerBase


        class Deep(TrackerBase):
            def predict_all(self, asset, horizon, steps):
                sys.setrecursionlimit(100_000)  # in its own process: enough to encode it
                value = [1.0]
                for _ in range(5000):
                    value = [value]
                return {"300": value}
        """,
    "huge": """
        from crunch_synth.tracker import TrackerBase


        class Huge(TrackerBase):
            def predict_all(self, asset, horizon, steps):
                return {"300": "x" * (70 * 2**20)}  # beyond gRPC's 64 MiB
        """,
    "bare_import": """
        from crunch_synth.examples.exampletracker import GaussianStepTracker  # no subclass of its own
        """,
}


def need_node_package() -> None:
    import importlib.util

    if importlib.util.find_spec("model_runner") is None:
        message = "crunch-model-runner is not installed (make env)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def gateway_for(orchestrator: Any, base: str, **options: Any) -> Any:
    from coordinator_core.gateway.model_runner import ModelRunnerGateway

    settings = {"timeout_seconds": 30.0, "report_failure": False, "connect_timeout_seconds": 60.0}
    settings.update(options)
    return ModelRunnerGateway(
        host=orchestrator.host,
        port=orchestrator.port,
        crunch_id=orchestrator.crunch_id,
        base_classname=base,
        calls=PREDICT_ALL,
        **settings,
    )


def run_over_the_wire(gateway: Any, models: list[str], settle_until: Any = None) -> list[dict[str, Any]]:
    """The plan through the gateway: ``[{model_id: answer}, ...]`` per predict step."""
    answers: list[dict[str, Any]] = []
    ticked = False
    for step in plan():
        if "tick" in step:
            ticks = gateway.tick(step["tick"])
            assert {m: ticks[m].status for m in models} == {m: CallStatus.SUCCESS for m in models}, ticks
            if not ticked and settle_until is not None:
                settle_until(gateway)
            ticked = True
            continue
        asset, horizon, steps = step["predict"]
        results = gateway.predict(asset, horizon, min(steps), steps=steps)
        for model in models:
            assert results[model].status is CallStatus.SUCCESS, (model, results[model].detail)
        answers.append({model: results[model].output for model in models})
    return answers


def eventually_equal(gateway: Any, model: str, request: tuple[str, int, list[int]], expected: Any, timeout: float):
    """Poll until ``model`` answers ``expected`` (a sub-tracker trains in a background thread)."""
    asset, horizon, steps = request
    deadline = time.monotonic() + timeout
    while True:
        answer = gateway.predict(asset, horizon, min(steps), steps=steps)[model].output
        if answer == expected:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{model} never answered like the trained in-process tracker")
        time.sleep(0.2)


# -- Crunch-Synth: nodes under .venv ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def synth_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The crunch_synth example folders, copied (the sub-tracker writes resources/ where it runs)."""
    need_node_package()
    from coordinator_core.gateway.orchestrator import LocalCluster

    root = tmp_path_factory.mktemp("synth-nodes")
    for name in ("gaussian_step", "subtracker"):
        shutil.copytree(GAMES_DIR / "crunch_synth" / name, root / "models" / name)
    cluster = LocalCluster(root / "models", crunch_id="synth-games", log_dir=root / "logs", stop_reported=False)
    started = time.perf_counter()
    cluster.start(timeout=120)
    cluster.startup_seconds = time.perf_counter() - started
    yield cluster
    cluster.stop()


def test_crunch_synth_trackers_answer_predict_all_over_the_wire_exactly_as_in_process(synth_cluster, tmp_path) -> None:
    expected: dict[str, list[Any]] = {}
    for name in ("gaussian_step", "subtracker"):
        cls = tracker_class(GAMES_DIR / "crunch_synth" / name, CRUNCH_SYNTH)
        with working_directory(tmp_path / name):
            expected[name] = run_plan(cls(), list(plan()))
    first_request = requests()[0]
    as_json = {name: json.loads(json.dumps(answers)) for name, answers in expected.items()}
    gateway = gateway_for(synth_cluster.orchestrator, CRUNCH_SYNTH)
    try:
        assert gateway.callable_models() == ["gaussian_step", "subtracker"]
        started = time.perf_counter()
        wire = run_over_the_wire(
            gateway,
            ["gaussian_step", "subtracker"],
            settle_until=lambda g: eventually_equal(g, "subtracker", first_request, as_json["subtracker"][0], 60),
        )
        elapsed = time.perf_counter() - started
    finally:
        gateway.close()

    for name in ("gaussian_step", "subtracker"):
        answers = [round_[name] for round_ in wire]
        assert answers == as_json[name], name  # exact floats, str keys
        for answer, raw, (_, horizon, steps) in zip(answers, expected[name], requests(), strict=True):
            assert list(answer) == [str(s) for s in steps] and list(raw) == steps
            normalised = validate_multi_resolution(
                answer, horizon=horizon, steps=steps, max_components=CRUNCH_SYNTH_MAX_COMPONENTS
            )
            assert normalised == validate_multi_resolution(
                raw, horizon=horizon, steps=steps, max_components=CRUNCH_SYNTH_MAX_COMPONENTS
            )
    density = wire[0]["gaussian_step"]["300"][0]
    assert type(density["components"][0]["weight"]) is int and type(density["step"]) is int
    assert type(density["components"][0]["density"]["params"]["scale"]) is float  # numpy float64 in-process
    assert elapsed < 120


@pytest.fixture(scope="module")
def hostile_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    need_node_package()
    import textwrap

    from coordinator_core.gateway.orchestrator import LocalCluster

    root = tmp_path_factory.mktemp("hostile-nodes")
    for name, body in HOSTILE.items():
        (root / "models" / name).mkdir(parents=True)
        (root / "models" / name / "main.py").write_text(textwrap.dedent(body).lstrip())
    cluster = LocalCluster(root / "models", crunch_id="hostile-games", log_dir=root / "logs", stop_reported=False)
    cluster.start(timeout=120)
    yield cluster
    cluster.stop()


def test_hostile_answers_are_contained_per_model_and_a_bare_import_is_not_a_model(hostile_cluster) -> None:
    gateway = gateway_for(hostile_cluster.orchestrator, CRUNCH_SYNTH)
    try:
        assert gateway.callable_models() == ["deep", "huge"]
        errors = gateway.load_errors
        results = gateway.predict("BTC", 3600, 300, steps=[300])
    finally:
        gateway.close()

    # the node only instantiates a class defined outside the base class's package
    assert errors["bare_import"].startswith("BAD_IMPLEMENTATION: No Inherited class found")
    assert set(results) == {"deep", "huge"}
    assert results["deep"].status is CallStatus.FAILED
    assert "maximum recursion depth exceeded while decoding a JSON array" in results["deep"].detail
    assert results["huge"].status is CallStatus.TIMEOUT
    assert results["huge"].detail.startswith("RESOURCE_EXHAUSTED") and "larger than max" in results["huge"].detail


def test_a_contract_that_passes_steps_needs_them() -> None:
    from coordinator_core.gateway.model_runner import ModelRunnerGateway

    gateway = object.__new__(ModelRunnerGateway)  # only the argument check runs before any call
    gateway.calls = PREDICT_ALL
    with pytest.raises(ConfigurationError, match="takes 'steps'"):
        gateway.predict("BTC", 3600, 300)
    with pytest.raises(ConfigurationError, match="integer step seconds"):
        gateway.predict("BTC", 3600, 300, steps=["300"])


# -- Condor: nodes under .venv-condor, started by `coordinator models serve-local` --------------------------
def serve_local(models_dir: Path, port: int, crunch_id: str, log_dir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coordinator_cli.main",
            "models",
            "serve-local",
            "--models-dir",
            str(models_dir),
            "--port",
            str(port),
            "--crunch-id",
            crunch_id,
            "--log-dir",
            str(log_dir),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_cwd(log_dir),
    )


def tmp_cwd(log_dir: Path) -> str:
    """Run the CLI away from the project: relative "python" paths resolve against the project, not the cwd."""
    cwd = log_dir.parent / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    return str(cwd)


def test_condor_trackers_run_as_nodes_under_the_condor_python_and_answer_as_in_process(tmp_path) -> None:
    need_node_package()
    from coordinator_core.gateway.orchestrator import free_port

    condor = run_condor()["results"]  # in-process, inside .venv-condor
    python = str(condor_python())
    port = free_port()
    process = serve_local(GAMES_DIR / "condor", port, "condor-games", tmp_path / "logs")
    try:
        lines: list[str] = []
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "Ctrl-C stops everything" in line or len(lines) > 50:
                break
        output = "".join(lines)
        node_lines = [line for line in lines if line.startswith(("  benchmark", "  gaussian_step"))]
        assert len(node_lines) == 2, output
        assert all(line.rstrip().endswith(f"python {python}") for line in node_lines), output

        class Orchestrator:
            host, crunch_id = "127.0.0.1", "condor-games"

        Orchestrator.port = port
        gateway = gateway_for(Orchestrator, CONDOR)
        try:
            assert gateway.callable_models() == ["benchmark", "gaussian_step"]
            wire = run_over_the_wire(gateway, ["benchmark", "gaussian_step"])
        finally:
            gateway.close()
        for name in ("benchmark", "gaussian_step"):
            assert [round_[name] for round_ in wire] == condor[name]["answers"][0], name

        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_local_refuses_a_python_that_is_not_an_interpreter_naming_the_file(tmp_path) -> None:
    need_node_package()
    folder = tmp_path / "models" / "m"
    folder.mkdir(parents=True)
    (folder / "main.py").write_text("")
    (folder / "model.json").write_text(json.dumps({"python": "no/such/python"}))

    process = serve_local(tmp_path / "models", 1, "x", tmp_path / "logs")
    out, _ = process.communicate(timeout=60)

    assert process.returncode == 2, out
    text = " ".join(out.split())  # rich may wrap the message
    assert "model.json" in text and "'no/such/python'" in text and "not an executable interpreter" in text


def test_serve_local_checks_the_python_option_for_folders_without_their_own(tmp_path) -> None:
    need_node_package()
    folder = tmp_path / "models" / "m"
    folder.mkdir(parents=True)
    (folder / "main.py").write_text("")

    process = serve_local(tmp_path / "models", 1, "x", tmp_path / "logs", "--python", "/no/such/python")
    out, _ = process.communicate(timeout=60)

    assert process.returncode == 2, out
    assert "model node interpreter /no/such/python does not run" in " ".join(out.split())


def test_a_relative_python_resolves_against_the_project_without_following_symlinks(tmp_path, monkeypatch) -> None:
    from coordinator_core.gateway.orchestrator import LocalCluster, check_node_python, find_project_dir, node_python

    project = tmp_path / "project"
    (project / "models" / "m").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    (project / "env" / "bin").mkdir(parents=True)
    (project / "env" / "bin" / "python").symlink_to(sys.executable)
    (project / "models" / "m" / "model.json").write_text(json.dumps({"python": "env/bin/python"}))
    monkeypatch.chdir(tmp_path)

    assert find_project_dir(project / "models" / "m") == project
    assert node_python(project / "models" / "m") == str(project / "env" / "bin" / "python")
    assert LocalCluster(project / "models").python_for(project / "models" / "m") == str(project / "env/bin/python")
    (project / "models" / "m" / "model.json").write_text(json.dumps({"name": "no python key"}))
    assert node_python(project / "models" / "m", default="/x/python") == "/x/python"
    assert node_python(GAMES_DIR / "condor" / "benchmark") == str(PROJECT_DIR / ".venv-condor" / "bin" / "python")

    check_node_python(str(condor_python()))  # has crunch-model-runner
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    with pytest.raises(ConfigurationError, match="has no crunch-model-runner"):
        check_node_python(str(bare / "bin" / "python"))
