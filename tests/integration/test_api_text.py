"""Invalid text never gives a 5xx: a cursor or any declared query/path parameter holding a lone
surrogate, a NUL, an overlong or otherwise invalid UTF-8 sequence, or (for cursors) non-base64url
text is a 422 naming the parameter, on every route, on SQLite and Postgres.

Before the fix, a cursor whose JSON key held a lone surrogate (``"\\ud800"``) reached the database
driver, which cannot encode it, and six routes answered 500: ``/reports/leaderboard``,
``/reports/models``, ``/reports/predictions`` (both orders), ``/reports/models/{id}/predictions``,
``/reports/snapshots`` and ``/reports/feeds``; two more (``models/global``, ``models/params``)
answered 200 to it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration import test_api_support as support
from tests.integration.test_api_support import CHECKPOINT_ID, Dataset, make_client

api_db = support.api_db  # the shared fixture

ADMIN_KEY = "text-admin"
SURROGATE = "\ud800"
TS = "2019-10-05T00:00:00+00:00"

# route, the cursor's route tag, a key of the right shape with a lone surrogate in its text
CURSOR_ROUTES = [
    ("/reports/leaderboard", "leaderboard", [SURROGATE, 1]),
    ("/reports/models", "models", [SURROGATE]),
    ("/reports/models/global", "models-global", [SURROGATE]),
    ("/reports/models/params", "models-params", ["noisy", SURROGATE]),
    ("/reports/predictions", "predictions-desc", [TS, SURROGATE]),
    ("/reports/predictions?order=asc", "predictions-asc", [TS, SURROGATE]),
    ("/reports/models/noisy/predictions", "model-predictions-desc", [TS, SURROGATE]),
    ("/reports/models/noisy/predictions?order=asc", "model-predictions-asc", [TS, "PRE" + SURROGATE]),
    ("/reports/snapshots", "snapshots", [TS, SURROGATE]),
    ("/reports/feeds", "feeds", [SURROGATE]),
    ("/reports/feeds/tail", "feeds-tail", [TS + SURROGATE, 1]),
    ("/reports/checkpoints", "checkpoints", [TS + SURROGATE]),
    (f"/reports/checkpoints/{CHECKPOINT_ID}/prizes", "prizes", [CHECKPOINT_ID + SURROGATE, 1]),
    ("/reports/checkpoints/latest/prizes", "prizes", [SURROGATE, 1]),
    ("/reports/leaderboard/history", "scores-history", [SURROGATE]),
]

# percent-encoded raw values that are not acceptable text
BAD_TEXT = {
    "surrogate": "%ED%A0%80",  # U+D800 encoded as if it were a character
    "low surrogate in text": "abc%ED%B0%80def",
    "NUL": "%00",
    "NUL in text": "a%00b",
    "overlong": "%C0%AF",  # '/' in two bytes
    "overlong NUL": "%C0%80",
    "stray byte": "%FF",
    "beyond U+10FFFF": "%F4%90%80%80",
    "truncated": "%E2%82",
}


def cursor_of(route: str, key: list[Any]) -> str:
    raw = json.dumps({"r": route, "k": key}).encode()  # json escapes the surrogate as \ud800
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture(scope="module")
def admin(api_db: Dataset) -> Any:
    with make_client(api_db, api_admin_keys=ADMIN_KEY) as test_client:
        test_client.headers["X-API-Key"] = ADMIN_KEY
        yield test_client


def assert_names(response: Any, location: str, name: str, *words: str) -> None:
    assert response.status_code == 422, (response.status_code, response.text)
    error = response.json()["detail"][0]
    assert error["loc"] == [location, name], error
    for word in words:
        assert word in error["msg"], error


@pytest.mark.parametrize(("path", "route", "key"), CURSOR_ROUTES, ids=[f"{r[1]}:{r[0]}" for r in CURSOR_ROUTES])
def test_cursor_with_a_lone_surrogate_is_422(admin: TestClient, path: str, route: str, key: list[Any]) -> None:
    sep = "&" if "?" in path else "?"
    response = admin.get(f"{path}{sep}cursor={cursor_of(route, key)}")
    words = ("ISO-8601",) if route in ("feeds-tail", "checkpoints") else ("lone surrogate",)
    assert_names(response, "query", "cursor", "invalid cursor", *words)


@pytest.mark.parametrize("path", sorted({p for p, _, _ in CURSOR_ROUTES}))
def test_damaged_cursors_are_422(admin: TestClient, path: str) -> None:
    sep = "&" if "?" in path else "?"
    nested = base64.urlsafe_b64encode(b"[" * 1500).decode().rstrip("=")  # deeper than the JSON parser goes
    nul = cursor_of("models", ["a\x00b"])
    for cursor, words in (
        ("not*base64!", ("base64url",)),
        ("eyJ$$", ("base64url",)),
        (nested, ("invalid cursor",)),
        (nul, ("invalid cursor",)),
        ("A" * 2049, ("at most 2048",)),
    ):
        assert_names(admin.get(f"{path}{sep}cursor={cursor}"), "query", "cursor", *words)


def _parameters(client: TestClient) -> list[tuple[str, str, str, str]]:
    """(method, path template, location, name) of every declared query and path parameter."""
    out = []
    for path, item in client.app.openapi()["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("query", "path"):
                    out.append((method.upper(), path, parameter["in"], parameter["name"]))
    return out


def _url(path: str, location: str, name: str, raw: str) -> str:
    known = {"checkpoint_id": CHECKPOINT_ID, "model_id": "noisy"}
    if location == "path":
        path = path.replace("{" + name + "}", raw)
    for key, value in known.items():
        path = path.replace("{" + key + "}", value)
    return f"{path}?{name}={raw}" if location == "query" else path


def test_every_parameter_of_every_route_refuses_invalid_text(admin: TestClient) -> None:
    parameters = _parameters(admin)
    routes = {(method, path) for method, path, _, _ in parameters}
    assert len(routes) >= 19 and any(loc == "path" for _, _, loc, _ in parameters)
    bodies = {"POST": {"tx_hash": "0xabc"}, "PATCH": {"status": "PAID"}}
    failures = []
    for method, path, location, name in parameters:
        for label, raw in BAD_TEXT.items():
            response = admin.request(method, _url(path, location, name, raw), json=bodies.get(method))
            error = response.json()["detail"][0] if response.status_code == 422 else None
            if error is None or error["loc"] != [location, name] or name not in error["msg"]:
                failures.append((method, path, location, name, label, response.status_code, response.text[:200]))
    assert not failures, failures[:10]


def test_messages_say_what_to_fix(admin: TestClient) -> None:
    assert_names(admin.get("/reports/models?cruncher_id=%C0%AF"), "query", "cruncher_id", "not valid UTF-8", "0xc0")
    assert_names(admin.get("/reports/snapshots?model_id=ok&model_id=%ED%A0%80"), "query", "model_id", "UTF-8")
    assert_names(admin.get("/reports/models/a%00b/status"), "path", "model_id", "NUL")
    response = admin.get(f"/reports/checkpoints/{CHECKPOINT_ID}%FF/prizes")
    assert_names(response, "path", "checkpoint_id", "not valid UTF-8", "0xff")


def test_valid_text_still_passes(admin: TestClient) -> None:
    """Multi-byte UTF-8 is fine: an unknown id is a plain 404 or an empty list, never a 422."""
    assert admin.get("/reports/models?cruncher_id=%C3%A9l%C3%A8ve").json() == []
    assert admin.get("/reports/models/%F0%9F%98%80/status").status_code == 404
    assert admin.get("/reports/snapshots", params={"model_id": "noisy", "limit": 1}).json()[0]["model_id"] == "noisy"
    assert admin.get("/reports/predictions?undeclared=%FF&limit=1").status_code == 200  # undeclared: ignored


def test_decode_cursor_refuses_invalid_text() -> None:
    from fastapi.exceptions import RequestValidationError

    from api.pagination import decode_cursor, encode_cursor

    assert decode_cursor("models", encode_cursor("models", ["élève"]), (str,)) == ("élève",)
    assert decode_cursor("models", encode_cursor("models", ["x"]) + "==", (str,)) == ("x",)  # padding is fine
    for bad in (
        cursor_of("models", [SURROGATE]),
        cursor_of("models", ["\udfff tail"]),
        cursor_of("models", ["a\x00"]),
        base64.urlsafe_b64encode(b"[" * 5000).decode(),
        "%%%",
        "a b",
    ):
        with pytest.raises(RequestValidationError) as caught:
            decode_cursor("models", bad, (str,))
        assert caught.value.errors()[0]["loc"] == ("query", "cursor")


def test_a_body_that_is_not_utf8_json_is_422(admin: TestClient) -> None:
    """FastAPI's own answer would be an undocumented 400 "There was an error parsing the body"."""
    url = f"/reports/checkpoints/{CHECKPOINT_ID}/status"
    headers = {"Content-Type": "application/json"}
    response = admin.patch(url, content=b'{"status": "\xff"}', headers=headers)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body"], response.text
    assert "not JSON text in UTF-8" in response.json()["detail"][0]["msg"]
    # a surrogate encoded in the bytes: Python's JSON reader lets it in, the field refuses it, and the
    # 422 that echoes it back must still encode (the default handler failed there with a 500)
    response = admin.patch(url, content=b'{"status": "PAID\xed\xa0\x80"}', headers=headers)
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "status"] and "unicode" in error["msg"] and error["input"] == "PAID\\ud800"
    confirm = f"/reports/checkpoints/{CHECKPOINT_ID}/confirm"
    response = admin.post(confirm, content=b'{"tx_hash": "0x\\udc80"}', headers=headers)  # a JSON escape
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "tx_hash"], response.text
    assert admin.get("/reports/models/nobody/status").json() == {"detail": "model 'nobody' not found"}
