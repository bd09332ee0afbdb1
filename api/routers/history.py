"""``GET /reports/leaderboard/history``: each model's window score over time, from the snapshots.

A point at time ``t`` is the window's score as the leaderboard computes it at ``t``:
Σ value_sum / Σ prediction_count over the model's snapshots with ``t - hours < period_end`` and
``period_start <= t`` (``window_totals`` with the leaderboard's bounds), so the point at the latest
leaderboard's as-of time is the score the leaderboard shows. Times are the snapshots' period ends
in ``(since, until]`` plus ``until`` itself, thinned evenly to at most ``points`` (the newest is
always kept). One pass over the snapshots of the range (prefix sums per model), at most
``MAX_SNAPSHOTS`` of them: a wider range is a 422 asking for a narrower one.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field
from sqlmodel import Session

from api.deps import ContextDep, SessionDep
from api.pagination import PAGINATED, decode_cursor, set_next
from api.params import Cursor, Limit, ModelIds, ProjectIds, UTCDateTime, check_range, invalid, model_filter
from api.schemas import Out, score_key
from api.security import AUTH_RESPONSES, PUBLIC
from coordinator_core import queries
from coordinator_core.clock import as_utc
from coordinator_core.domain.ranking import participant_label
from coordinator_core.domain.windows import window_score

ROUTE = "scores-history"
DEFAULT_SPAN = timedelta(days=7)
MAX_SNAPSHOTS = 200_000
PAGE = 1000


class HistoryPoint(Out):
    at: datetime = Field(description="end of the window")
    score: float | None = Field(description="Σ value_sum / Σ prediction_count over (at - hours, at]")
    prediction_count: int


class ModelHistory(Out):
    model_id: str
    model_name: str | None = None
    cruncher_id: str | None = None
    cruncher_name: str | None = None
    points: list[HistoryPoint] = Field(description="oldest first; times without a counted prediction are left out")


class ScoreHistory(Out):
    window: str
    score_key: str = Field(description="the window's field in the leaderboard payload")
    hours: int
    ranking_key: str
    ranking_direction: str
    since: datetime
    until: datetime = Field(description="the newest point's time (default: the latest leaderboard's as-of time)")
    models: list[ModelHistory] = Field(description="by model id")


def read_snapshots(session: Session, since: datetime, until: datetime, model_ids: list[str]) -> list[dict[str, Any]]:
    """Snapshots with ``period_end >= since`` and ``period_start <= until``, walked page by page."""
    rows: list[dict[str, Any]] = []
    after = None
    while True:
        page = queries.snapshots_page(session, after=after, limit=PAGE, model_ids=model_ids, since=since, until=until)
        rows.extend(
            {
                "model_id": r["model_id"],
                "start": as_utc(r["period_start"]),
                "end": as_utc(r["period_end"]),
                "value_sum": float(r["value_sum"] or 0.0),
                "count": int(r["prediction_count"] or 0),
            }
            for r in page.rows
        )
        if len(rows) > MAX_SNAPSHOTS:
            raise invalid("since", f"more than {MAX_SNAPSHOTS} snapshots in range: narrow since/until or pass model_id")
        if page.next_key is None:
            return rows
        after = page.next_key


def thin(times: list[datetime], points: int) -> list[datetime]:
    """At most ``points`` of the sorted ``times``, evenly spread, always keeping the newest."""
    if len(times) <= points:
        return times
    if points == 1:
        return times[-1:]
    step = (len(times) - 1) / (points - 1)
    return sorted({times[round(i * step)] for i in range(points)})


def series(snapshots: list[dict[str, Any]], times: list[datetime], hours: int) -> list[dict[str, Any]]:
    """One model's points: at ``t`` the snapshots with ``period_start <= t`` less those with
    ``period_end <= t - hours`` (a subset of the former, as every period ends after it starts)."""
    by_start = sorted(snapshots, key=lambda s: s["start"])
    by_end = sorted(snapshots, key=lambda s: s["end"])
    starts = [s["start"] for s in by_start]
    ends = [s["end"] for s in by_end]
    value_in = [0.0, *accumulate(s["value_sum"] for s in by_start)]
    count_in = [0, *accumulate(s["count"] for s in by_start)]
    value_out = [0.0, *accumulate(s["value_sum"] for s in by_end)]
    count_out = [0, *accumulate(s["count"] for s in by_end)]
    span = timedelta(hours=hours)
    out = []
    for t in times:
        added = bisect_right(starts, t)
        removed = bisect_right(ends, t - span)
        count = count_in[added] - count_out[removed]
        if count <= 0:
            continue
        value = value_in[added] - value_out[removed]
        out.append({"at": t, "score": window_score(value, count), "prediction_count": count})
    return out


def build_router(windows: dict[str, int]) -> APIRouter:
    router = APIRouter(responses=AUTH_RESPONSES, tags=["leaderboard"], dependencies=PUBLIC)
    window_param = Annotated[  # type: ignore[valid-type]
        Literal[tuple(windows)] | None,  # type: ignore[valid-type,misc]
        Query(description="aggregation window (default: the ranking key)"),
    ]

    def history(
        request: Request,
        response: Response,
        session: SessionDep,
        ctx: ContextDep,
        window: str | None = None,  # annotated below with the contract's window names
        model_id: ModelIds = None,
        project_ids: ProjectIds = None,
        since: UTCDateTime | None = None,
        until: UTCDateTime | None = None,
        points: Annotated[int, Query(ge=1, le=1000, description="at most this many points per model")] = 200,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Per model (by id, ``limit`` per page), its score in ``window`` at each snapshot end in
        ``(since, until]`` and at ``until`` (default: the latest leaderboard's as-of time; ``since``
        defaults to 7 days before). The newest point equals the leaderboard's score."""
        aggregation = ctx.contract.aggregation
        name = window or aggregation.ranking_key
        hours = ctx.windows[name]
        until = until or queries.latest_leaderboard_time(session) or ctx.clock()
        since = since or until - DEFAULT_SPAN
        check_range(since, until, ("since", "until"))
        key = decode_cursor(ROUTE, cursor, (str,))
        rows = read_snapshots(session, since - timedelta(hours=hours), until, model_filter(model_id, project_ids))
        per_model: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row["start"] <= until and row["end"] > since - timedelta(hours=hours):
                per_model.setdefault(row["model_id"], []).append(row)
        ids = sorted(m for m in per_model if key is None or m > key[0])
        page = ids[:limit]
        times = sorted({r["end"] for r in rows if since < r["end"] <= until} | {until})
        times = thin(times, points)
        models = queries.models_by_id(session, page)
        if len(ids) > limit:
            set_next(request, response, ROUTE, (page[-1],))
        return {
            "window": name,
            "score_key": score_key(name),
            "hours": hours,
            "ranking_key": aggregation.ranking_key,
            "ranking_direction": aggregation.ranking_direction,
            "since": since,
            "until": until,
            "models": [
                {
                    "model_id": m,
                    "model_name": (models.get(m) or {}).get("name"),
                    "cruncher_id": (models.get(m) or {}).get("player_id"),
                    "cruncher_name": participant_label(
                        (models.get(m) or {}).get("player_name"), (models.get(m) or {}).get("player_id")
                    )
                    if m in models
                    else None,
                    "points": series(per_model[m], times, hours),
                }
                for m in page
            ],
        }

    history.__annotations__["window"] = window_param  # a real object: the names exist only per app
    router.get("/reports/leaderboard/history", response_model=ScoreHistory, responses=PAGINATED)(history)
    return router
