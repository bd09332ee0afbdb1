"""Serve every flow from this process on its schedule (local all-in-one runner).

``python -m deployments.serve`` (with ``PREFECT_API_URL`` pointing at a Prefect server) registers
the deployments and runs them here; Ctrl-C stops it and pauses their schedules.
"""

from __future__ import annotations

from coordinator_core.prefect_env import apply_defaults

apply_defaults()

from prefect import serve  # noqa: E402

from coordinator_core.config import load_settings  # noqa: E402


def deployments() -> list:
    from flows.backfill_feed import backfill_feed
    from flows.backtest import backtest
    from flows.build_checkpoint import build_checkpoint
    from flows.ingest_feed import ingest_feed
    from flows.predict_round import predict_round
    from flows.score_predictions import score_predictions

    settings = load_settings()
    return [
        ingest_feed.to_deployment("ingest-feed", interval=settings.ingest_interval_seconds),
        predict_round.to_deployment("predict-round", interval=settings.predict_interval_seconds),
        score_predictions.to_deployment("score-predictions", interval=settings.score_interval_seconds),
        build_checkpoint.to_deployment("build-checkpoint", cron="0 0 * * 1"),
        backfill_feed.to_deployment("backfill-feed"),
        backtest.to_deployment("backtest"),
    ]


if __name__ == "__main__":
    serve(*deployments())
