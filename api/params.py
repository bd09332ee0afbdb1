"""Query and path parameter types shared by the routers.

* Datetimes: ISO-8601; a value without offset is read as UTC; anything unparsable or outside
  1900..9000 is a 422 (never a 500).
* Text: no NUL character (Postgres refuses it) and bounded length, so a hostile value is a 422.
* Model ids: ``model_id`` (repeatable) and the anchor's ``projectIds`` (repeatable and/or
  comma-separated) are merged.
* Raw text (``check_request_text``, a dependency of every route): each declared query and path
  parameter must be valid UTF-8 once percent-decoded (no overlong form, no encoded surrogate, no
  stray byte) and hold no NUL; otherwise a 422 naming the parameter. Starlette itself would
  replace such bytes with U+FFFD and pass the damaged text on.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import unquote_to_bytes

from fastapi import Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BeforeValidator, StringConstraints

from coordinator_core.clock import parse_utc
from coordinator_core.db.tables import CheckpointStatus, PredictionStatus

EARLIEST = datetime(1900, 1, 2, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
TEXT_PATTERN = r"^[^\x00]*$"
ID_PATTERN = r"^[^\x00]+$"
MAX_IDS = 100


def _to_utc(value: Any) -> Any:
    """Strings go through ``parse_utc`` (naive → UTC); datetimes get UTC; other types fail below."""
    try:
        if isinstance(value, str):
            if not value.isprintable():
                raise ValueError("control characters are not allowed")
            return parse_utc(value, "timestamp")
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    except OverflowError:
        raise ValueError(f"{value!r} is out of range") from None
    return value


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"{value.isoformat()} is out of range ({EARLIEST.year}..{LATEST.year})")
    return value


UTCDateTime = Annotated[datetime, BeforeValidator(_to_utc), AfterValidator(_in_range)]
"""An aware UTC datetime; naive input is read as UTC."""

Text = Annotated[str, Query(max_length=256, pattern=TEXT_PATTERN)]

Limit = Annotated[int, Query(ge=1, le=1000, description="page size (hard cap 1000)")]
Cursor = Annotated[
    str | None,
    Query(
        max_length=2048, pattern=TEXT_PATTERN, description="opaque cursor from the previous page's X-Next-Cursor header"
    ),
]
Order = Annotated[Literal["desc", "asc"], Query(description="newest first (desc, default) or oldest first")]

SafeStr = Annotated[str, StringConstraints(max_length=256, pattern=TEXT_PATTERN)]
ScopeKeys = Annotated[list[SafeStr] | None, Query(max_length=50, description="scope key; repeatable")]
ModelStates = Annotated[
    list[SafeStr] | None, Query(max_length=20, description="model state (RUNNING, STOPPED, ...); repeatable")
]
PredictionStatuses = Annotated[list[PredictionStatus] | None, Query(max_length=4, description="repeatable")]
CheckpointStatuses = Annotated[list[CheckpointStatus] | None, Query(max_length=5, description="repeatable")]
AsOf = Annotated[
    UTCDateTime | None,
    Query(description="end of the windows and of the history read (default: the latest leaderboard's as-of time)"),
]

ModelIdPath = Annotated[str, Path(min_length=1, max_length=256, pattern=ID_PATTERN, description="model id")]
CheckpointIdPath = Annotated[str, Path(min_length=1, max_length=256, pattern=ID_PATTERN, description="checkpoint id")]
ModelIdQuery = Annotated[str, Query(min_length=1, max_length=256, pattern=ID_PATTERN, description="model id")]

ModelIds = Annotated[list[str] | None, Query(description="model id; repeatable", max_length=MAX_IDS)]
ProjectIds = Annotated[
    list[str] | None,
    Query(
        alias="projectIds",
        max_length=MAX_IDS,
        description="anchor-compatible model filter: repeatable and/or comma-separated",
    ),
]


def invalid(name: str, message: str, value: Any = None, location: str = "query") -> RequestValidationError:
    """A 422 shaped like FastAPI's own validation errors (``{"detail": [{"loc", "msg", ...}]}``)."""
    return RequestValidationError([{"type": "value_error", "loc": (location, name), "msg": message, "input": value}])


