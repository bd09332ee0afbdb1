"""Prediction rounds against real model nodes: cost of the model-runner gateway (printed, not asserted).

``python -m benchmarks.model_runner_bench [--models 16] [--rounds 50] [--quick]``

* 16 ``crunch-model-runner`` node processes on 127.0.0.1 behind the local orchestrator double;
  14 models answer (each sleeps 0, 5, 10 or 15 ms in ``predict``), one raises, one answers
  ``{"value": "up"}``;
* lifecycle: the first connection in a process (client import + websocket + ``init`` + gRPC
  channels + first ``Setup`` of every model), a reconnection (nodes already hold their instance),
  an announced node that does not listen, an orchestrator that is down;
* rounds: ``predict_round`` (the service, SQLite) on one config, ``--rounds`` times on a connected
  gateway, each checked to persist one prediction per model with the right status; the round's
  overhead is its wall time minus the models' own time (15 ms: the longest predict sleep, the calls
  being concurrent), split into gateway (tick + predict) and service (database) parts. The same
  rounds through the in-process backend are shown for comparison.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from coordinator_core.db.migrate import upgrade

CRUNCH_ID = "bench-crunch"
SLEEPS_MS = (0, 5, 10, 15)
OWN_MS = max(SLEEPS_MS)
START = datetime(2019, 9, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)

MODEL = """\
import time

from tracker import TrackerBase


class Bench{index}(TrackerBase):
    def predict(self, subject, horizon_seconds, step_seconds):
        {body}
