"""``GET /reports/leaderboard/history`` (SQLite and Postgres): each model's window score over time,
computed from the snapshots, agrees with the leaderboard at its as-of time and with
``/reports/models/global`` (the SQL ``window_totals``) at any earlier time."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.integration import test_api_support as support
from tests.integration.test_api_support import MODELS, parse_ts, walk

api_db, client = support.api_db, support.client  # the shared fixtures

WINDOWS = ("score_recent", "score_steady", "score_anchor")


@pytest.mark.parametrize("window", WINDOWS)
def test_newest_point_is_the_leaderboard_score(client: TestClient, window: str) -> None:
    board = client.get("/reports/leaderboard").json()
    history = client.get("/reports/leaderboard/history", params={"window": window}).json()
    assert history["window"] == window and history["score_key"] == window
    assert history["hours"] == client.get("/info").json()["windows"][window]
    assert parse_ts(history["until"]) == parse_ts(board[0]["created_at"])
    by_model = {m["model_id"]: m for m in history["models"]}
    assert sorted(by_model) == sorted(MODELS)
    for entry in board:
        model = by_model[entry["model_id"]]
        assert model["model_name"] == entry["model_name"] and model["cruncher_id"] == entry["cruncher_id"]
        newest = model["points"][-1]
        assert parse_ts(newest["at"]) == parse_ts(history["until"])
        assert newest["score"] == pytest.approx(entry[window], rel=1e-12), (entry["model_id"], window)
        times = [parse_ts(p["at"]) for p in model["points"]]
        assert times == sorted(times) and len(set(times)) == len(times)


def test_earlier_points_match_the_window_totals(client: TestClient) -> None:
    history = client.get("/reports/leaderboard/history", params={"window": "score_steady"}).json()
    points = history["models"][0]["points"]
    assert len(points) > 20
    for point in (points[0], points[len(points) // 3], points[-7]):
        globals_at = client.get("/reports/models/global", params={"end": point["at"]}).json()
        expected = {g["model_id"]: g["windows"]["score_steady"] for g in globals_at}
        for model in history["models"]:
            mine = next(p for p in model["points"] if p["at"] == point["at"])
            assert mine["score"] == pytest.approx(expected[model["model_id"]]["score"], rel=1e-12)
            assert mine["prediction_count"] == expected[model["model_id"]]["prediction_count"]


def test_range_points_and_filters(client: TestClient) -> None:
    full = client.get("/reports/leaderboard/history").json()
    assert full["window"] == full["ranking_key"] == "score_recent"  # the default
    thinned = client.get("/reports/leaderboard/history", params={"points": 5}).json()
    for before, after in zip(full["models"], thinned["models"], strict=True):
        assert 1 <= len(after["points"]) <= 5 and after["points"][-1] == before["points"][-1]
        assert {p["at"] for p in after["points"]} <= {p["at"] for p in before["points"]}
    narrow = client.get(
        "/reports/leaderboard/history",
        params={"since": "2019-10-08T00:00:00Z", "until": "2019-10-09T00:00:00", "model_id": "noisy"},
    ).json()
    assert [m["model_id"] for m in narrow["models"]] == ["noisy"]
    times = [parse_ts(p["at"]) for p in narrow["models"][0]["points"]]
    assert times[-1] == parse_ts("2019-10-09T00:00:00Z") and all(t > parse_ts("2019-10-08T00:00:00Z") for t in times)
    pages = walk(client, "/reports/leaderboard/history", {"limit": 2})
    assert len(pages) == 3 and [m["model_id"] for p in pages for m in p["models"]] == sorted(MODELS)
    assert client.get("/reports/leaderboard/history", params={"until": "2019-01-01"}).json()["models"] == []


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"window": "score_weekly"}, "window"),
        ({"since": "2019-10-09", "until": "2019-10-08"}, "since"),
        ({"points": 0}, "points"),
        ({"cursor": "eyJyIjoibW9kZWxzIiwiayI6WyJhIl19"}, "cursor"),  # a /reports/models cursor
    ],
)
def test_bad_parameters_are_422(client: TestClient, params: dict[str, object], name: str) -> None:
    response = client.get("/reports/leaderboard/history", params=params)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", name], response.text
