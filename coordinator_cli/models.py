"""``coordinator models …``: model-related commands (the local orchestrator lives here)."""

from __future__ import annotations

import typer

models_app = typer.Typer(help="Participant models: a local orchestrator for development.", no_args_is_help=True)
