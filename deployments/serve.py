"""Serve every flow from this process on its schedule (the local all-in-one runner).

``python -m deployments.serve`` (with ``PREFECT_API_URL`` pointing at a Prefect server) registers
the deployments and runs each flow run as a subprocess; Ctrl-C stops it (Prefect then pauses the
schedules). ``coordinator serve`` wraps this with a Prefect server, the report API and a live
synthetic feed.
"""

from __future__ import annotations

from coordinator_core.prefect_env import apply_defaults

apply_defaults()

from prefect import serve  # noqa: E402

from coordinator_core.config import Settings, load_settings  # noqa: E402

WEEK = 604_800


def deployments(settings: Settings | None = None) -> list:
    from flows.backfill_feed import backfill_feed
    from flows.backtest import backtest
    from flows.build_checkpoint import build_checkpoint
    from flows.ingest_feed import ingest_feed
    from flows.predict_round import predict_round
    from flows.score_predictions import score_predictions

    settings = settings or load_settings()
    # weekly checkpoints on Monday 00:00 UTC; shorter periods (live demos) are checked every 5 min
    checkpoint_schedule = (
        {"cron": "0 0 * * 1"}
        if settings.checkpoint_interval_seconds == WEEK
        else {"interval": min(300, settings.checkpoint_interval_seconds)}
    )
    return [
        ingest_feed.to_deployment("ingest-feed", interval=settings.ingest_interval_seconds),
        predict_round.to_deployment("predict-round", interval=settings.predict_interval_seconds),
        score_predictions.to_deployment("score-predictions", interval=settings.score_interval_seconds),
        build_checkpoint.to_deployment("build-checkpoint", **checkpoint_schedule),
        backfill_feed.to_deployment("backfill-feed"),
        backtest.to_deployment("backtest"),
    ]


def main() -> None:
    serve(*deployments(), limit=8)


if __name__ == "__main__":
    main()
