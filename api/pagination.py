"""Keyset pagination: an opaque cursor in the ``X-Next-Cursor`` response header.

List routes keep the anchor's shape (a JSON array, or the anchor's object for
``/reports/checkpoints/latest/prizes``). When more rows follow, the response carries
``X-Next-Cursor: <cursor>`` and ``Link: <same URL with cursor=...>; rel="next"``; pass the cursor
back as ``?cursor=`` (with the same filters) to get the next page. No header means the last page.
The cursor is the sort key of the last row returned (base64url JSON, tagged with the route), so
pages are stable under concurrent inserts: every row present for the whole walk is returned
exactly once. A cursor from another route, or a damaged one (not base64url, not our JSON, a key
of the wrong shape, text with a NUL or a lone surrogate), is a 422 naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import Request, Response
from pydantic import TypeAdapter

from api.params import invalid, text_problem
from coordinator_core.clock import parse_utc

NEXT_CURSOR_HEADER = "X-Next-Cursor"
PAGINATION_HEADERS = {
    NEXT_CURSOR_HEADER: {
        "description": "opaque cursor of the next page; absent on the last page",
        "schema": {"type": "string"},
    },
    "Link": {
        "description": 'the next page as `<url>; rel="next"`; absent on the last page',
        "schema": {"type": "string"},
    },
}
PAGINATED: dict[int | str, dict[str, Any]] = {200: {"headers": PAGINATION_HEADERS}}
BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def encode_cursor(route: str, key: Sequence[Any]) -> str:
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    raw = json.dumps({"r": route, "k": values}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(route: str, cursor: str | None, types: Sequence[type]) -> tuple[Any, ...] | None:
    """The sort key inside ``cursor`` (``None`` for the first page); 422 if it is not one of ours."""
    if cursor is None or cursor == "":
        return None
    try:
        if not BASE64URL.fullmatch(cursor):
            raise ValueError("not base64url text (A-Z a-z 0-9 - _): pass X-Next-Cursor back unchanged")
        padded = cursor.rstrip("=") + "=" * (-len(cursor.rstrip("=")) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(data, dict) or data.get("r") != route:
            raise ValueError("the cursor belongs to another route")
        values = data["k"]
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError("wrong cursor length")
        key: list[Any] = []
        for value, kind in zip(values, types, strict=True):
            if kind is datetime:
                if not isinstance(value, str):
                    raise ValueError("bad timestamp")
                key.append(parse_utc(value))
            elif kind is int:
                if not isinstance(value, int) or isinstance(value, bool) or abs(value) > 2**62:
                    raise ValueError("bad integer")
                key.append(value)
            else:
                if not isinstance(value, str):
                    raise ValueError("bad text")
                problem = text_problem(value)
                if problem:
                    raise ValueError(f"its key {problem}")
                key.append(value)
        return tuple(key)
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error, OverflowError, RecursionError) as exc:
        raise invalid("cursor", f"invalid cursor: {exc}", cursor[:80]) from None


def set_next(request: Request, response: Response, route: str, key: Sequence[Any] | None) -> None:
    """Announce the next page in the response headers (nothing on the last page)."""
    if key is None:
        return
    cursor = encode_cursor(route, key)
    response.headers[NEXT_CURSOR_HEADER] = cursor
    response.headers["Link"] = f'<{request.url.include_query_params(cursor=cursor)}>; rel="next"'


def json_page(request: Request, route: str, page: Any, adapter: TypeAdapter[Any], convert: Any) -> Response:
    """A page serialised in the endpoint's worker thread (validated against ``adapter``, the
    route's response model) with its next-page headers: one thread hop less than returning
    plain data for FastAPI to validate."""
    body = adapter.dump_json(adapter.validate_python([convert(row) for row in page.rows]))
    answer = Response(body, media_type="application/json")
    set_next(request, answer, route, page.next_key)
    return answer
