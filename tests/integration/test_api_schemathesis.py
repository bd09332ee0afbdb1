"""Property-based tests over the OpenAPI schema (schemathesis): for every operation, generated
requests (valid ones and, in negative mode, invalid ones) never get a 5xx, and every response
(any status, any method) conforms to the schema: its status code is documented, its content type
is the documented one, its body validates against the documented schema, and its documented
headers are well-formed. On the backtest data with the admin key (which opens every tier); the
checkpoint is restored afterwards.

SQLite carries the bulk (``API_SCHEMATHESIS_EXAMPLES``, default 90 examples per operation: at
least 2,000 requests in all, checked by ``test_sqlite_case_count``); Postgres runs a smaller
sample of the same (``API_SCHEMATHESIS_PG_EXAMPLES``, default 12). Targeted cases make sure the
documented errors (404, 409, 422, 503) really happen and conform.

Needs ``schemathesis`` (a dev dependency); skipped with a message when it is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip(
    "schemathesis",
    reason="schemathesis is not installed: add it to the dev dependency group to run the "
    "OpenAPI property tests (uv add --dev schemathesis)",
)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import update  # noqa: E402
from sqlmodel import Session  # noqa: E402

from coordinator_core.db.tables import Checkpoint  # noqa: E402
from tests.integration import test_api_support as support  # noqa: E402
from tests.integration.test_api_support import CHECKPOINT_ID, Dataset, make_client  # noqa: E402

ADMIN_KEY = "schemathesis-admin"
EXAMPLES = {
    "sqlite": int(os.environ.get("API_SCHEMATHESIS_EXAMPLES", "90")),
    "postgres": int(os.environ.get("API_SCHEMATHESIS_PG_EXAMPLES", "12")),
}
MIN_SQLITE_CASES = 2000
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
KNOWN = {"checkpoint_id": CHECKPOINT_ID, "model_id": "noisy"}  # rows that exist

calls: dict[str, dict[tuple[str, str], int]] = {"sqlite": {}, "postgres": {}}
statuses: dict[str, dict[int, int]] = {"sqlite": {}, "postgres": {}}


def _restore(data: Dataset) -> None:
    with Session(data.engine) as session:
        session.connection().execute(
            update(Checkpoint.__table__)
            .where(Checkpoint.__table__.c.id == CHECKPOINT_ID)
            .values(status="PENDING", tx_hash=None, submitted_at=None)
        )
        session.commit()


def _operations() -> list[tuple[str, str]]:
    from api.app import create_app
    from coordinator_core.config import load_settings

    paths = create_app(load_settings(database_url="sqlite://")).openapi()["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in item]


OPERATIONS = _operations()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def api_db(backend: str) -> Dataset:
    if backend == "postgres":
        support.pg.require()
    return support.dataset(backend)


@pytest.fixture(scope="module")
def api_schema(api_db: Dataset) -> Iterator[Any]:
    client = make_client(api_db, api_admin_keys=ADMIN_KEY, api_read_keys="schemathesis-read")
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    schema.config.generation.update(allow_x00=True)
    yield schema
    _restore(api_db)


def _call(case: Any, checks: list[Any] = CHECKS) -> Any:
    case.headers = {**(case.headers or {}), "X-API-Key": ADMIN_KEY}
    response = case.call()
    case.validate_response(response, checks=checks)
    return response


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_generated_requests_conform(api_schema: Any, backend: str, method: str, path: str) -> None:
    """Valid and invalid generated requests: never a 5xx, every response as documented."""
    operation = api_schema[path][method]
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)
    known = {name: value for name, value in KNOWN.items() if "{" + name + "}" in path}
    if known:  # also aim at rows that exist, so the handlers run past their lookups
        strategy = strategy | operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known)
    counted = calls[backend]
    seen = statuses[backend]
    counted[(method, path)] = 0

    @settings(
        max_examples=EXAMPLES[backend],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        counted[(method, path)] += 1
        response = _call(case)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1

    run()
    assert counted[(method, path)] >= 1


def test_sqlite_case_count() -> None:
    """The SQLite run above generated at least 2,000 requests over every operation (this test
    comes after it in the module; alone it has nothing to count and is skipped)."""
    counted = calls["sqlite"]
    if not counted:
        pytest.skip("run the whole module: the generated tests above did not run")
    assert set(counted) == set(OPERATIONS), sorted(set(OPERATIONS) - set(counted))
    total = sum(counted.values())
    print(f"\nschemathesis on SQLite: {total} requests over {len(counted)} operations; statuses {statuses['sqlite']}")
    assert total >= MIN_SQLITE_CASES, (total, counted)
    seen = statuses["sqlite"]
    assert seen.get(200, 0) > 500 and seen.get(404, 0) > 100 and seen.get(422, 0) > 300, seen


# -- targeted cases: the documented errors happen, and conform -------------------------------------
ERRORS = [
    ("GET", "/reports/models/{model_id}/status", {"model_id": "nobody"}, {}, None, 404),
    ("GET", "/reports/models/{model_id}/predictions", {"model_id": "nobody"}, {}, None, 404),
    ("GET", "/reports/checkpoints/{checkpoint_id}", {"checkpoint_id": "CKP_nope"}, {}, None, 404),
    ("GET", "/reports/checkpoints/{checkpoint_id}/payload", {"checkpoint_id": "CKP_nope"}, {}, None, 404),
    ("GET", "/reports/checkpoints/{checkpoint_id}/emission", {"checkpoint_id": "CKP_nope"}, {}, None, 404),
    ("GET", "/reports/checkpoints/{checkpoint_id}/emission/cli-format", {"checkpoint_id": "x"}, {}, None, 404),
    ("GET", "/reports/checkpoints/{checkpoint_id}/prizes", {"checkpoint_id": "CKP_nope"}, {}, None, 404),
    ("POST", "/reports/checkpoints/{checkpoint_id}/confirm", {"checkpoint_id": "CKP_nope"}, {}, {"tx_hash": "a"}, 404),
    ("PATCH", "/reports/checkpoints/{checkpoint_id}/status", {"checkpoint_id": "x"}, {}, {"status": "PAID"}, 404),
    ("PATCH", "/reports/checkpoints/{checkpoint_id}/status", KNOWN, {}, {"status": "PAID"}, 409),
    ("GET", "/reports/predictions", {}, {"cursor": "garbage"}, None, 422),
    ("GET", "/reports/snapshots", {}, {"since": "yesterday"}, None, 422),
    ("GET", "/reports/checkpoints/{checkpoint_id}", {"checkpoint_id": "a\x00b"}, {}, None, 422),
]


@pytest.mark.parametrize(("method", "path", "path_parameters", "query", "body", "status"), ERRORS)
def test_documented_errors(
    api_schema: Any, api_db: Dataset, method: str, path: str, path_parameters: Any, query: Any, body: Any, status: int
) -> None:
    operation = api_schema[path][method]
    case = operation.Case(path_parameters=path_parameters, query=query, **({"body": body} if body else {}))
    _restore(api_db)  # the generated requests may have moved the checkpoint on
    response = _call(case)
    assert response.status_code == status, response.text
    assert str(status) in operation.definition.raw["responses"]


def test_conflict_on_a_second_confirm(api_schema: Any, api_db: Dataset) -> None:
    operation = api_schema["/reports/checkpoints/{checkpoint_id}/confirm"]["POST"]
    _restore(api_db)
    try:
        first = _call(operation.Case(path_parameters=KNOWN, body={"tx_hash": "0xfirst"}))
        again = _call(operation.Case(path_parameters=KNOWN, body={"tx_hash": "0xother"}))
    finally:
        _restore(api_db)
    assert first.status_code == 200 and again.status_code == 409, (first.text, again.text)
    assert "0xfirst" in again.json()["detail"] or "SUBMITTED" in again.json()["detail"]


def test_unreachable_database_is_a_documented_503() -> None:
    """A database that refuses connections: 503 on the routes that read it, as documented."""
    data = Dataset("postgres", "postgresql+psycopg2://127.0.0.1:1/nowhere?connect_timeout=2", "examples/models")
    client = make_client(data, api_admin_keys=ADMIN_KEY)
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    documented = [check for check in CHECKS if check is not not_a_server_error]
    for path in ("/healthz", "/reports/leaderboard", "/reports/checkpoints/latest"):
        response = _call(schema[path]["GET"].Case(), documented)
        assert response.status_code == 503, (path, response.text)
