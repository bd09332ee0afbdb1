"""The report API (FastAPI). ``create_app(settings)`` is the factory.

Routes (one router per resource under ``api/routers``), by tier (see ``api.security``):

* open: ``/healthz`` (checks the database), ``/openapi.json``, ``/docs``, ``/redoc``, the
  leaderboard page ``/board`` (``/`` redirects there) and their assets under ``/static``, all served
  locally (``api.docs``);
* public: ``/info``, ``/reports/schema`` (+ two parts), ``/reports/leaderboard`` (+ ``history``),
  ``/reports/models`` (+ ``global``, ``params``, ``{id}/status``), ``/reports/snapshots``,
  ``/reports/checkpoints`` (+ ``latest``, ``latest/prizes``, ``{id}``, ``{id}/payload``,
  ``{id}/emission``, ``{id}/emission/cli-format``, ``{id}/prizes``), ``/reports/emissions/latest``;
* private: ``/reports/predictions``, ``/reports/feeds``, ``/reports/feeds/tail``,
  ``/reports/models/{id}/predictions``;
* admin: ``POST /reports/checkpoints/{id}/confirm``, ``PATCH /reports/checkpoints/{id}/status``.

Lists are keyset-paginated (``limit``, ``cursor``; the next cursor comes in the ``X-Next-Cursor``
header, see ``api.pagination``). Timestamps are ISO-8601 UTC; query timestamps without an offset
are read as UTC. Bad input is a 4xx, never a 5xx: a parameter whose raw text is not valid UTF-8 or
holds a NUL is a 422 naming it (``api.params.check_request_text``); an unreachable or exhausted
database is a 503. Every status a route can answer is in the OpenAPI schema.

On Postgres, the leaderboard, checkpoint documents and window totals are cached in memory per row
version (``xmin``), see ``api.cache``: the latest leaderboard is re-checked at most once a second.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.deps import ApiContext
from api.docs import add_pages
from api.pagination import NEXT_CURSOR_HEADER
from api.params import check_request_text
from api.routers import (
    checkpoints,
    emissions,
    feeds,
    history,
    info,
    leaderboard,
    models,
    predictions,
    report_schema,
    snapshots,
)
from api.schemas import Health, check_windows, problem
from coordinator_core.config import Settings, load_settings
from coordinator_core.contract import load_contract
from coordinator_core.db.engine import get_engine
from coordinator_core.db.uow import sql_unit_of_work
from coordinator_core.errors import Conflict, NotFound, TransientError

API_VERSION = "0.1.0"
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: problem(
        "the database is unreachable, or no connection is free (then with Retry-After)",
        **{"Retry-After": "seconds to wait before retrying (when overloaded)"},
    )
}


def _system_clock() -> datetime:
    return datetime.now(UTC)


def _encodable(value: Any) -> Any:
    """``value`` with every string made encodable as UTF-8 (a lone surrogate, which JSON escapes
    such as ``\\ud800`` let into a request body, becomes the text ``\\ud800``)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list | tuple):
        return [_encodable(v) for v in value]
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    return value


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body (``{"detail": [errors]}``), which can always be encoded: the ``input``
    echoed back may hold text that UTF-8 cannot (the default handler then fails with a 500)."""
    return JSONResponse({"detail": _encodable(jsonable_encoder(exc.errors()))}, status_code=422)


def create_app(settings: Settings | None = None, *, clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The report API for ``settings`` (default: from the environment).

    ``clock`` gives "now" (default: the system clock in UTC); it stamps ``submitted_at`` and is the
    fallback as-of time of window scores before the first leaderboard.
    """
    settings = settings or load_settings()
    contract = load_contract(settings)
    check_windows(contract.aggregation.windows)
    context = ApiContext(
        settings=settings,
        contract=contract,
        read_engine=get_engine(settings.read_database_url or settings.database_url),
        write_engine=get_engine(settings.database_url),
        uow=sql_unit_of_work(get_engine(settings.database_url)),
        clock=clock or _system_clock,
        api_version=API_VERSION,
    )
    app = FastAPI(
        title="Coordinator report API",
        version=API_VERSION,
        description=__doc__,
        dependencies=[Depends(check_request_text)],
        responses=UNAVAILABLE,
        docs_url=None,  # /docs and /redoc come from add_pages, with assets served locally
        redoc_url=None,
    )
    app.state.context = context
    app.state.settings = settings
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PATCH"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type"],
            expose_headers=[NEXT_CURSOR_HEADER, "Link"],
            max_age=600,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # FastAPI's only 400: a body it cannot parse (e.g. bytes that are not UTF-8)
            error = {
                "type": "json_invalid",
                "loc": ("body",),
                "msg": "the body is not JSON text in UTF-8: send a JSON object with Content-Type: application/json",
                "input": None,
            }
            return validation_error_response(RequestValidationError([error]))
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error_response(exc)

    @app.exception_handler(OperationalError)
    @app.exception_handler(TransientError)
    def database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"database unavailable: {type(exc).__name__}"}, status_code=503)

    @app.exception_handler(NotFound)
    def not_found(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    def conflict(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(PoolTimeoutError)
    def overloaded(_request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "overloaded: no database connection free, retry later"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    add_pages(app)
    windows = context.windows
    app.include_router(info.router)
    app.include_router(report_schema.router)
    app.include_router(leaderboard.build_router(windows))
    app.include_router(history.build_router(windows))
    app.include_router(models.build_router(windows))
    app.include_router(predictions.router)
    app.include_router(feeds.router)
    app.include_router(snapshots.router)
    app.include_router(checkpoints.router)
    app.include_router(emissions.router)

    @app.get(
        "/healthz",
        tags=["health"],
        response_model=Health,
        responses={503: {"model": Health, "description": "the database cannot be reached"}},
    )
    def healthz() -> Any:
        """Liveness and reachability of the database the API reads."""
        try:
            with context.read_engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "error", "database": f"unreachable: {type(exc).__name__}"}, status_code=503)
        return {"status": "ok", "database": "ok"}

    return app
