"""Alerts as Prefect events, against a real Prefect server (the session's ``prefect_api``): the four
events arrive from real flow runs with their resources and payloads, and the shipped automation
(``deployments.alerts``), created through the API, fires and delivers its notification to a webhook
served by this test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tasks.context import get_runtime, reset_runtime
from tests._svc_helpers import write_model

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]

ROUND = datetime(2019, 10, 10, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
AFTER_THE_DATA = datetime(2019, 10, 20, tzinfo=UTC)  # the shipped replay data ends on 2019-10-17


@pytest.fixture
def failing_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Two models that never succeed (one raises, one answers garbage), failed predictions charged a
    constant (so snapshots exist but no model is ranked: the checkpoint's rewards sum to 0), hourly
    checkpoints, and an alert after 2 failed rounds in a row."""
    models = tmp_path / "models"
    write_model(models, "boom", 'raise RuntimeError("boom at predict")')
    write_model(models, "junk", 'return {"value": "up"}')
    for name, value in {
        "DATABASE_URL": db_url,
        "MODELS_DIR": str(models),
        "MISSING_PREDICTION_POLICY": "constant:-100",
        "CHECKPOINT_INTERVAL_SECONDS": "3600",
        "ALERT_MODEL_FAILING_ROUNDS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    reset_runtime()
    yield get_runtime()
    reset_runtime()


def run_alerting_flows() -> None:
    from flows.build_checkpoint import build_checkpoint
    from flows.ingest_feed import ingest_feed
    from flows.predict_round import predict_round
    from flows.score_predictions import score_predictions

    assert not ingest_feed(as_of=ROUND)[0]["stale"]
    predict_round(as_of=ROUND)  # boom and junk fail both configs: 2 in a row -> coordinator.model.failing
    ingest_feed(as_of=ROUND + HOUR)
    predict_round(as_of=ROUND + HOUR)  # 4 in a row: no second alert
    score_predictions(as_of=ROUND + HOUR)  # the 1 h round closes with nothing scored
    # the period (13:00, 14:00] waits for its rounds resolvable at 14:00 (CHECKPOINT_WAIT_SECONDS); the
    # one before holds the 12:00 rounds, scored at 13:00: nobody ranked, total 0
    assert build_checkpoint(as_of=ROUND + 2 * HOUR) == ["CKP_20191010_130000"]
    assert ingest_feed(as_of=AFTER_THE_DATA)[0]["stale"]  # nothing newer than 2019-10-17 exists


def coordinator_events(since: datetime, expected: int, timeout: float = 90.0) -> list[Any]:
    """The coordinator's events that occurred since ``since``, once ``expected`` have arrived."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    event_filter = EventFilter(
        occurred=EventOccurredFilter(since=since, until=datetime.now(UTC) + timedelta(hours=1)),
        event=EventNameFilter(prefix=["coordinator."]),
    )
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            # one event per id: a client that reconnects resends what the server had not confirmed
            events = list({e.id: e for e in client.read_events(filter=event_filter, limit=50).events}.values())
            if len(events) >= expected or time.monotonic() > deadline:
                return sorted(events, key=lambda e: (e.event, e.resource.id, e.occurred))
            time.sleep(1)


def test_the_four_alerts_arrive_with_their_resources_and_payloads(failing_env: Any) -> None:
    since = datetime.now(UTC)  # the previous test's events occurred before this one started
    run_alerting_flows()
    events = coordinator_events(since, expected=5)
    by_name: dict[str, list[Any]] = {}
    for event in events:
        by_name.setdefault(event.event, []).append(event)
    seen = [(e.event, e.resource.id, e.occurred.isoformat(), str(e.id), [r.id for r in e.related]) for e in events]
    assert {name: len(found) for name, found in by_name.items()} == {
        "coordinator.checkpoint.gated": 1,
        "coordinator.feed.stale": 1,
        "coordinator.model.failing": 2,  # boom and junk, once each (the second round does not repeat it)
        "coordinator.round.unscored": 1,
    }, seen

    (gated,) = by_name["coordinator.checkpoint.gated"]
    assert gated.resource.id == "coordinator.checkpoint.CKP_20191010_130000"
    assert gated.payload["total"] == 0 and gated.payload["expected_total"] == 1_000_000_000
    assert gated.payload["period_end"] == "2019-10-10T13:00:00+00:00" and gated.payload["gate"] == []

    (stale,) = by_name["coordinator.feed.stale"]
    assert stale.resource.id == "coordinator.feed.replay:BTC:candle:1h"
    assert stale.payload["watermark"] == "2019-10-17T09:00:00+00:00"  # the last candle of the dataset
    closed = datetime(2019, 10, 17, 10, tzinfo=UTC)  # ... observed at its close
    assert stale.payload["age_seconds"] == (AFTER_THE_DATA - closed).total_seconds()
    assert stale.payload["bound_seconds"] == 2 * 3600 + 60

    failing = {e.resource.id: e.payload for e in by_name["coordinator.model.failing"]}
    assert set(failing) == {"coordinator.model.boom", "coordinator.model.junk"}
    assert failing["coordinator.model.boom"]["rounds"] == 2 and failing["coordinator.model.boom"]["threshold"] == 2
    assert failing["coordinator.model.boom"]["reasons"][0].startswith("FAILED: RuntimeError: boom at predict")
    assert failing["coordinator.model.junk"]["since"] == ROUND.isoformat()

    (unscored,) = by_name["coordinator.round.unscored"]
    assert unscored.resource.id == "coordinator.round.INP_BTC-3600_20191010T120000"
    assert unscored.payload["predictions"] == {"FAILED": 2} and unscored.payload["round_at"] == ROUND.isoformat()
    assert unscored.payload["reason"] == "every prediction failed or was absent"
    related = {r.role for r in unscored.related}
    assert "flow-run" in related and "task-run" in related  # emitted inside the score task's run


class Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        length = int(self.headers.get("Content-Length", 0))
        Receiver.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Receiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the automation is the point, not the database
def test_the_shipped_automation_notifies_on_an_alert(failing_env: Any, webhook: str) -> None:
    from prefect.automations import Automation
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from deployments.alerts import alert_automation

    suffix = f"{time.time_ns()}"
    block_id = CustomWebhookNotificationBlock(
        name="coordinator test", url=webhook, json_data={"subject": "{{subject}}", "body": "{{body}}"}
    ).save(f"coordinator-alerts-{suffix}", overwrite=True)
    automation = alert_automation(block_id, name=f"coordinator-alerts-{suffix}").create()
    try:
        assert Automation.read(id=automation.id).trigger.expect == {  # type: ignore[union-attr]
            "coordinator.round.unscored",
            "coordinator.feed.stale",
            "coordinator.checkpoint.gated",
            "coordinator.model.failing",
        }
        time.sleep(2)  # the server loads the new automation after its commit
        run_alerting_flows()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(Receiver.bodies) < 5:
            time.sleep(1)
        subjects = sorted(body["subject"] for body in Receiver.bodies)
        assert subjects == [
            "coordinator alert: coordinator.checkpoint.gated on coordinator.checkpoint.CKP_20191010_130000",
            "coordinator alert: coordinator.feed.stale on coordinator.feed.replay:BTC:candle:1h",
            "coordinator alert: coordinator.model.failing on coordinator.model.boom",
            "coordinator alert: coordinator.model.failing on coordinator.model.junk",
            "coordinator alert: coordinator.round.unscored on coordinator.round.INP_BTC-3600_20191010T120000",
        ]
        unscored = next(b["body"] for b in Receiver.bodies if "round.unscored" in b["subject"])
        assert "input_id: INP_BTC-3600_20191010T120000" in unscored and "reason: every prediction failed" in unscored
    finally:
        automation.delete()
