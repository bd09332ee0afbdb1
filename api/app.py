"""The report API (FastAPI). ``create_app(settings)`` is the factory; routers per resource follow."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from coordinator_core.config import Settings, load_settings
from coordinator_core.db.engine import get_engine


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    app = FastAPI(title="Coordinator report API", version="0.1.0")
    engine = get_engine(settings.database_url)

    @app.get("/healthz", tags=["health"])
    def healthz() -> Any:
        """Liveness and database reachability."""
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "error", "database": f"unreachable: {type(exc).__name__}"}, status_code=503)
        return {"status": "ok", "database": "ok"}

    return app
