"""Models: the registry, window scores per model (``global``) and per scope key (``params``), and
for participants and operators one model's status and prediction history.

Window scores come from ``window_totals`` (Σ value_sum / Σ prediction_count over snapshots) with the
leaderboard's bounds ``(as_of - hours, as_of]``; ``as_of`` (= ``end``) defaults to the as-of time of
the latest stored leaderboard, so these payloads agree with ``/reports/leaderboard``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from sqlmodel import Session

from api import convert
from api.deps import ApiContext, ContextDep, SessionDep
from api.pagination import PAGINATED, decode_cursor, json_page, set_next
from api.params import (
    AsOf,
    Cursor,
    Limit,
    ModelIdPath,
    ModelIds,
    ModelStates,
    Order,
    PredictionStatuses,
    ProjectIds,
    ScopeKeys,
    Text,
    UTCDateTime,
    check_range,
    model_filter,
)
from api.routers.leaderboard import load_board
from api.routers.predictions import PREDICTIONS
from api.schemas import (
    ModelOut,
    ModelParamsBase,
    ModelScoresBase,
    ModelStatus,
    PredictionOut,
    problem,
    score_key,
    with_windows,
)
from api.security import AUTH_RESPONSES, PRIVATE, PUBLIC
from coordinator_core import queries
from coordinator_core.contract import custom_aggregator
from coordinator_core.db.tables import PredictionStatus
from coordinator_core.domain.ranking import participant_label

DEFAULT_PERIOD = timedelta(days=7)
STATUS_SAMPLE = 100
MODEL_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: problem("model not found")}
PERIOD = "\x00period"  # key of the (start, end] range next to the window names (never a window name)


def bounds(
    session: Session, ctx: ApiContext, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    """``(as_of, start)``: ``end`` or the latest leaderboard's as-of time (or now); ``start`` or 7 days before."""
    as_of = end or queries.latest_leaderboard_time(session) or ctx.clock()
    start = start or as_of - DEFAULT_PERIOD
    check_range(start, as_of)
    return as_of, start


def cached(session: Session, ctx: ApiContext, key: tuple[Any, ...], compute: Any) -> Any:
    """``compute()`` memoised per latest-leaderboard version (see ``api.cache.TtlCache``)."""
    head = queries.leaderboard_head(session)
    if head is None or head["version"] is None:
        return compute()
    full_key = (*key, head["id"], head["version"])
    hit = ctx.totals.get(full_key)
    return hit if hit is not None else ctx.totals.put(full_key, compute())


def window_scores(session: Session, ctx: ApiContext, as_of: datetime) -> dict[str, dict[str, dict[str, Any]]]:
    return cached(
        session,
        ctx,
        ("windows", as_of),
        lambda: queries.window_scores(
            session, ctx.windows, as_of, ctx.settings.snapshot_period_seconds, custom_aggregator(ctx.contract)
        ),
    )