def text_problem(value: str) -> str | None:
    """Why ``value`` is not acceptable text (``None`` when it is): a NUL or a lone surrogate
    (which no UTF-8 text can hold: it comes from a JSON escape such as ``\\ud800``)."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"contains a lone surrogate ({ord(exc.object[exc.start]):#06x} at position {exc.start})"
    return None


def _bytes_problem(raw: bytes) -> str | None:
    """Why percent-decoded ``raw`` is not acceptable text (``None`` when it is)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"is not valid UTF-8 (byte {raw[exc.start]:#04x} at position {exc.start}: {exc.reason}); "
            "send text percent-encoded as UTF-8"
        )
    return text_problem(text)


def _shown(raw: bytes) -> str:
    return raw[:80].decode("utf-8", "backslashreplace")


_CACHE = "_coordinator_text_params"  # kept on the route object itself (routes are not hashable)
_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def _query_names(dependant: Dependant) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _route_text_params(route: Any) -> tuple[frozenset[str], tuple[tuple[int, frozenset[str]], ...]]:
    """The route's query parameter names, and per path segment (counted from the end) the
    path parameters it holds; computed once per route."""
    if route is None:  # no route matched: FastAPI answers 404 or 405
        return frozenset(), ()
    known = getattr(route, _CACHE, None)
    if known is None:
        dependant = getattr(route, "dependant", None)
        query = frozenset(_query_names(dependant)) if dependant is not None else frozenset()
        segments = getattr(route, "path", "").split("/")
        path = tuple(
            (len(segments) - i, frozenset(names))
            for i, segment in enumerate(segments)
            if (names := _PATH_PARAM.findall(segment))
        )
        known = (query, path)
        setattr(route, _CACHE, known)
    return known


async def check_request_text(request: Request) -> None:
    """422 naming the first declared query or path parameter whose raw text is not valid UTF-8
    or holds a NUL (see the module docstring)."""
    scope = request.scope
    query_names, path_segments = _route_text_params(scope.get("route"))
    if query_names and scope.get("query_string"):
        for part in scope["query_string"].split(b"&"):
            raw_name, _, raw_value = part.partition(b"=")
            name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8", "replace")
            if name not in query_names:
                continue
            value = unquote_to_bytes(raw_value.replace(b"+", b" "))
            problem = _bytes_problem(value)
            if problem:
                raise invalid(name, f"query parameter {name!r} {problem}", _shown(value))
    if path_segments:
        raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogatepass")
        raw_segments = raw_path.split(b"?", 1)[0].split(b"/")
        for from_end, names in path_segments:
            if from_end > len(raw_segments):
                continue
            value = unquote_to_bytes(raw_segments[-from_end])
            problem = _bytes_problem(value)
            if problem:
                name = sorted(names)[0]
                raise invalid(name, f"path parameter {name!r} {problem}", _shown(value), "path")


def model_filter(model_id: list[str] | None, project_ids: list[str] | None) -> list[str]:
    """Merge ``model_id`` and ``projectIds`` (comma-separated allowed) into a sorted unique list."""
    ids: set[str] = set()
    for value in [*(model_id or []), *(project_ids or [])]:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if "\x00" in part or len(part) > 256:
                raise invalid("model_id", f"invalid model id {part[:40]!r}", part[:40])
            ids.add(part)
    if len(ids) > MAX_IDS:
        raise invalid("model_id", f"at most {MAX_IDS} model ids per request")
    return sorted(ids)


def check_range(start: datetime | None, end: datetime | None, names: tuple[str, str] = ("start", "end")) -> None:
    if start is not None and end is not None and start > end:
        raise invalid(
            names[0], f"{names[0]} ({start.isoformat()}) is after {names[1]} ({end.isoformat()})", start.isoformat()
        )
