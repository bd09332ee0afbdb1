"""Prefect flows: one per file, named by its verb; they only sequence tasks."""

from coordinator_core.prefect_env import apply_defaults

apply_defaults()