def period_totals(session: Session, ctx: ApiContext, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
    return cached(
        session,
        ctx,
        ("period", start, end),
        lambda: queries.period_totals(
            session, start, end, ctx.settings.snapshot_period_seconds, custom_aggregator(ctx.contract)
        ),
    )


def score_fields(ctx: ApiContext, per_window: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    metrics = {name: (per_window.get(name) or {}).get("score") for name in ctx.windows}
    aggregation = ctx.contract.aggregation
    return {
        "score_metrics": metrics,
        "score_ranking": {
            "key": aggregation.ranking_key,
            "value": metrics.get(aggregation.ranking_key),
            "direction": aggregation.ranking_direction,
        },
        "windows": {name: convert.totals(per_window.get(name)) for name in ctx.windows},
        **{score_key(name): value for name, value in metrics.items()},
    }


def identity(model: dict[str, Any] | None) -> dict[str, Any]:
    model = model or {}
    return {
        "model_name": model.get("name"),
        "cruncher_id": model.get("player_id"),
        "cruncher_name": participant_label(model.get("player_name"), model.get("player_id")) if model else None,
        "status": model.get("state"),
    }


def build_router(windows: dict[str, int]) -> APIRouter:
    router = APIRouter(responses=AUTH_RESPONSES, tags=["models"])
    global_model = with_windows(ModelScoresBase, windows, "ModelScoresWithWindows")
    params_model = with_windows(ModelParamsBase, windows, "ModelParamsWithWindows")

    @router.get("/reports/models", response_model=list[ModelOut], responses=PAGINATED, dependencies=PUBLIC)
    def models(
        request: Request,
        response: Response,
        session: SessionDep,
        model_id: ModelIds = None,
        project_ids: ProjectIds = None,
        status: ModelStates = None,
        cruncher_id: Text | None = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> list[dict[str, Any]]:
        """Registered models by id; filter by id, state (``RUNNING``, ``STOPPED``, ...) and participant."""
        page = queries.models_page(
            session,
            after=decode_cursor("models", cursor, (str,)),
            limit=limit,
            model_ids=model_filter(model_id, project_ids),
            states=status or (),
            player_id=cruncher_id,
        )
        set_next(request, response, "models", page.next_key)
        return [convert.model(row) for row in page.rows]

    @router.get(
        "/reports/models/global",
        response_model=list[global_model],  # type: ignore[valid-type]
        responses=PAGINATED,
        dependencies=PUBLIC,
    )
    def models_global(
        request: Request,
        response: Response,
        session: SessionDep,
        ctx: ContextDep,
        model_id: ModelIds = None,
        project_ids: ProjectIds = None,
        start: UTCDateTime | None = None,
        end: UTCDateTime | None = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> list[dict[str, Any]]:
        """Per model with snapshots in a window or in (start, end]: every window's score at ``end``
        (default: the latest leaderboard's as-of time; equal to the leaderboard's scores), totals
        over (start, end] (default start: end - 7 days) and the newest ``performed_at``. By model id."""
        as_of, start = bounds(session, ctx, start, end)
        per_window = window_scores(session, ctx, as_of)
        period = period_totals(session, ctx, start, as_of)
        candidates = sorted(set(period).union(*per_window.values()))
        ids = set(model_filter(model_id, project_ids))
        key = decode_cursor("models-global", cursor, (str,))
        candidates = [m for m in candidates if (not ids or m in ids) and (key is None or m > key[0])]
        page = candidates[:limit]
        models = queries.models_by_id(session, page)
        performed = queries.last_performed_at(session, page, as_of)
        if len(candidates) > limit:
            set_next(request, response, "models-global", (page[-1],))
        return [
            {
                "model_id": m,
                **identity(models.get(m)),
                "as_of": as_of,
                "start": start,
                "end": as_of,
                **score_fields(ctx, {name: rows.get(m) for name, rows in per_window.items()}),
                "period": convert.totals(period.get(m)),
                "performed_at": performed.get(m),
            }
            for m in page
        ]

    @router.get(
        "/reports/models/params",
        response_model=list[params_model],  # type: ignore[valid-type]
        responses=PAGINATED,
        dependencies=PUBLIC,
    )
    def models_params(
        request: Request,
        response: Response,
        session: SessionDep,
        ctx: ContextDep,
        model_id: ModelIds = None,
        project_ids: ProjectIds = None,
        start: UTCDateTime | None = None,
        end: UTCDateTime | None = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> list[dict[str, Any]]:
        """As ``/reports/models/global`` but per (model, scope key), with the scope of the newest
        prediction. The same definition applied to the scores the snapshots sum, with the same
        period boundaries: the scope keys of a model add up to its ``global`` totals."""
        as_of, start = bounds(session, ctx, start, end)
        key = decode_cursor("models-params", cursor, (str, str))
        per_window = window_scores(session, ctx, as_of)
        period = period_totals(session, ctx, start, as_of)
        ids = set(model_filter(model_id, project_ids))
        candidates = sorted(
            m for m in set(period).union(*per_window.values()) if (not ids or m in ids) and (key is None or m >= key[0])
        )
        chosen = candidates[: limit + 1]  # every model with snapshots has at least one scope key
        ranges = {name: (as_of - timedelta(hours=hours), as_of) for name, hours in ctx.windows.items()}
        ranges[PERIOD] = (start, as_of)
        per_scope = queries.scope_totals(session, chosen, ranges)
        pairs = sorted(p for p in per_scope if key is None or p > key)
        page = pairs[:limit]
        models = queries.models_by_id(session, {m for m, _ in page})
        out = []
        for m, scope_key in page:
            totals = per_scope[(m, scope_key)]
            newest = queries.latest_scope_prediction(session, m, scope_key, as_of) or {}
            out.append(
                {
                    "model_id": m,
                    **identity(models.get(m)),
                    "scope_key": scope_key,
                    "scope": newest.get("scope_jsonb") or {},
                    "as_of": as_of,
                    "start": start,
                    "end": as_of,
                    **score_fields(ctx, {name: totals[name] for name in ctx.windows}),
                    "period": convert.totals(totals[PERIOD]),
                    "performed_at": newest.get("performed_at"),
                }
            )
        if len(pairs) > limit or len(candidates) > len(chosen):
            set_next(request, response, "models-params", page[-1])
        return out

    @router.get(
        "/reports/models/{model_id}/status", response_model=ModelStatus, responses=MODEL_NOT_FOUND, dependencies=PUBLIC
    )
    def model_status(model_id: ModelIdPath, session: SessionDep, ctx: ContextDep, as_of: AsOf = None) -> dict[str, Any]:
        """One model: its newest round and prediction (status, failed_reason, exec_time_ms), latency
        and statuses of its newest predictions, rank in the latest leaderboard and provisional
        window scores (``window_totals`` at ``as_of``, default the latest leaderboard's as-of time)."""
        model = queries.get_model(session, model_id)
        if model is None:
            raise HTTPException(404, f"model {model_id!r} not found")
        recent = queries.recent_predictions(session, model_id, STATUS_SAMPLE, until=as_of)
        windows_end = as_of or queries.latest_leaderboard_time(session) or ctx.clock()
        per_window = window_scores(session, ctx, windows_end)
        last = recent[0] if recent else None
        round_row = queries.input_round(session, last["input_id"]) if last else None
        answered = [r for r in recent if r["status"] != PredictionStatus.ABSENT.value]
        times = [float(r["exec_time_ms"]) for r in answered]
        board = load_board(session, ctx, None)
        rank = next((e.get("rank") for e in (board or {}).get("entries", []) if e["model_id"] == model_id), None)
        scores = score_fields(ctx, {name: rows.get(model_id) for name, rows in per_window.items()})
        last_prediction = None
        if last is not None:
            last_prediction = {
                k: last[k]
                for k in (
                    "id",
                    "input_id",
                    "performed_at",
                    "resolvable_at",
                    "scope_key",
                    "status",
                    "runner_status",
                    "failed_reason",
                    "exec_time_ms",
                )
            }
            last_prediction["round_at"] = round_row["round_at"] if round_row else None
        return {
            "model_id": model["id"],
            "model_name": model["name"],
            "cruncher_id": model["player_id"],
            "cruncher_name": participant_label(model["player_name"], model["player_id"]),
            "status": model["state"],
            "last_failure_code": model["last_failure_code"],
            "last_failure_at": model["last_failure_at"],
            "last_seen_at": model["last_seen_at"],
            "last_round_at": round_row["round_at"] if round_row else None,
            "last_prediction": last_prediction,
            "latency": {
                "sample_size": len(times),
                "last_exec_time_ms": times[0] if times else None,
                "mean_exec_time_ms": sum(times) / len(times) if times else None,
                "max_exec_time_ms": max(times) if times else None,
            },
            "recent_statuses": dict(Counter(r["status"] for r in recent)),
            "as_of": windows_end,
            "rank": rank,
            "score_metrics": scores["score_metrics"],
            "windows": scores["windows"],
        }

    @router.get(
        "/reports/models/{model_id}/predictions",
        response_model=list[PredictionOut],
        responses={**PAGINATED, **MODEL_NOT_FOUND},
        dependencies=PRIVATE,
    )
    def model_predictions(
        request: Request,
        model_id: ModelIdPath,
        session: SessionDep,
        status: PredictionStatuses = None,
        scope_key: ScopeKeys = None,
        start: UTCDateTime | None = None,
        end: UTCDateTime | None = None,
        order: Order = "desc",
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response:
        """One model's predictions with their scores, newest first (``order=asc`` for oldest first);
        filter by status, scope key and ``performed_at`` range."""
        check_range(start, end)
        if queries.get_model(session, model_id) is None:
            raise HTTPException(404, f"model {model_id!r} not found")
        route = f"model-predictions-{order}"
        page = queries.predictions_page(
            session,
            after=decode_cursor(route, cursor, (datetime, str)),
            limit=limit,
            descending=order == "desc",
            model_ids=[model_id],
            statuses=[s.value for s in status or ()],
            scope_keys=scope_key or (),
            start=start,
            end=end,
        )
        return json_page(request, route, page, PREDICTIONS, convert.prediction)

    return router
