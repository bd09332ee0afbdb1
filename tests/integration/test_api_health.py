"""The report API factory and its health check (the routes themselves are another issue)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from coordinator_core.config import load_settings


def test_healthz_checks_the_database(db_url: str) -> None:
    client = TestClient(__import__("api.app", fromlist=["create_app"]).create_app(load_settings(database_url=db_url)))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_reports_an_unreachable_database() -> None:
    from api.app import create_app

    settings = load_settings(database_url="postgresql+psycopg2://nobody@127.0.0.1:1/none")
    response = TestClient(create_app(settings)).get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"
