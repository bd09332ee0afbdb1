"""The report schema (leaderboard columns and metric widgets) built from the contract's windows.

Every property it names exists in the payload of the endpoint it points at (tested):
columns → ``/reports/leaderboard`` entries (``model_id``, ``status``, ``score_key(window)``);
widgets → ``performed_at`` and ``score_key(window)`` of ``/reports/models/global`` and
``/reports/models/params`` (grouped by ``scope_key``), and ``performed_at``, ``score_value``,
``score_success``, ``score_failed_reason``, ``subject``, ``horizon_seconds``, ``scope_key`` of
``/reports/predictions``.
"""

from __future__ import annotations

from typing import Any

from api.schemas import score_key

SCHEMA_VERSION = "1"


def title(name: str) -> str:
    return name.replace("_", " ").strip().title()


def leaderboard_columns(windows: dict[str, int]) -> list[dict[str, Any]]:
    columns: list[dict[str, Any]] = [
        {
            "id": 1,
            "type": "MODEL",
            "property": "model_id",
            "displayName": "Model",
            "nativeConfiguration": {"type": "model", "statusProperty": "status"},
            "order": 0,
        }
    ]
    for index, (name, hours) in enumerate(windows.items()):
        columns.append(
            {
                "id": index + 2,
                "type": "VALUE",
                "property": score_key(name),
                "format": "decimal-2",
                "displayName": title(name),
                "tooltip": f"Rolling score over {hours}h",
                "order": (index + 1) * 10,
            }
        )
    return columns


def _series(windows: dict[str, int]) -> list[dict[str, str]]:
    return [{"name": score_key(name), "label": title(name)} for name in windows]


def metrics_widgets(windows: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {
            "id": 1,
            "type": "CHART",
            "displayName": "Score Metrics",
            "tooltip": "Window scores per model",
            "order": 10,
            "endpointUrl": "/reports/models/global",
            "nativeConfiguration": {
                "type": "line",
                "xAxis": {"name": "performed_at"},
                "yAxis": {"series": _series(windows), "format": "decimal-2"},
                "displayEvolution": False,
            },
        },
        {
            "id": 2,
            "type": "CHART",
            "displayName": "Rolling score by parameters",
            "tooltip": "Window scores per model and scope key",
            "order": 20,
            "endpointUrl": "/reports/models/params",
            "nativeConfiguration": {
                "type": "line",
                "xAxis": {"name": "performed_at"},
                "yAxis": {"series": _series(windows), "format": "decimal-2"},
                "groupByProperty": "scope_key",
                "displayEvolution": False,
            },
        },
        {
            "id": 3,
            "type": "CHART",
            "displayName": "Predictions",
            "tooltip": "Score of every prediction",
            "order": 30,
            "endpointUrl": "/reports/predictions",
            "nativeConfiguration": {
                "type": "line",
                "xAxis": {"name": "performed_at"},
                "yAxis": {"series": [{"name": "score_value", "label": "Score"}], "format": "decimal-2"},
                "alertConfig": {"reasonField": "score_failed_reason", "field": "score_success"},
                "filterConfig": [
                    {"type": "select", "label": "Subject", "property": "subject", "autoSelectFirst": True},
                    {"type": "select", "label": "Horizon", "property": "horizon_seconds", "autoSelectFirst": True},
                ],
                "groupByProperty": "scope_key",
                "displayEvolution": False,
            },
        },
    ]


def report_schema(windows: dict[str, int]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "leaderboard_columns": leaderboard_columns(windows),
        "metrics_widgets": metrics_widgets(windows),
    }


def referenced_properties(schema: dict[str, Any]) -> dict[str, set[str]]:
    """Endpoint → the payload properties the schema names (what a front end will read)."""
    out: dict[str, set[str]] = {"/reports/leaderboard": set()}
    for column in schema["leaderboard_columns"]:
        out["/reports/leaderboard"].add(column["property"])
        status = column.get("nativeConfiguration", {}).get("statusProperty")
        if status:
            out["/reports/leaderboard"].add(status)
    for widget in schema["metrics_widgets"]:
        names = out.setdefault(widget["endpointUrl"], set())
        config = widget["nativeConfiguration"]
        names.add(config["xAxis"]["name"])
        names.update(series["name"] for series in config["yAxis"]["series"])
        if "groupByProperty" in config:
            names.add(config["groupByProperty"])
        alert = config.get("alertConfig") or {}
        names.update(v for k, v in alert.items() if k in ("reasonField", "field"))
        names.update(f["property"] for f in config.get("filterConfig", []))
    return out
