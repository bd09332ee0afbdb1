"""Run one deterministic competition scenario, optionally killing this process at the Nth point.

Run by ``test_fault_injection.py`` as a subprocess::

    python -m tests.integration.fault_driver --scenario live --database-url URL --models-dir DIR \\
        [--kill-at N] [--trace trace.json] [--from-step K]

A *point* is every SQL statement (SQLAlchemy's ``before_cursor_execute``) and every commit
(``commit``, fired before the DBAPI commit is sent), numbered from 0 in the order this process
reaches them. With ``--kill-at N`` the process ends with ``os._exit(137)`` when it reaches point
``N``: statement ``N`` is never sent (or commit ``N`` never made), and nothing runs after it: no
``finally``, no rollback, no connection close, no atexit (the server sees the socket close and
rolls the open transaction back, as after a SIGKILL). Without it the scenario runs to the end and
``--trace`` writes every point with where it happened (step, service, part, transaction and
statement number within the service call, the statement's first words), plus the points at
which the models were called, so the test can name the places it kills at.

``--from-step K`` runs only the steps from ``K`` on (the backtest still seeds its configs first):
what a retry of the killed flow run and the runs scheduled after it do.

``--serve`` runs such commands read from stdin, each in a fork of one warm process (see ``serve``).

Scenarios (virtual times only; the shipped BTC replay data; the deterministic example models):

``live``
    What the four flows do, in their order, at each hour of 2019-10-06T20:00Z → 2019-10-07T02:00Z:
    ingest-feed (``ingest_scope`` for every scope, then ``prune_records``), predict-round
    (``seed_configs``, ``predict_round``), score-predictions (``score_predictions``),
    build-checkpoint (``build_checkpoints``; the Monday 2019-10-07 00:00 boundary writes one).
    ``SCORE_BATCH_SIZE=1`` (every round is its own scoring transaction) and a replay page of 50
    records (the first ingest reads 121 candles in three pages).
``backtest``
    What the backtest flow does over 2019-10-13T21:00Z → 2019-10-14T02:00Z: ``prepare`` (seed the
    configs), then ``run_steps`` per chunk of three hours (``chunks``), with the default batch
    size and page size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from coordinator_core.bootstrap import Runtime, build_runtime
from coordinator_core.services import backtest, checkpoint, configs, ingest, predict, score

HOUR = timedelta(hours=1)
SCENARIOS: dict[str, dict[str, Any]] = {
    "live": {
        "start": datetime(2019, 10, 6, 20, tzinfo=UTC),
        "end": datetime(2019, 10, 7, 2, tzinfo=UTC),
        "settings": {"score_batch_size": 1},
        "page_limit": 50,
    },
    "backtest": {
        "start": datetime(2019, 10, 13, 21, tzinfo=UTC),
        "end": datetime(2019, 10, 14, 2, tzinfo=UTC),
        "settings": {},
        "page_limit": None,
    },
}
KILLED = 137
PARTS = {"score": "batch", "checkpoint": "build"}  # the first part of these services' calls


@dataclass
class Tracer:
    """Counts points, kills at one, and remembers where each happened."""

    kill_at: int | None = None
    record: bool = False
    points: list[dict[str, Any]] = field(default_factory=list)
    model_calls: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    step: int = -1
    service: str = ""
    part: str = ""
    tx: int = 0
    statement: int = 0

    def _point(self, kind: str, sql: str) -> None:
        index = self.count
        self.count += 1
        if index == self.kill_at:
            os._exit(KILLED)  # a real kill: no cleanup, no rollback, no finally
        if self.record:
            self.points.append(
                {
                    "i": index,
                    "kind": kind,
                    "step": self.step,
                    "service": self.service,
                    "part": self.part,
                    "tx": self.tx,
                    "n": self.statement,
                    "sql": " ".join(sql.split())[:90],
                }
            )
        self.statement += 1

    def statement_hook(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self._point("stmt", statement)

    def commit_hook(self, conn: Any) -> None:
        self._point("commit", "COMMIT")

    def begin_hook(self, conn: Any) -> None:
        self.tx += 1
        self.statement = 0

    @contextmanager
    def phase(self, service: str | None = None, step: int | None = None, part: str | None = None) -> Iterator[None]:
        """Points inside are labelled ``service``/``part``; a new service call counts its
        transactions from 1 (a ``part`` alone continues the call's count)."""
        saved = (self.step, self.service, self.part)
        if step is not None:
            self.step = step
        if service is not None:
            self.service, self.tx = service, 0
            self.part = PARTS.get(service, "")
        if part is not None:
            self.part = part
        try:
            yield
        finally:
            self.step, self.service, self.part = saved

    def models_called(self, what: str) -> None:
        if self.record:
            self.model_calls.append({"before": self.count, "step": self.step, "call": what})


def instrument(runtime: Runtime, tracer: Tracer) -> None:
    """Hooks on the engine, a mark whenever the models are called, and the part of a service
    (score: ``batch`` or ``refresh``; checkpoint: ``refresh`` or ``build``) in the trace."""
    event.listen(runtime.engine, "before_cursor_execute", tracer.statement_hook)
    event.listen(runtime.engine, "commit", tracer.commit_hook)
    event.listen(runtime.engine, "begin", tracer.begin_hook)
    gateway = runtime.gateway
    for name in ("tick", "predict"):
        original = getattr(gateway, name)

        def called(*args: Any, _original: Callable[..., Any] = original, _name: str = name, **kwargs: Any) -> Any:
            tracer.models_called(_name)
            return _original(*args, **kwargs)

        setattr(gateway, name, called)
    refresh = score.refresh_derived

    def refresh_part(*args: Any, **kwargs: Any) -> Any:
        with tracer.phase(part="refresh"):
            return refresh(*args, **kwargs)

    score.refresh_derived = refresh_part  # type: ignore[assignment]
    checkpoint.refresh_derived = refresh_part  # type: ignore[assignment]
    for module, name, service in (
        (backtest, "ingest", "ingest"),
        (backtest, "predict_round", "predict"),
        (backtest, "score_predictions", "score"),
        (backtest, "build_checkpoints", "checkpoint"),
    ):
        original = getattr(module, name)

        def in_phase(*args: Any, _original: Callable[..., Any] = original, _service: str = service) -> Any:
            with tracer.phase(_service):
                return _original(*args)

        setattr(module, name, in_phase)


def run_live(runtime: Runtime, tracer: Tracer, start: datetime, end: datetime, first: int = 0) -> None:
    rt = runtime
    now, step = start, 0
    while now <= end:
        if step < first:
            now, step = now + HOUR, step + 1
            continue
        with tracer.phase("ingest", step):
            for scope in ingest.feed_scopes(rt.settings):
                ingest.ingest_scope(rt.uow, rt.source_for(scope.source), scope, now, rt.settings)
        with tracer.phase("prune", step):
            ingest.prune_records(rt.uow, now, rt.settings.feed_record_ttl_days)
        with tracer.phase("seed", step):
            configs.seed_configs(rt.uow, rt.contract, rt.settings, now)
        with tracer.phase("predict", step):
            predict.predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, now)
        with tracer.phase("score", step):
            score.score_predictions(rt.uow, rt.contract, rt.settings, now)
        with tracer.phase("checkpoint", step):
            checkpoint.build_checkpoints(rt.uow, rt.contract, rt.settings, now)
        now, step = now + HOUR, step + 1


