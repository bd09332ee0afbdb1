"""Thin Prefect tasks: one service call each, carrying the Prefect policy (see ``tasks.policy``)."""

from coordinator_core.prefect_env import apply_defaults

apply_defaults()
