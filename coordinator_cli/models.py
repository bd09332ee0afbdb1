"""``coordinator models …``: model-related commands (the local orchestrator lives here)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

models_app = typer.Typer(help="Participant models: a local orchestrator for development.", no_args_is_help=True)


@models_app.command("serve-local")
def serve_local(
    models_dir: Annotated[
        Path,
        typer.Option(
            "--models-dir",
            help="one folder per model: <model_id>/main.py "
            "(+ model.json with name, player_id, player_name, wallet, hotkey, python)",
            exists=True,
            file_okay=False,
            resolve_path=True,
        ),
    ] = Path("examples/models"),
    port: Annotated[int, typer.Option(help="websocket port of the orchestrator (MODEL_RUNNER_NODE_PORT)")] = 9091,
    host: Annotated[str, typer.Option(help="address of the orchestrator and the model nodes")] = "127.0.0.1",
    crunch_id: Annotated[str | None, typer.Option(help="websocket path /<crunch_id> (default: CRUNCH_ID)")] = None,
    pythonpath: Annotated[
        list[Path] | None,
        typer.Option("--pythonpath", help="extra import path for the nodes (where the base class lives); repeatable"),
    ] = None,
    log_dir: Annotated[Path | None, typer.Option(help="node logs (default: a temporary directory)")] = None,
    stop_reported: Annotated[
        bool,
        typer.Option(
            "--stop-reported/--keep-reported",
            help="stop a model the coordinator reports as failing, as the real orchestrator does",
        ),
    ] = True,
    python: Annotated[
        Path | None,
        typer.Option(
            "--python",
            help="interpreter of the nodes whose model.json names none (there: "
            '"python": ".venv-condor/bin/python", relative to the project); default: this one',
            resolve_path=False,
        ),
    ] = None,
) -> None:
    """Docker-free stand-in for the model orchestrator: one real model node (crunch-model-runner,
    a process of its own) per model folder, announced over the orchestrator's websocket protocol on
    ws://HOST:PORT/<crunch_id>. Run the coordinator with MODEL_GATEWAY=model_runner
    MODEL_RUNNER_NODE_HOST=HOST MODEL_RUNNER_NODE_PORT=PORT. A folder's model.json may name the
    interpreter its node runs under ("python"), e.g. the Condor Game's trackers under
    .venv-condor/bin/python. Ctrl-C stops everything it started."""
    from coordinator_core.gateway.orchestrator import serve_local as run

    if crunch_id is None:
        from coordinator_cli.main import _settings

        crunch_id = _settings().crunch_id
    # by default the nodes run on this interpreter, where tracker.TrackerBase is installed with the
    # project; every interpreter is checked for crunch-model-runner before a node starts
    run(
        models_dir,
        port=port,
        host=host,
        crunch_id=crunch_id,
        pythonpath=[str(p) for p in pythonpath or []],
        log_dir=log_dir,
        stop_reported=stop_reported,
        echo=typer.echo,
        python=str(python.expanduser().absolute()) if python else None,
    )


@models_app.command("list")
def list_models() -> None:
    """The models the configured gateway (MODEL_GATEWAY) reports, and whether each can be called."""
    from rich.table import Table

    from coordinator_cli.main import _ready, console
    from tasks.context import get_runtime

    _ready("none", frozenset({"models"}))
    runtime = get_runtime()
    try:
        gateway = runtime.gateway
        infos = gateway.models()
        errors: dict[str, str] = getattr(gateway, "load_errors", {})
        table = Table(title=f"models ({runtime.settings.model_gateway} gateway)", title_justify="left")
        for column in ("model", "name", "player", "deployment", "state", "callable"):
            table.add_column(column)
        for info in infos:
            callable_now = (
                "no: " + errors[info.model_id]
                if info.model_id in errors
                else ("yes" if info.state == "RUNNING" else "–")
            )
            table.add_row(
                info.model_id,
                info.name,
                f"{info.player_name} ({info.player_id})",
                info.deployment_id,
                info.state,
                callable_now,
            )
        console.print(table)
    finally:
        runtime.close()


@models_app.command("check")
def check(
    path: Annotated[
        Path,
        typer.Argument(help="a model folder (main.py + model.json) or a folder of model folders", exists=True),
    ],
    rounds: Annotated[int, typer.Option(min=1, max=48, help="prediction rounds to run per config")] = 3,
) -> None:
    """Run a participant's model(s) against the contract locally, as a competition would: load,
    tick on the feed's data (the shipped replay by default), predict for every scheduled config and
    validate each answer with the contract's output validation. Prints what passed and what would
    fail, and why; exits 1 on any failure. Reads the contract, configs and feed settings as
    configured (.local.env); writes nothing outside a temporary folder."""
    from rich.table import Table

    from coordinator_cli.main import _ready, console
    from coordinator_core.services.model_check import check_models

    settings = _ready("none", frozenset({"configs", "replay"}))
    rows = check_models(path, settings, datetime.now(UTC), rounds=rounds)
    table = Table(title=f"models check of {path} ({rounds} rounds per config)", title_justify="left")
    for column in ("model", "check", "result", "detail"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.model, row.check, "ok" if row.ok else "FAIL", row.detail, style=None if row.ok else "red")
    console.print(table)
    failed = [row for row in rows if not row.ok]
    if failed:
        models = sorted({row.model for row in failed})
        console.print(f"{len(failed)} check(s) would fail, in {', '.join(models)}", markup=False)
        raise typer.Exit(1)
    console.print(f"all {len(rows)} checks passed", markup=False)


@models_app.command("deregister")
def deregister_model(
    model_id: Annotated[str, typer.Argument(help="the model's id (models.id, as `coordinator leaderboard` shows it)")],
) -> None:
    """Deregister a model at once: it gets no more ABSENT predictions (is no longer charged for the
    rounds it misses). If the gateway reports it RUNNING again, it is registered again."""
    from coordinator_cli.main import _ready, console
    from coordinator_core.clock import SystemClock
    from coordinator_core.errors import NotFound
    from coordinator_core.services.predict import deregister
    from tasks.context import get_runtime

    _ready("schema")
    before = deregister(get_runtime().uow, model_id, SystemClock().now())
    if before is None:
        raise NotFound(
            f"no model {model_id!r} in the registry (the models table); `coordinator leaderboard` lists them"
        )
    if before == "DEREGISTERED":
        console.print(f"{model_id} was already DEREGISTERED", markup=False)
        return
    console.print(f"{model_id}: {before} → DEREGISTERED (no more ABSENT rows)", markup=False)
    if before == "RUNNING":
        console.print(
            f"note: {model_id} was RUNNING; if the gateway still reports it running, the next round registers it again",
            markup=False,
        )