def run_backtest(runtime: Runtime, tracer: Tracer, start: datetime, end: datetime, first: int = 0) -> None:
    with tracer.phase("seed", -1):
        backtest.prepare(runtime, start)
    step_seconds = backtest.step_seconds(runtime)
    step = 0
    for chunk_start, chunk_end in backtest.chunks(start, end, step_seconds, per_chunk=3 * HOUR):
        for now in backtest.virtual_times(chunk_start, chunk_end, step_seconds):
            if step >= first:
                with tracer.phase("backtest", step):
                    backtest.run_steps(runtime, [now])
            step += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--trace")
    parser.add_argument("--from-step", type=int, default=0, help="skip the steps before this one (a retry)")
    args = parser.parse_args(argv)
    scenario = SCENARIOS[args.scenario]
    runtime = build_runtime(
        database_url=args.database_url,
        models_dir=args.models_dir,
        local_model_timeout_seconds=60.0,  # the deterministic models answer in ms; no load may time them out
        **scenario["settings"],
    )
    if scenario["page_limit"]:
        for name in runtime.settings.sources:
            runtime.source_for(name).page_limit = scenario["page_limit"]  # type: ignore[misc]
    tracer = Tracer(kill_at=args.kill_at, record=bool(args.trace))
    instrument(runtime, tracer)
    run = run_live if args.scenario == "live" else run_backtest
    run(runtime, tracer, scenario["start"], scenario["end"], args.from_step)
    if args.trace:
        Path(args.trace).write_text(json.dumps({"points": tracer.points, "model_calls": tracer.model_calls}))
    runtime.close()
    if args.kill_at is not None and args.kill_at >= tracer.count:
        print(f"kill point {args.kill_at} never reached ({tracer.count} points)", file=sys.stderr)
        return 3
    return 0


def serve() -> int:
    """Run requests read from stdin, one JSON list of arguments a line, each in a fork of this
    process (imports paid once: a run costs its own work only); answer ``{"rc": exit code}`` a line.
    The child is a process of its own: the kill ends it, not the server. Nothing here holds a
    connection or a thread when it forks (the engine, the models and the feed are built in the child;
    polars, which starts its thread pool on import, is imported by each child)."""
    import coordinator_core.gateway.local  # noqa: F401

    for line in sys.stdin:
        args = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: stdout belongs to the protocol
            os.dup2(2, 1)
            try:
                code = main(args)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"rc": os.waitstatus_to_exitcode(status)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main())
