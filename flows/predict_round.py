"""Run the prediction rounds due now: seed configs, then tick and ask every model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from coordinator_core.clock import resolve_now
from coordinator_core.domain import failures as failure_rules
from coordinator_core.reports import predict_summary
from tasks.competition import predict_round as predict_round_task
from tasks.competition import seed_configs


@flow(name="predict-round", log_prints=True)
def predict_round(as_of: datetime | None = None) -> dict[str, Any]:
    now = resolve_now(as_of)
    seed_configs(now)
    result = predict_round_task(now)
    failures = failure_rules.from_dicts(result["failures"])
    print(predict_summary(result, now) + " | " + failure_rules.summary(result["statuses"], failures))
    return result
