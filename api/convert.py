"""Rows of ``coordinator_core.queries`` → payload dicts (shared by several routers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coordinator_core.domain.ranking import participant_label
from coordinator_core.domain.statuses import PredictionStatus
from coordinator_core.domain.windows import window_score
from coordinator_core.ports import CheckpointRow

MISSING = (PredictionStatus.FAILED.value, PredictionStatus.ABSENT.value)


def checkpoint(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "period_start": row["period_start"],
        "period_end": row["period_end"],
        "status": row["status"],
        "entries": row["entries_jsonb"] or [],
        "meta": row["meta_jsonb"] or {},
        "created_at": row["created_at"],
        "tx_hash": row["tx_hash"],
        "submitted_at": row["submitted_at"],
        "merkle_root": row["merkle_root"],
        "gate": row["gate_jsonb"],
    }


def checkpoint_row(row: CheckpointRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "period_start": row.period_start,
        "period_end": row.period_end,
        "status": row.status,
        "entries": row.entries or [],
        "meta": dict(row.meta or {}),
        "created_at": row.created_at,
        "tx_hash": row.tx_hash,
        "submitted_at": row.submitted_at,
        "merkle_root": row.merkle_root,
        "gate": dict(row.gate) if row.gate is not None else None,
    }


def prediction(row: dict[str, Any]) -> dict[str, Any]:
    scope = row["scope_jsonb"] or {}
    horizon = scope.get("horizon_seconds")
    subject = scope.get("subject")
    status = row["status"]
    success = row["score_success"]
    failed = status in MISSING or (success is False)
    return {
        "id": row["id"],
        "input_id": row["input_id"],
        "model_id": row["model_id"],
        "prediction_config_id": row["prediction_config_id"],
        "scope_key": row["scope_key"],
        "scope": scope,
        "subject": subject if isinstance(subject, str) else None,
        "horizon_seconds": horizon if isinstance(horizon, int) and not isinstance(horizon, bool) else None,
        "status": status,
        "runner_status": row["runner_status"],
        "failed_reason": row["failed_reason"],
        "exec_time_ms": row["exec_time_ms"],
        "inference_output": row["inference_output_jsonb"] or {},
        "performed_at": row["performed_at"],
        "resolvable_at": row["resolvable_at"],
        "score_value": row["score_value"],
        "score_success": success,
        "score_failed": failed,
        "score_failed_reason": (row["score_failed_reason"] or row["failed_reason"]) if failed else None,
        "scored_at": row["scored_at"],
    }


def snapshot(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "model_id": row["model_id"],
        "period_start": row["period_start"],
        "period_end": row["period_end"],
        "prediction_count": row["prediction_count"],
        "scored_count": row["scored_count"],
        "failed_count": row["failed_count"],
        "absent_count": row["absent_count"],
        "value_sum": row["value_sum"],
        "score": window_score(row["value_sum"], row["prediction_count"]),
        "result_summary": row["result_summary_jsonb"] or {},
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def model(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "model_id": row["id"],
        "model_name": row["name"],
        "cruncher_id": row["player_id"],
        "cruncher_name": participant_label(row["player_name"], row["player_id"]),
        "deployment_id": row["deployment_identifier"],
        "status": row["state"],
        "wallet": row["wallet"],
        "overall_score": row["overall_score_jsonb"] or {},
        "first_seen_at": row["first_seen_at"],
        "last_seen_at": row["last_seen_at"],
        "last_failure_code": row["last_failure_code"],
        "last_failure_at": row["last_failure_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def totals(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {
            "value_sum": 0.0,
            "prediction_count": 0,
            "scored_count": 0,
            "failed_count": 0,
            "absent_count": 0,
            "score": None,
        }
    return {
        k: row[k] for k in ("value_sum", "prediction_count", "scored_count", "failed_count", "absent_count", "score")
    }
