"""Keyset pagination of every list route (SQLite and Postgres): walking ``X-Next-Cursor`` returns
every row exactly once, in the order of one big page, also while rows are being added."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, insert, select
from sqlmodel import Session

from coordinator_core.db.tables import Leaderboard, Prediction, Snapshot
from tests.integration import test_api_support as support
from tests.integration.test_api_support import CHECKPOINT_ID, Dataset, walk

api_db, client = support.api_db, support.client  # the shared fixtures

# route, params, the key that identifies a row, page size for the walk
LISTS = [
    ("/reports/leaderboard", {}, ("model_id",), 2),
    ("/reports/models", {}, ("model_id",), 2),
    ("/reports/models/global", {}, ("model_id",), 2),
    ("/reports/models/params", {}, ("model_id", "scope_key"), 3),
    ("/reports/models/params", {}, ("model_id", "scope_key"), 1),
    ("/reports/predictions", {}, ("id",), 37),
    ("/reports/predictions", {"order": "asc"}, ("id",), 37),
    ("/reports/predictions", {"model_id": "flaky", "status": "FAILED"}, ("id",), 3),
    ("/reports/models/noisy/predictions", {"order": "asc"}, ("id",), 25),
    ("/reports/feeds/tail", {}, ("id",), 50),
    ("/reports/snapshots", {}, ("id",), 33),
    ("/reports/snapshots", {"model_id": "noisy", "since": "2019-10-05T00:00:00"}, ("id",), 7),
    ("/reports/feeds", {}, ("source", "subject", "kind", "granularity"), 1),
    ("/reports/checkpoints", {}, ("id",), 1),
    (f"/reports/checkpoints/{CHECKPOINT_ID}/prizes", {"total_prize": 1000}, ("model",), 2),
]


def ids(rows: list[dict[str, Any]], key: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return [tuple(row[k] for k in key) for row in rows]


@pytest.mark.parametrize(("path", "params", "key", "size"), LISTS)
def test_walk_returns_every_row_exactly_once(
    client: TestClient, path: str, params: dict[str, Any], key: tuple[str, ...], size: int
) -> None:
    cap = 100 if path in ("/reports/feeds", "/reports/checkpoints") else 1000
    whole = client.get(path, params={**params, "limit": cap})
    assert whole.status_code == 200 and "X-Next-Cursor" not in whole.headers
    expected = ids(whole.json(), key)
    assert expected, path
    pages = walk(client, path, {**params, "limit": size})
    assert all(len(page) <= size for page in pages) and all(pages)
    walked = ids([row for page in pages for row in page], key)
    assert walked == expected
    assert len(set(walked)) == len(walked)
    assert len(pages) == -(-len(expected) // size)  # no empty trailing page


def test_predictions_walk_covers_the_table(client: TestClient, api_db: Dataset) -> None:
    walked = [p["id"] for page in walk(client, "/reports/predictions", {"limit": 100}) for p in page]
    with Session(api_db.engine) as session:
        stored = session.connection().execute(select(Prediction.id)).scalars().all()
    assert sorted(walked) == sorted(stored) and len(walked) == len(set(walked)) == 730


def test_latest_prizes_pages(client: TestClient) -> None:
    pages = walk(client, "/reports/checkpoints/latest/prizes", {"total_prize": 999, "limit": 2})
    assert len(pages) == 3 and all(page["checkpoint_id"] == CHECKPOINT_ID for page in pages)
    assert sum(p["prize"] for page in pages for p in page["prizes"]) == 999


def test_limits_are_capped(client: TestClient) -> None:
    for path, cap in (
        ("/reports/predictions", 1000),
        ("/reports/snapshots", 1000),
        ("/reports/checkpoints", 100),
        ("/reports/feeds/tail", 1000),
        ("/reports/models", 1000),
        ("/reports/leaderboard", 1000),
    ):
        assert client.get(path, params={"limit": cap}).status_code == 200
        assert client.get(path, params={"limit": cap + 1}).status_code == 422
        assert client.get(path, params={"limit": 0}).status_code == 422


def test_bad_cursors_are_422(client: TestClient) -> None:
    snapshot_cursor = client.get("/reports/snapshots", params={"limit": 1}).headers["X-Next-Cursor"]
    for path in (
        "/reports/predictions",
        "/reports/leaderboard",
        "/reports/models",
        "/reports/checkpoints",
        "/reports/feeds/tail",
        "/reports/models/global",
        "/reports/models/params",
        f"/reports/checkpoints/{CHECKPOINT_ID}/prizes",
    ):
        for cursor in ("garbage", "e30", snapshot_cursor, "eyJyIjoicHJlZGljdGlvbnMtZGVzYyIsImsiOlsxLDJdfQ"):
            response = client.get(path, params={"cursor": cursor})
            assert response.status_code == 422, (path, cursor, response.text)
    desc = client.get("/reports/predictions", params={"limit": 1}).headers["X-Next-Cursor"]
    assert client.get("/reports/predictions", params={"cursor": desc, "order": "asc"}).status_code == 422


def test_leaderboard_cursor_pins_its_leaderboard(client: TestClient, api_db: Dataset) -> None:
    first = client.get("/reports/leaderboard", params={"limit": 2})
    board_id = first.json()[0]["leaderboard_id"]
    newer = datetime(2019, 10, 11, tzinfo=UTC)
    with Session(api_db.engine) as session:
        session.connection().execute(
            insert(Leaderboard.__table__).values(id="LBR_test_newer", created_at=newer, entries_jsonb=[], meta_jsonb={})
        )
        session.commit()
    try:
        time.sleep(
            client.app.state.context.leaderboards.head_ttl + 0.1
        )  # the latest row is re-read at most once a second
        assert client.get("/reports/leaderboard").json() == []  # the newest leaderboard is now empty
        rest = walk(client, "/reports/leaderboard", {"limit": 2, "cursor": first.headers["X-Next-Cursor"]})
        rows = [row for page in rest for row in page]
        assert len(rows) == 3 and {row["leaderboard_id"] for row in rows} == {board_id}
    finally:
        with Session(api_db.engine) as session:
            session.connection().execute(
                delete(Leaderboard.__table__).where(Leaderboard.__table__.c.id == "LBR_test_newer")
            )
            session.commit()


def test_walk_is_stable_while_rows_are_added(client: TestClient, api_db: Dataset) -> None:
    before = [s["id"] for page in walk(client, "/reports/snapshots", {"limit": 1000}) for s in page]
    first = client.get("/reports/snapshots", params={"limit": 40})
    table: Any = Snapshot.__table__
    with Session(api_db.engine) as session:
        newest = session.connection().execute(select(func.max(table.c.period_end))).scalar()
        now = datetime(2019, 10, 10, tzinfo=UTC)
        session.connection().execute(
            insert(table),
            [
                {
                    "id": f"SNAP_test_{i}",
                    "model_id": "noisy",
                    "period_start": newest + timedelta(hours=i),
                    "period_end": newest + timedelta(hours=i + 1),
                    "prediction_count": 1,
                    "value_sum": -1.0,
                    "result_summary_jsonb": {},
                    "meta_jsonb": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(3)
            ],
        )
        session.commit()
    try:
        rest = walk(client, "/reports/snapshots", {"limit": 40, "cursor": first.headers["X-Next-Cursor"]})
        walked = [s["id"] for s in first.json()] + [s["id"] for page in rest for s in page]
        assert walked == before  # the new rows sort before the cursor: none missed, none twice
    finally:
        with Session(api_db.engine) as session:
            session.connection().execute(delete(table).where(table.c.id.like("SNAP_test_%")))
            session.commit()