"""
GOOD = (
    "closes = self.closes(subject)\n        time.sleep({sleep})\n"
    '        return {{"value": (closes[-1] / closes[-13] - 1) if len(closes) > 12 else 0.0}}'
)


def write_models(root: Path, count: int) -> dict[str, str]:
    """``count`` model folders; returns the expected prediction status of each."""
    expected = {}
    for index in range(count):
        model_id = f"m{index:02d}"
        if index == count - 1:
            body, expected[model_id] = 'raise RuntimeError("feature pipeline crashed")', "FAILED"
        elif index == count - 2:
            body, expected[model_id] = 'return {"value": "up"}', "FAILED"
        else:
            body, expected[model_id] = GOOD.format(sleep=SLEEPS_MS[index % len(SLEEPS_MS)] / 1000), "PENDING"
        folder = root / model_id
        folder.mkdir(parents=True)
        (folder / "main.py").write_text(MODEL.format(index=index, body=body))
        (folder / "model.json").write_text(
            json.dumps(
                {"name": f"bench {model_id}", "player_id": f"p{index % 5}", "player_name": f"Player {index % 5}"}
            )
        )
    return expected


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


class Timed:
    """A gateway wrapper that adds up the wall time of tick and predict."""

    def __init__(self, gateway: Any) -> None:
        self.gateway, self.seconds = gateway, 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.gateway, name)

    def models(self) -> Any:
        return self.gateway.models()

    def tick(self, data: dict[str, Any], model_ids: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return self.gateway.tick(data, model_ids)
        finally:
            self.seconds += time.perf_counter() - started

    def predict(self, subject: str, horizon_seconds: int, step_seconds: int, steps: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return self.gateway.predict(subject, horizon_seconds, step_seconds, steps)
        finally:
            self.seconds += time.perf_counter() - started


def run_rounds(gateway: Any, rounds: int, expected: dict[str, str], workdir: Path, label: str) -> None:
    from coordinator_core.bootstrap import build_runtime
    from coordinator_core.db.tables import Prediction
    from coordinator_core.services.configs import seed_configs
    from coordinator_core.services.ingest import ingest
    from coordinator_core.services.predict import predict_round

    url = f"sqlite:///{workdir / f'{label}.db'}"
    upgrade(url)
    configs = workdir / "configs.json"
    configs.write_text(
        json.dumps(
            [
                {
                    "scope_key": "BTC-3600",
                    "scope_template": {"subject": "BTC", "horizon_seconds": 3600, "step_seconds": 900},
                    "schedule": {"prediction_interval_seconds": 3600},
                }
            ]
        )
    )
    rt = build_runtime(
        database_url=url, scheduled_prediction_configs_path=str(configs), feed_source="replay", feed_granularity="1h"
    )
    warmup = 3
    last = START + (rounds + warmup) * HOUR
    seed_configs(rt.uow, rt.contract, rt.settings, START)
    ingest(rt.uow, rt.sources, rt.settings, START - 2 * HOUR)
    ingest(rt.uow, rt.sources, rt.settings, last)

    walls, gateway_times = [], []
    timed = Timed(gateway)
    for k in range(rounds + warmup):
        now = START + k * HOUR
        timed.seconds = 0.0
        started = time.perf_counter()
        result = predict_round(rt.uow, timed, rt.contract, rt.settings, now)  # type: ignore[arg-type]
        wall = time.perf_counter() - started
        got = {p["model_id"]: p["status"] for p in _rows(rt.engine, Prediction) if p["input_id"] == result.inputs[0]}
        if got != expected:
            raise AssertionError(f"round {now}: statuses {got} != expected {expected}")
        if k >= warmup:
            walls.append(wall)
            gateway_times.append(timed.seconds)
    rt.close()
    overhead = [w - OWN_MS / 1000 for w in walls]
    gateway_overhead = [g - OWN_MS / 1000 for g in gateway_times]
    service = [w - g for w, g in zip(walls, gateway_times, strict=True)]
    counts = Counter(expected.values())
    print(
        f"  {label}: {rounds} rounds x {len(expected)} models, each persisting "
        f"{counts['PENDING']} PENDING + {counts['FAILED']} FAILED (checked every round)"
    )
    print(f"    round wall            p50 {ms(pct(walls, 50)):>10}   p99 {ms(pct(walls, 99)):>10}")
    print(f"    overhead (wall - {OWN_MS} ms) p50 {ms(pct(overhead, 50)):>10}   p99 {ms(pct(overhead, 99)):>10}")
    print(
        f"      gateway (tick+predict - {OWN_MS} ms) p50 {ms(pct(gateway_overhead, 50))}   "
        f"p99 {ms(pct(gateway_overhead, 99))}"
    )
    print(f"      service + database    p50 {ms(pct(service, 50))}   p99 {ms(pct(service, 99))}")


def _rows(engine: Any, table: Any) -> list[dict[str, Any]]:
    from sqlalchemy import select

    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(select(table.__table__))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="skip the 80 s unreachable-node give-up measurement")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # the client logs the unreachable node's retries at length

    from coordinator_core.gateway.orchestrator import LocalCluster, free_port

    workdir = Path(tempfile.mkdtemp(prefix="model-runner-bench-"))
    expected = write_models(workdir / "models", args.models)
    print(
        f"model-runner gateway benchmark ({args.models} real model nodes on 127.0.0.1, python {sys.version.split()[0]})"
    )
    started = time.perf_counter()
    cluster = LocalCluster(workdir / "models", crunch_id=CRUNCH_ID, log_dir=workdir / "logs", stop_reported=False)
    try:
        cluster.start()
        print(f"  {args.models} nodes SERVING after {time.perf_counter() - started:.1f} s (all spawned at once)")
        orchestrator = cluster.orchestrator

        def gateway(**options: Any) -> Any:
            from coordinator_core.gateway.model_runner import ModelRunnerGateway

            settings = {"timeout_seconds": 5.0, "connect_timeout_seconds": 30.0, "reconnect_seconds": 0.5}
            settings.update(options)
            return ModelRunnerGateway(
                host=orchestrator.host,
                port=orchestrator.port,
                crunch_id=CRUNCH_ID,
                base_classname="tracker.TrackerBase",
                **settings,  # type: ignore[arg-type]
            )

        print("lifecycle")
        started = time.perf_counter()
        import model_runner_client.model_concurrent_runners  # noqa: F401  (what the first gateway imports)

        imported = time.perf_counter() - started
        started = time.perf_counter()
        first = gateway()
        first.wait_ready()
        connected = time.perf_counter() - started
        assert len(first.callable_models()) == args.models, first.load_errors
        print(f"  client import (pandas, grpc, ...), once per process: {ms(imported)}")
        print(f"  first connection: websocket + init + {args.models} gRPC channels + first Setup: {ms(connected)}")
        reconnects = []
        for _ in range(10):
            started = time.perf_counter()
            again = gateway()
            again.wait_ready()
            reconnects.append(time.perf_counter() - started)
            assert len(again.callable_models()) == args.models
            again.close()
        print(
            f"  reconnection (instances exist on the nodes): p50 {ms(pct(reconnects, 50))}, "
            f"max {ms(max(reconnects))} over 10"
        )

        print("rounds")
        run_rounds(first, args.rounds, expected, workdir, "model_runner")
        first.close()
        from coordinator_core.gateway.local import LocalGateway

        local = LocalGateway(workdir / "models", "tracker.TrackerBase", 5.0)
        run_rounds(local, args.rounds, expected, workdir, "local (in-process, same models)")

        print("failure cases")
        ghost_port = free_port()
        ghost = {**cluster.nodes["m00"].state("RUNNING", "ghost_1"), "model_id": "ghost", "port": ghost_port}
        orchestrator.announce(ghost)
        started = time.perf_counter()
        slow_start = gateway(connect_timeout_seconds=10.0, report_failure=True)
        slow_start.predict("BTC", 3600, 900)
        first_call = time.perf_counter() - started
        print(
            f"  an announced node that does not listen: first call of a fresh process after {ms(first_call)} "
            f"(connect + round; MODEL_RUNNER_CONNECT_TIMEOUT_SECONDS=10 is not waited for a refused "
            f"connection); the other {len(slow_start.callable_models())} models answer"
        )
        if not args.quick:
            while not orchestrator.reports and time.perf_counter() - started < 150:
                time.sleep(0.2)
            gave_up = time.perf_counter() - started
            codes = [r["failure_code"] for r in orchestrator.reports]
            print(f"  ... the client gives up on it after {gave_up:.1f} s and reports {codes}")
        slow_start.close()
        orchestrator.forget("ghost")

        orchestrator.stop_server()
        started = time.perf_counter()
        down = gateway(connect_timeout_seconds=2.0)
        try:
            down.models()
        except Exception as exc:
            print(
                f"  orchestrator down: {type(exc).__name__} after {ms(time.perf_counter() - started)} "
                f"(MODEL_RUNNER_CONNECT_TIMEOUT_SECONDS=2)"
            )
        down.close()
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
