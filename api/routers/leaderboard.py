"""``GET /reports/leaderboard``: the latest stored leaderboard, by rank."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter
from sqlmodel import Session

from api.deps import ApiContext, ContextDep, SessionDep
from api.pagination import PAGINATED, decode_cursor, set_next
from api.params import Cursor, Limit, ModelIds, ProjectIds, invalid, model_filter
from api.schemas import LeaderboardEntry, score_key, with_windows
from api.security import AUTH_RESPONSES, PUBLIC
from coordinator_core import queries
from coordinator_core.domain.metrics import ordered_columns
from coordinator_core.domain.ranking import participant_label

ROUTE = "leaderboard"


def entry_payload(
    entry: dict[str, Any],
    board: dict[str, Any],
    windows: dict[str, int],
    ranking_key: str,
    direction: str,
    states: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """A stored entry (``coordinator_core.services.score.leaderboard_entries``) as the report payload."""
    score = entry.get("score") or {}
    stats = entry.get("stats") or {}
    metrics = entry.get("metrics") or score.get("metrics") or {}
    ranking = score.get("ranking") or {"key": ranking_key, "value": metrics.get(ranking_key), "direction": direction}
    model = states.get(entry["model_id"], {})
    if entry.get("virtual"):
        model = {**model, "player_id": None}  # a virtual ensemble has no participant
    out = {
        "created_at": board["created_at"],
        "leaderboard_id": board["id"],
        "rank": entry.get("rank"),
        "model_id": entry["model_id"],
        "model_name": entry.get("model_name"),
        "cruncher_id": entry.get("player_id") or model.get("player_id"),
        "cruncher_name": participant_label(
            entry.get("cruncher_name"), entry.get("player_id") or model.get("player_id")
        ),
        "status": model.get("state"),
        "score_metrics": metrics,
        "score_ranking": ranking,
        **{k: int(entry.get(k) or 0) for k in ("prediction_count", "scored_count", "failed_count", "absent_count")},
        "virtual": bool(entry.get("virtual")),
        "contribution": entry.get("contribution"),
        "metrics": {k: stats[k] for k in ordered_columns(stats)},
    }
    for name in windows:
        out[score_key(name)] = metrics.get(name)
    return out


def load_board(
    session: Session, ctx: ApiContext, leaderboard_id: str | None, head: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The latest leaderboard (or ``leaderboard_id``) with ``entries`` sorted by rank, from the
    cache when its row has not been written since."""
    head = head or queries.leaderboard_head(session, leaderboard_id)
    if head is None:
        return None
    cached = ctx.leaderboards.board(head["id"], head["version"])
    if cached is not None:
        return cached
    row = queries.leaderboard_by_id(session, head["id"])
    if row is None:
        return None
    entries = sorted(row.pop("entries_jsonb") or [], key=position_key)
    return ctx.leaderboards.put_board({**row, "entries": entries})


def position_key(entry: dict[str, Any]) -> tuple[int, int, str]:
    """Ranked models by rank, then the virtual ensembles (no rank) by id."""
    rank = entry.get("rank")
    return (0, int(rank), "") if rank is not None else (1, 0, str(entry["model_id"]))


def build_router(windows: dict[str, int]) -> APIRouter:
    router = APIRouter(responses=AUTH_RESPONSES, tags=["leaderboard"], dependencies=PUBLIC)
    entry_model = with_windows(LeaderboardEntry, windows, "LeaderboardEntryWithScores")
    adapter = TypeAdapter(list[entry_model])  # type: ignore[valid-type]

    @router.get("/reports/leaderboard", response_model=list[entry_model], responses=PAGINATED)  # type: ignore[valid-type]
    def leaderboard(
        request: Request,
        session: SessionDep,
        ctx: ContextDep,
        model_id: ModelIds = None,
        project_ids: ProjectIds = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response:
        """The latest leaderboard, sorted by rank (``[]`` before the first scoring); the contract's
        virtual ensembles follow the ranked models (``virtual: true``, ``rank: null``, never paid).

        Scores are those stored by the scoring run (``window_totals`` at its as-of time,
        ``created_at``). A cursor pins the leaderboard it started on, so a walk is consistent even
        if a new leaderboard is stored meanwhile. Pages are served from memory while the stored
        row is unchanged (Postgres; the latest row is re-checked at most once a second and model
        states are at most 5 s old).
        """
        key = decode_cursor(ROUTE, cursor, (str, int))
        head = ctx.leaderboards.latest_head() if key is None else None
        if head is None:
            head = queries.leaderboard_head(session, key[0] if key else None)
            if head is not None and key is None:
                ctx.leaderboards.put_latest_head(head)
        if head is None:
            if key:
                raise invalid("cursor", "invalid cursor: its leaderboard no longer exists", cursor)
            return Response(b"[]", media_type="application/json")
        ids = tuple(model_filter(model_id, project_ids))
        page_key = (head["id"], head["version"], ids, key[1] if key else 0, limit)
        hit = ctx.leaderboards.page(page_key)
        if hit is None:
            board = load_board(session, ctx, None, head)
            assert board is not None
            # positions in the whole board (1-based): a cursor resumes after one, filtered or not
            entries = list(enumerate(board["entries"], start=1))
            if ids:
                entries = [(i, e) for i, e in entries if e["model_id"] in ids]
            if key:
                entries = [(i, e) for i, e in entries if i > key[1]]
            positioned = entries[:limit]
            page = [e for _, e in positioned]
            states = queries.models_by_id(session, [e["model_id"] for e in page])
            aggregation = ctx.contract.aggregation
            payload = [
                entry_payload(e, board, windows, aggregation.ranking_key, aggregation.ranking_direction, states)
                for e in page
            ]
            next_key = (board["id"], positioned[-1][0]) if len(entries) > limit else None
            hit = adapter.dump_json(adapter.validate_python(payload)), next_key
            ctx.leaderboards.put_page(page_key, *hit)
        body, next_key = hit
        answer = Response(body, media_type="application/json")
        set_next(request, answer, ROUTE, next_key)
        return answer

    return router
